"""Checkout reads: what a buyer may buy, their orders, the studio's sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from checkout.models import FlashSale, Order, OrderLine, SavedCard
from checkout.money import Money
from shows.models import LineupItem, Pin, Product, Show, User, Variant

ACTIVE_STATUSES = (Order.Status.RESERVED, Order.Status.PAID, Order.Status.FULFILLED)
SOLD_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)


def _variant_in_show_sql() -> str:
    variant, product, lineup, pin, sale = (
        model._meta.db_table for model in (Variant, Product, LineupItem, Pin, FlashSale)
    )
    # Table names from the models, values as parameters.
    return f"""
        SELECT v.*, p.name AS product_name,
          EXISTS (SELECT 1 FROM {pin} pin WHERE pin.show_id = %(show)s
                  AND pin.product_id = v.product_id
                  AND pin.unpinned_at IS NULL) AS pinned,
          (SELECT sale.id FROM {sale} sale WHERE sale.show_id = %(show)s
           AND sale.product_id = v.product_id AND sale.closed_at IS NULL
           AND sale.starts_at <= %(now)s AND sale.ends_at > %(now)s
           LIMIT 1) AS sale_id
        FROM {variant} v JOIN {product} p ON p.id = v.product_id
        WHERE v.id = %(variant)s
          AND EXISTS (SELECT 1 FROM {lineup} l WHERE l.show_id = %(show)s
                      AND l.product_id = v.product_id)
    """  # noqa: S608  # nosec B608 - table names from the models


def variant_in_show(
    *, show: Show, variant_id: int, now: datetime | None = None
) -> Variant | None:
    """The variant, if its product is in the show's line-up, annotated with
    ``product_name``, ``pinned`` (its product has an open pin) and ``sale_id``
    (the sale open on it now, or None).

    Every order placed reads this, so it is one statement written out: the
    ORM's compilation of the same query (``Exists`` and ``Subquery``) cost
    ~1.6 ms of CPU per call, a tenth of a whole reservation."""
    now = now or timezone.now()
    params = {
        "show": show.pk,
        "variant": variant_id,
        "now": connection.ops.adapt_datetimefield_value(now),
    }
    found = list(Variant.objects.raw(_variant_in_show_sql(), params))
    if not found:
        return None
    variant = found[0]
    variant.pinned = bool(variant.pinned)  # type: ignore[attr-defined]
    return variant


def product_is_pinned(*, show: Show, product_id: int) -> bool:
    return Pin.objects.filter(
        show=show, product_id=product_id, unpinned_at__isnull=True
    ).exists()


def sales_open(*, show: Show, now: datetime | None = None) -> list[FlashSale]:
    """The show's sales that are open by the server clock."""
    now = now or timezone.now()
    return list(
        FlashSale.objects.filter(
            show=show, closed_at__isnull=True, starts_at__lte=now, ends_at__gt=now
        )
    )


def sale_quantity_of_buyer(*, sale: FlashSale, buyer_scope: dict[str, Any]) -> int:
    """Units a buyer holds or bought in the sale (expired or failed orders do not
    count)."""
    total = OrderLine.objects.filter(
        order__sale=sale, order__status__in=ACTIVE_STATUSES, **buyer_scope
    ).aggregate(n=Sum("quantity"))["n"]
    return int(total or 0)


def order_for_buyer(
    *, public_id: str, user: User | None, session_key: str
) -> Order | None:
    """The order if it belongs to this signed-in user or this guest session."""
    query = Order.objects.select_related("show", "payment").prefetch_related("lines")
    if user is not None and user.is_authenticated:
        owner = Q(buyer=user)
    elif session_key:
        owner = Q(buyer__isnull=True, session_key=session_key)
    else:
        return None
    try:
        return query.filter(owner, public_id=public_id).first()
    except ValueError:  # not a UUID
        return None


def saved_card_for(*, user: User | None) -> SavedCard | None:
    if user is None or not user.is_authenticated:
        return None
    card = SavedCard.objects.filter(user=user).first()
    return card if card is not None and card.usable else None


@dataclass(frozen=True)
class Revenue:
    currency: str
    minor: int
    orders: int


@dataclass(frozen=True)
class StudioOrders:
    orders: list[Order]
    revenue: list[Revenue]
    reserved: int


def studio_orders(*, show: Show, limit: int = 50) -> StudioOrders:
    """The show's latest orders and its revenue per currency (three queries)."""
    orders = list(
        Order.objects.filter(show=show)
        .select_related("buyer")
        .prefetch_related("lines")
        .order_by("-id")[:limit]
    )
    revenue = [
        Revenue(currency=row["currency"], minor=int(row["minor"]), orders=row["n"])
        # Net of partial refunds (a fully refunded order is no longer sold).
        for row in Order.objects.filter(show=show, status__in=SOLD_STATUSES)
        .values("currency")
        .annotate(
            minor=Sum(
                F("total_minor") - Coalesce(F("payment__refunded_minor"), Value(0))
            ),
            n=Count("id"),
        )
        .order_by("currency")
    ]
    reserved = Order.objects.filter(show=show, status=Order.Status.RESERVED).count()
    return StudioOrders(orders=orders, revenue=revenue, reserved=reserved)


def order_json(
    order: Order, *, client_secret: str = "", expires_at: datetime | None = None
) -> dict[str, Any]:
    """The order as the buyer's API and ``order.updated`` show it."""
    lines = list(order.lines.all())
    payment = getattr(order, "payment", None)
    data: dict[str, Any] = {
        "id": str(order.public_id),
        "status": order.status,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "total": Money(order.total_minor, order.currency).format(),
        "lines": [
            {
                "variant_id": line.variant_id,
                "product_name": line.product_name,
                "variant_name": line.variant_name,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
            }
            for line in lines
        ],
        "payment_status": payment.status if payment is not None else None,
        "sale": order.sale_id is not None,
    }
    if expires_at is not None:
        data["expires_at"] = expires_at.isoformat()
    if client_secret:
        data["client_secret"] = client_secret
    return data
