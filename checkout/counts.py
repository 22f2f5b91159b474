"""What checkout tells the show's counts (``realtime.counting``,
docs/analytics.md): orders reserved (holds), paid orders with their revenue,
units and buyers, and refunds.

Each function is called once, inside the transaction of the change it
counts, and counts only after that transaction commits (a rolled-back change
counts nothing). Counting never fails the change: after commit, an error is
logged and the count is lost.

- ``order_held``: a one-tap Buy reserved (``order_create``).
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


def order_held(*, show_id: int, product_ids: Iterable[int]) -> None:
    """An order reserved stock for these products."""
    products = dict.fromkeys(product_ids, 1)
    _after_commit(partial(counting.add, show_id, "holds", 1, products=products))


def order_moved(order: Order, target: str) -> None:
    """``order`` moves to ``target``: a bag checked out is an order reserved,
    a payment is revenue, units and a buyer."""
    if target == Order.Status.RESERVED:
        _after_commit(partial(_bag_held, order.pk, order.show_id))
    elif target == Order.Status.PAID:
        _after_commit(partial(_paid, order))


def _lines(order_id: int) -> list[tuple[int, int, int]]:
    return list(
        OrderLine.objects.filter(order_id=order_id).values_list(
            "variant__product_id", "quantity", "unit_price_minor"
        )
    )


def _bag_held(order_id: int, show_id: int) -> None:
    order_held(show_id=show_id, product_ids=[p for p, _q, _u in _lines(order_id)])


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
    buyer = (
        f"user:{order.buyer_id}"
        if order.buyer_id
        else f"email:{order.email.strip().lower()}"
    )
    counting.unique(show, "buyers", buyer)


def refund_recorded(show_id: int, refund: Refund, *, created: bool) -> None:
    """A refund row was looked up or made; a new one that counts is counted."""
    if created and refund.status in COUNTED_REFUNDS:
        _after_commit(
            partial(_refunded, show_id, refund.currency, refund.amount_minor, 1)
        )


def refund_advanced(refund: Refund, *, lost: bool) -> None:
    """A refund's status moved forward; ``lost``: it no longer counts."""
    if lost:
        _after_commit(partial(_refund_lost, refund.pk))


def _refunded(show_id: int, currency: str, amount_minor: int, n: int) -> None:
    counting.add(show_id, "refunds", n)
    counting.add(show_id, f"refunded.{currency}", amount_minor)


def _refund_lost(refund_id: int) -> None:
    row = (
        Refund.objects.filter(pk=refund_id)
        .values_list("payment__order__show_id", "currency", "amount_minor")
        .first()
    )
    if row is not None:
        _refunded(int(row[0]), str(row[1]), -int(row[2]), -1)
