"""Flash sales: a countdown price on a pinned product, decided by the server clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from checkout import selectors, soldout
from checkout.exceptions import (
    NotAHost,
    NotPinned,
    SaleInvalid,
    SaleRunning,
    ShowNotLive,
)
from checkout.models import FlashSale
from realtime import events
from shows.models import Membership, Show, User, Variant
from shows.selectors import membership_role

SALE_STARTED = "sale.started"
SALE_ENDED = "sale.ended"
HOST_ROLES = (Membership.Role.OWNER, Membership.Role.HOST)
MAX_SALE_SECONDS = 3600


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _close(sale: FlashSale, now: datetime) -> bool:
    closed = FlashSale.objects.filter(pk=sale.pk, closed_at__isnull=True).update(
        closed_at=now
    )
    if closed:
        events.broadcast(
            sale.show_id,
            {
                "type": SALE_ENDED,
                "sale_id": sale.pk,
                "product_id": sale.product_id,
                "ended_at": epoch_ms(min(now, sale.ends_at)),
                "server_now": epoch_ms(now),
            },
        )
    return bool(closed)


def sale_close_due(*, now: datetime | None = None) -> int:
    """Close the sales whose window has passed; broadcasts ``sale.ended`` once
    per sale. Returns how many closed."""
    now = now or timezone.now()
    closed = 0
    for sale in FlashSale.objects.filter(closed_at__isnull=True, ends_at__lte=now):
        with transaction.atomic():
            closed += _close(sale, now)
    return closed


def sale_start(
    *,
    show: Show,
    user: User,
    product_id: int,
    price_minor: int,
    duration_seconds: int,
    per_buyer_limit: int,
) -> FlashSale:
    """Open a countdown sale on a pinned product of a live show, now, for
    ``duration_seconds``. Only the brand's owners and hosts may.

    Raises ``NotAHost``, ``ShowNotLive``, ``NotPinned``, ``SaleInvalid`` or
    ``SaleRunning``. Broadcasts ``sale.started``: the sale price and each
    option's list price, in minor units and written out in every language, the
    buyer limit and the window in the server's epoch ms.
    """
    if membership_role(user=user, brand_id=show.brand_id) not in HOST_ROLES:
        raise NotAHost()
    if show.status != Show.Status.LIVE:
        raise ShowNotLive()
    if not selectors.product_is_pinned(show=show, product_id=product_id):
        raise NotPinned()
    if not (10 <= duration_seconds <= MAX_SALE_SECONDS):
        raise SaleInvalid(_("A sale lasts from 10 seconds to an hour."))
    if price_minor < 1 or per_buyer_limit < 1:
        raise SaleInvalid()
    variants = list(Variant.objects.filter(product_id=product_id).order_by("id"))
    currencies = {variant.currency for variant in variants}
    if len(currencies) != 1:
        raise SaleInvalid(_("The product's options need one currency for a sale."))
    now = timezone.now()
    sale_close_due(now=now)
    try:
        with transaction.atomic():
            sale = FlashSale.objects.create(
                show=show,
                product_id=product_id,
                price_minor=price_minor,
                currency=currencies.pop(),
                per_buyer_limit=per_buyer_limit,
                starts_at=now,
                ends_at=now + timedelta(seconds=duration_seconds),
                created_by=user,
            )
            # The card as the room's snapshot carries it (``room_sales``).
            events.broadcast(
                show.pk,
                {
                    "type": SALE_STARTED,
                    **selectors.sale_room_card(sale, variants=variants, now=now),
                },
            )
    except IntegrityError as exc:
        raise SaleRunning() from exc
    _open_claims(show=show, product_id=product_id)
    return sale


def _open_claims(*, show: Show, product_id: int) -> None:
    """Seed the units left to claim of the sale's variants, so that the first
    rush of buyers is already told "sold out" as soon as every unit is
    promised to an order under way (``checkout/soldout.py``)."""
    ids = list(
        Variant.objects.filter(product_id=product_id).values_list("pk", flat=True)
    )
    # Read before the stock, as the order service does.
    seen = {pk: soldout.generation(pk) for pk in ids}
    for pk, stock in Variant.objects.filter(pk__in=ids).values_list(
        "pk", "stock_available"
    ):
        soldout.mark(
            variant_id=pk,
            slug=show.slug,
            seen=seen[pk],
            sold_out=stock == 0,
            left=stock,
        )
