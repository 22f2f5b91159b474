"""A brand's orders as its team sees them in the workspace: the list with its
filters, one order, fulfilment and refunds, singly or in bulk, and the CSV.

Every function takes the acting user and checks the role policy
(``shows.services.workspace.require(..., ORDERS_MANAGE)``: owners and hosts)
before it reads or changes anything, so a page that forgot a check still
cannot show or change an order. The work itself is done by the services the
admin uses (``fulfilment``, ``refunds``); refunds are also written to the
brand's audit log.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from checkout.exceptions import CheckoutError
from checkout.models import Order
from checkout.services import fulfilment, refunds
from shows.exceptions import NotFound
from shows.models import Brand, Show, User
from shows.services import audit
from shows.services.workspace import Capability, require

CSV_COLUMNS = [
    "order",
    "number",
    "created_at",
    "status",
    "show",
    "email",
    "items",
    "total_minor",
    "currency",
    "captured_minor",
    "refunded_minor",
    "ship_to",
    "carrier",
    "tracking_number",
    "payment_intent",
]
# Bags being filled are not orders yet.
LISTED = [status for status in Order.Status.values if status != Order.Status.OPEN]


def csv_safe(text: str) -> str:
    """Keep spreadsheet apps from running a cell as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(orders: Iterable[Order]) -> Iterator[list[Any]]:
    """The header, then one row per order (the workspace's and the admin's
    export): every text a buyer or a brand typed goes through ``csv_safe``."""
    yield CSV_COLUMNS
    for order in orders:
        payment = getattr(order, "payment", None)
        address = getattr(order, "shipping_address", None)
        yield [
            str(order.public_id),
            order.number or "",
            order.created_at.isoformat(),
            order.status,
            order.show.slug,
            csv_safe(order.email),
            csv_safe(
                "; ".join(
                    f"{line.quantity} x {line.product_name}"
                    for line in order.lines.all()
                )
            ),
            order.total_minor,
            order.currency,
            payment.captured_minor if payment else 0,
            payment.refunded_minor if payment else 0,
            csv_safe(str(address)) if address else "",
            csv_safe(order.carrier),
            csv_safe(order.tracking_number),
            (payment.intent_id or "") if payment else "",
        ]


def write_csv(orders: Iterable[Order], out: Any) -> None:
    writer = csv.writer(out)
    for row in csv_rows(orders):
        writer.writerow(row)


@dataclass(frozen=True)
class OrderFilter:
    show_id: int | None = None
    status: str = ""
    since: date | None = None
    until: date | None = None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def brand_orders(
    *, user: User, brand: Brand, where: OrderFilter = OrderFilter()
) -> QuerySet[Order]:
    """The brand's orders, newest first, narrowed by show, status and the
    days they were placed (``since`` and ``until`` inclusive, in the current
    time zone)."""
    require(user, brand, Capability.ORDERS_MANAGE)
    orders = (
        Order.objects.filter(show__brand=brand, status__in=LISTED)
        .exclude(from_bag=True, payment__isnull=True)
        .select_related("show", "buyer", "payment", "shipping_address")
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )
    if where.show_id is not None:
        orders = orders.filter(show_id=where.show_id)
    if where.status:
        orders = orders.filter(status=where.status)
    if where.since is not None:
        orders = orders.filter(created_at__gte=_day_start(where.since))
    if where.until is not None:
        orders = orders.filter(
            created_at__lt=_day_start(where.until) + timedelta(days=1)
        )
    return orders


def brand_shows(*, user: User, brand: Brand) -> QuerySet[Show]:
    """The brand's shows, for the list's filter."""
    require(user, brand, Capability.ORDERS_MANAGE)
    return Show.objects.filter(brand=brand).order_by("-scheduled_at")


def brand_order(*, user: User, brand: Brand, public_id: str) -> Order:
    """One of the brand's orders; ``NotFound`` for any other (or none)."""
    require(user, brand, Capability.ORDERS_MANAGE)
    try:
        order = (
            Order.objects.select_related("show", "buyer", "payment")
            .prefetch_related("lines")
            .filter(show__brand=brand, public_id=public_id, status__in=LISTED)
            .first()
        )
    except (ValueError, TypeError):  # not a UUID
        order = None
    if order is None:
        raise NotFound()
    return order


def brand_order_pack(*, user: User, brand: Brand, order: Order) -> Order:
    require(user, brand, Capability.ORDERS_MANAGE)
    return fulfilment.order_pack(order=_own(brand, order))


def brand_order_ship(
    *,
    user: User,
    brand: Brand,
    order: Order,
    carrier: str,
    tracking_number: str = "",
    tracking_url: str = "",
) -> Order:
    require(user, brand, Capability.ORDERS_MANAGE)
    return fulfilment.order_ship(
        order=_own(brand, order),
        carrier=carrier,
        tracking_number=tracking_number,
        tracking_url=tracking_url,
    )


def brand_order_deliver(*, user: User, brand: Brand, order: Order) -> Order:
    require(user, brand, Capability.ORDERS_MANAGE)
    return fulfilment.order_mark_delivered(order=_own(brand, order))


def brand_order_refund(
    *,
    user: User,
    brand: Brand,
    order: Order,
    amount_minor: int | None,
    reason: str = "",
    restock: bool = False,
) -> Any:
    """Refund the order in full (``amount_minor`` None) or in part, its units
    back to stock when ``restock``; recorded in the brand's audit log."""
    require(user, brand, Capability.ORDERS_MANAGE)
    order = _own(brand, order)
    refund = refunds.order_refund(
        order=order,
        amount_minor=amount_minor,
        reason=reason[:200],
        by=user,
        restock=restock,
    )
    audit.audit_record(
        brand=brand,
        actor=user,
        action="order.refund",
        target=order.reference,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        restock=restock,
        reason=reason[:200],
    )
    return refund


BULK_ACTIONS = ("pack", "deliver")


@dataclass(frozen=True)
class BulkResult:
    done: list[str]
    refused: list[tuple[str, str]]


def brand_orders_bulk(
    *, user: User, brand: Brand, public_ids: Iterable[str], action: str
) -> BulkResult:
    """Pack or mark delivered several orders: each succeeds or is refused on
    its own (an order not ready for the step says why); none outside the
    brand is touched."""
    require(user, brand, Capability.ORDERS_MANAGE)
    if action not in BULK_ACTIONS:
        raise NotFound()
    step = (
        fulfilment.order_pack if action == "pack" else fulfilment.order_mark_delivered
    )
    done: list[str] = []
    refused: list[tuple[str, str]] = []
    for public_id in list(public_ids)[:200]:
        try:
            order = brand_order(user=user, brand=brand, public_id=public_id)
        except NotFound:
            continue
        try:
            step(order=order)
        except CheckoutError as exc:
            refused.append((order.reference, exc.message))
        else:
            done.append(order.reference)
    return BulkResult(done=done, refused=refused)


def _own(brand: Brand, order: Order) -> Order:
    """The order again, only if it is the brand's (a caller may pass any)."""
    if not Order.objects.filter(pk=order.pk, show__brand=brand).exists():
        raise NotFound()
    return order
