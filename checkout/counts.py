"""What checkout tells the show's counts (``realtime.counting``,
docs/analytics.md): orders reserved (holds), paid orders with their revenue,
units and buyers, and refunds.

Each function is called once, inside the transaction of the change it
counts, and counts only after that transaction commits (a rolled-back change
counts nothing). Counting never fails the change: after commit, an error is
logged and the count is lost.

- ``order_held``: a one-tap Buy reserved (``order_create``): a hold, and the
  buyer among the people who reserved (unique, the funnel's fourth step).
- ``order_moved``: any transition; counts a bag checked out (``reserved``) and
  an order ``paid`` (one read of its lines after commit).
- ``refund_recorded`` / ``refund_advanced``: a refund that counts as refunded
  money (pending or succeeded) is counted once, when its row is made; one that
  later fails or is canceled is taken off again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.db import transaction

from checkout.models import Order, OrderLine, Refund
from realtime import counting

logger = logging.getLogger(__name__)

COUNTED_REFUNDS = frozenset(
    {Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION, Refund.Status.SUCCEEDED}
)


def _after_commit(count: Callable[[], Any]) -> None:
    def run() -> None:
        try:
            count()
        except Exception:
            logger.exception("counting a checkout change failed")

    transaction.on_commit(run)


def buyer_key(order: Order) -> str:
    """Who bought, for unique counts: the account, else the guest's email."""
    if order.buyer_id:
        return f"user:{order.buyer_id}"
    if order.email.strip():
        return f"email:{order.email.strip().lower()}"
    return f"order:{order.pk}"


def order_held(order: Order, *, product_ids: Iterable[int]) -> None:
    """``order`` reserved stock for these products."""
    _after_commit(partial(_held, order.show_id, buyer_key(order), list(product_ids)))


def _held(show_id: int, buyer: str, product_ids: list[int]) -> None:
    counting.add(show_id, "holds", 1, products=dict.fromkeys(product_ids, 1))
    # The funnel's fourth step: people who reserved.
    counting.unique(show_id, "reserved", buyer)


def order_moved(order: Order, target: str) -> None:
    """``order`` moves to ``target``: a bag checked out is an order reserved,
    a payment is revenue, units and a buyer."""
    if target == Order.Status.RESERVED:
        _after_commit(partial(_bag_held, order))
    elif target == Order.Status.PAID:
        _after_commit(partial(_paid, order))


def _lines(order_id: int) -> list[tuple[int, int, int]]:
    return list(
        OrderLine.objects.filter(order_id=order_id).values_list(
            "variant__product_id", "quantity", "unit_price_minor"
        )
    )


def _bag_held(order: Order) -> None:
    _held(order.show_id, buyer_key(order), [p for p, _q, _u in _lines(order.pk)])


def _paid(order: Order) -> None:
    lines = _lines(order.pk)
    show, currency = order.show_id, order.currency
    counting.add(show, "orders_paid")
    counting.add(show, f"revenue.{currency}", order.total_minor)
    units: dict[int, int] = {}
    revenue: dict[int, int] = {}
    for product, quantity, unit_minor in lines:
        units[product] = units.get(product, 0) + quantity
        revenue[product] = revenue.get(product, 0) + quantity * unit_minor
    counting.add(show, "units", sum(units.values()), products=units)
    counting.add(show, f"revenue.{currency}", 0, products=revenue)
    counting.unique(show, "buyers", buyer_key(order))
    if order.source == "replay":
        # Sales after the show, from its replay (docs/replay.md).
        counting.add(show, "replay.orders_paid")
        counting.add(show, f"replay.revenue.{currency}", order.total_minor)


def refund_recorded(show_id: int, refund: Refund, *, created: bool) -> None:
    """A refund row was looked up or made; a new one that counts is counted."""
    if created and refund.status in COUNTED_REFUNDS:
        _after_commit(partial(_refund_counted, refund.pk, 1))


def refund_advanced(refund: Refund, *, lost: bool) -> None:
    """A refund's status moved forward; ``lost``: it no longer counts."""
    if lost:
        _after_commit(partial(_refund_counted, refund.pk, -1))


def product_shares(
    amount_minor: int, lines: list[tuple[int, int, int]]
) -> dict[int, int]:
    """``amount_minor`` split over the products of an order's ``lines``
    (product, quantity, unit price) in proportion to what each line cost,
    in whole minor units that add up to the amount (largest remainders get
    the leftover units). A refund names no lines, so this is how much of it
    each product is counted as having given back."""
    values: dict[int, int] = {}
    for product, quantity, unit_minor in lines:
        values[product] = values.get(product, 0) + quantity * unit_minor
    whole = sum(values.values())
    if whole <= 0 or amount_minor == 0:
        return {}
    sign, amount = (1, amount_minor) if amount_minor > 0 else (-1, -amount_minor)
    amount = min(amount, whole)
    shares = {product: amount * value // whole for product, value in values.items()}
    leftover = amount - sum(shares.values())
    by_remainder = sorted(
        values, key=lambda product: (-(amount * values[product] % whole), product)
    )
    for product in by_remainder[:leftover]:
        shares[product] += 1
    return {product: sign * share for product, share in shares.items() if share}


def _refund_counted(refund_id: int, sign: int) -> None:
    """Count a refund (``sign`` 1) or take it off again (-1): the show's
    refunds and refunded money, and each product's share of the money."""
    row = (
        Refund.objects.filter(pk=refund_id)
        .values_list(
            "payment__order_id", "payment__order__show_id", "currency", "amount_minor"
        )
        .first()
    )
    if row is None:
        return
    order_id, show_id, currency, amount_minor = row
    amount = sign * int(amount_minor)
    counting.add(int(show_id), "refunds", sign)
    counting.add(
        int(show_id),
        f"refunded.{currency}",
        amount,
        products=product_shares(amount, _lines(int(order_id))),
    )
