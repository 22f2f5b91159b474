"""Comment to buy, the reads (docs/comment-to-buy.md): a claim as its
claimer's confirmation card shows it, and the room snapshot's ``claim``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from checkout.models import Order, StockHold
from checkout.money import Money
from checkout.selectors import money_in_every_language, saved_card_summary
from shows.models import LineupItem, Show, User, Variant

# ``Order.source`` of an order a chat claim placed (shows/attribution.py).
COMMENT_SOURCE = "comment"
CLAIM_HELD = "claim.held"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def claim_card(
    order: Order,
    *,
    product_id: int,
    product_name: str,
    variant_id: int,
    variant_name: str,
    expires_at: datetime,
    saved_card: dict[str, str] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A held claim as its claimer's card shows it (``claim.held`` and the
    snapshot's ``claim.mine``): the order to pay, what it holds (the
    variant's name is "" for a product that has just one), the total
    in minor units and written out in every language (the order's total:
    shipping and tax included where the brand adds them), when the hold ends
    (server epoch ms) and the saved card that pays it in one tap, if any."""
    now = now or timezone.now()
    return {
        "order_id": str(order.public_id),
        "product": {"id": product_id, "name": product_name},
        "variant": {"id": variant_id, "name": variant_name},
        "quantity": 1,
        "amount_minor": order.total_minor,
        "currency": order.currency,
        "amount": money_in_every_language(Money(order.total_minor, order.currency)),
        "expires_at": epoch_ms(expires_at),
        "server_now": epoch_ms(now),
        "saved_card": saved_card,
    }


def open_claims(
    *, show: Show, user: User, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The user's claims in ``show`` that still hold stock, as ``claim_card``
    (one query; four more with a claim: its lines and variants, their
    products' options and the saved card)."""
    now = now or timezone.now()
    orders = list(
        Order.objects.filter(
            show=show,
            buyer=user,
            source=COMMENT_SOURCE,
            status=Order.Status.RESERVED,
        )
        .annotate(
            hold_expires_at=Min(
                "holds__expires_at", filter=Q(holds__status=StockHold.Status.HELD)
            )
        )
        .filter(hold_expires_at__gt=now)
        .prefetch_related("lines__variant")
        .order_by("id")
    )
    if not orders:
        return []
    card = saved_card_summary(user_id=user.pk)
    lines = [order.lines.all()[0] for order in orders]
    options = dict(
        Variant.objects.filter(
            product_id__in={line.variant.product_id for line in lines}
        )
        .values("product_id")
        .annotate(n=Count("id"))
        .values_list("product_id", "n")
    )
    cards = []
    for order, line in zip(orders, lines, strict=True):
        cards.append(
            claim_card(
                order,
                product_id=line.variant.product_id,
                product_name=line.product_name,
                variant_id=line.variant_id,
                variant_name=line.variant_name
                if options.get(line.variant.product_id, 1) > 1
                else "",
                expires_at=order.hold_expires_at,
                saved_card=card,
                now=now,
            )
        )
    return cards


def room_claims(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``claim``: the line-up's claim keywords (``keywords``:
    [{product_id, keyword}], pinned or not: the page shows the hint under
    the pinned ones) and, for a signed-in viewer, their held claims
    (``mine``); null when there is neither, so the page loads nothing for
    it. One query, and one more for a signed-in viewer (four more with a
    claim)."""
    now = timezone.now()
    keywords = [
        {"product_id": product_id, "keyword": keyword}
        for product_id, keyword in LineupItem.objects.filter(show=show)
        .exclude(claim_keyword="")
        .order_by("position", "id")
        .values_list("product_id", "claim_keyword")
    ]
    mine: list[dict[str, Any]] = []
    if user is not None and user.is_authenticated:
        mine = open_claims(show=show, user=user, now=now)
    if not keywords and not mine:
        return {"claim": None}
    return {"claim": {"keywords": keywords, "mine": mine, "server_now": epoch_ms(now)}}
