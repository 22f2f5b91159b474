"""Comment to buy (docs/comment-to-buy.md): a viewer types a pinned
product's keyword in the chat and gets a stock hold and a reserved order.

The hold is an ordinary one-tap order placed through ``order_create`` (one
conditional UPDATE on the stock, the sale price and per-buyer limit, the
idempotency key, the PaymentIntent, the hold that the sweeper expires), with
the source ``comment``. What is the claim's own: reading the message (the
keyword and a variant word), one open claim per viewer and product, and the
room's ``claim.made`` line with the claimer's ``claim.held`` card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from checkout import claim_cards
from checkout.exceptions import (
    AddressRequired,
    CheckoutError,
    NotPinned,
    ShowNotLive,
    SoldOut,
    TooManyReservations,
)
from checkout.models import Order, SavedAddress
from checkout.selectors import saved_card_summary
from checkout.services.orders import Buyer, order_create
from realtime import events
from shows.exceptions import ShowfloorError, Throttled
from shows.models import LineupItem, Pin, Product, Show, User, Variant
from shows.selectors import membership_role
from shows.services.claim_keywords import (
    ChatWords,
    chat_words,
    folded,
    option_words,
)

CLAIM_MADE = "claim.made"


class VariantRequired(CheckoutError):
    code = "variant_required"
    status = 409
    default_message = gettext_lazy("Say which option you want after the keyword.")


class NoVariantMatch(CheckoutError):
    code = "no_variant_match"
    status = 409
    default_message = gettext_lazy("No option of this product matches your words.")


class AlreadyClaimed(CheckoutError):
    code = "already_claimed"
    status = 409
    default_message = gettext_lazy(
        "You already hold one of these: pay for it on your card in the room."
    )


class ClaimRefused(CheckoutError):
    """A keyword message that made no hold, and why: ``code`` and message of
    the refusal that stopped it (``sold_out``, ``over_limit``,
    ``variant_required``…), with the product and, for ``already_claimed``,
    the order it already holds."""

    def __init__(
        self,
        cause: ShowfloorError,
        *,
        product_id: int | None = None,
        order_id: str | None = None,
    ) -> None:
        self.code = cause.code
        self.product_id = product_id
        self.order_id = order_id
        self.retry_after = (
            cause.retry_after
            if isinstance(cause, Throttled | TooManyReservations)
            else None
        )
        super().__init__(cause.message)


@dataclass(frozen=True)
class Claim:
    order: Order
    card: dict[str, Any]


def _claimed_item(*, show: Show, words: ChatWords) -> LineupItem | None:
    """The line-up product whose keyword is the message's first word: among
    several, the one pinned last; None when the word is no keyword here.
    Refuses ``not_pinned`` when none of the keyword's products is pinned."""
    matching = [
        item
        for item in LineupItem.objects.filter(show=show)
        .exclude(claim_keyword="")
        .select_related("product")
        if folded(item.claim_keyword) == words.first
    ]
    if not matching:
        return None
    pinned_at = dict(
        Pin.objects.filter(
            show=show,
            unpinned_at__isnull=True,
            product_id__in=[item.product_id for item in matching],
        ).values_list("product_id", "pinned_at")
    )
    pinned = [item for item in matching if item.product_id in pinned_at]
    if not pinned:
        refusal = NotPinned(
            _("%(product)s is not pinned now: claims open while it is.")
            % {"product": matching[0].product.name}
        )
        raise ClaimRefused(refusal, product_id=matching[0].product_id)
    return max(pinned, key=lambda item: pinned_at[item.product_id])


def _options_text(variants: list[Variant]) -> str:
    return ", ".join(variant.name or variant.sku for variant in variants)


def claim_variant(
    *, product: Product, variants: list[Variant], words: tuple[str, ...], keyword: str
) -> Variant:
    """The variant a claim's words name (docs/comment-to-buy.md, "Variants").

    A product with one variant: that one, whatever follows the keyword. With
    several, the words after the keyword that are options of the product
    (a colour, a size, or a whole variant name; case and accents ignored)
    choose the variants that have all of them. One left: that one. Several
    (or no word at all): the only one of them in stock, if just one is.
    Raises ``NoVariantMatch`` (words that name no variant of the product),
    ``VariantRequired`` (several in stock) or ``SoldOut`` (none in stock);
    their messages list the options in stock with the keyword to type.
    """
    if len(variants) == 1:
        return variants[0]
    options = {variant.pk: option_words(variant.name) for variant in variants}
    known = [word for word in words if any(word in o for o in options.values())]
    in_stock = [variant for variant in variants if variant.stock_available > 0]
    listed = {
        "product": product.name,
        "keyword": keyword,
        "options": _options_text(in_stock or variants),
    }
    if words and not known:
        raise NoVariantMatch(
            _(
                "No option of %(product)s is called “%(words)s”: type "
                "%(keyword)s followed by one of %(options)s."
            )
            % {**listed, "words": " ".join(words)}
        )
    candidates = [
        variant for variant in variants if all(w in options[variant.pk] for w in known)
    ]
    if not candidates:
        raise NoVariantMatch(
            _(
                "No option of %(product)s is “%(words)s”: type %(keyword)s "
                "followed by one of %(options)s."
            )
            % {**listed, "words": " ".join(known)}
        )
    if len(candidates) == 1:
        return candidates[0]
    available = [variant for variant in candidates if variant.stock_available > 0]
    if len(available) == 1:
        return available[0]
    if not available:
        raise SoldOut()
    raise VariantRequired(
        _(
            "%(product)s comes in several options: type %(keyword)s followed "
            "by one of %(options)s."
        )
        % {**listed, "options": _options_text(available)}
    )


def _saved_address(user: User) -> dict[str, object] | None:
    saved = SavedAddress.objects.filter(user=user).first()
    if saved is None:
        return None
    return {
        field: getattr(saved, field)
        for field in ("name", "line1", "line2", "postal_code", "city", "area")
    } | {"country": saved.country}


def _open_claim(*, show: Show, user: User, product_id: int) -> Order | None:
    return (
        Order.objects.filter(
            show=show,
            buyer=user,
            source=claim_cards.COMMENT_SOURCE,
            status=Order.Status.RESERVED,
            lines__variant__product_id=product_id,
        )
        .order_by("-id")
        .first()
    )


def _claim_key(*, show: Show, user: User, product_id: int) -> str:
    """The claim's Idempotency-Key: the viewer's how-manieth claim of this
    product in this show. Two keyword messages read at once (two tabs) count
    the same claims, so they make one order (the key is unique); a claim
    that ended (paid, expired) moves the count on for the next one."""
    earlier = (
        Order.objects.filter(
            show=show,
            buyer=user,
            source=claim_cards.COMMENT_SOURCE,
            lines__variant__product_id=product_id,
        )
        .distinct()
        .count()
    )
    return f"claim-{show.pk}-{product_id}-{earlier}"


def _claim(*, show: Show, user: User, words: ChatWords) -> Claim | None:
    item = _claimed_item(show=show, words=words)
    if item is None:
        return None
    try:
        return _hold(show=show, user=user, item=item, words=words)
    except ClaimRefused:
        raise
    except ShowfloorError as exc:
        raise ClaimRefused(exc, product_id=item.product_id) from exc


def _hold(*, show: Show, user: User, item: LineupItem, words: ChatWords) -> Claim:
    product = item.product
    show.refresh_from_db(fields=["status"])
    if show.status != Show.Status.LIVE:
        raise ShowNotLive()
    # First: a viewer who holds one is told so, whatever the words or stock.
    held = _open_claim(show=show, user=user, product_id=product.pk)
    if held is not None:
        raise ClaimRefused(
            AlreadyClaimed(), product_id=product.pk, order_id=str(held.public_id)
        )
    variants = list(Variant.objects.filter(product=product).order_by("id"))
    variant = claim_variant(
        product=product, variants=variants, words=words.rest, keyword=item.claim_keyword
    )
    try:
        placed = order_create(
            show=show,
            buyer=Buyer(user=user),
            variant_id=variant.pk,
            quantity=1,
            idempotency_key=_claim_key(show=show, user=user, product_id=product.pk),
            address=_saved_address(user),
            source=claim_cards.COMMENT_SOURCE,
        )
    except AddressRequired as exc:
        raise AddressRequired(
            _(
                "Add your delivery address once: tap Buy on the pinned card. "
                "Your next claims then use it."
            )
        ) from exc
    if not placed.created:
        raise ClaimRefused(
            AlreadyClaimed(),
            product_id=product.pk,
            order_id=str(placed.order.public_id),
        )
    now = timezone.now()
    # The option is named (on the card, in the room) only where there is a choice.
    label = variant.name if len(variants) > 1 else ""
    card = claim_cards.claim_card(
        placed.order,
        product_id=product.pk,
        product_name=product.name,
        variant_id=variant.pk,
        variant_name=label,
        expires_at=placed.expires_at or now,
        saved_card=saved_card_summary(user_id=user.pk),
        now=now,
    )
    _announce(show=show, user=user, product=product, variant=label, card=card, now=now)
    return Claim(order=placed.order, card=card)


def _announce(
    *,
    show: Show,
    user: User,
    product: Product,
    variant: str,
    card: dict[str, Any],
    now: datetime,
) -> None:
    with transaction.atomic():
        events.notify(
            show.pk,
            events.user_recipient(user.pk),
            {"type": claim_cards.CLAIM_HELD, **card},
        )
        events.broadcast(
            show.pk,
            {
                "type": CLAIM_MADE,
                "product_id": product.pk,
                "product": product.name,
                "variant": variant,
                "name": user.display_name or str(user.pk),
                "user_id": user.pk,
                "at": claim_cards.epoch_ms(now),
                "server_now": claim_cards.epoch_ms(now),
            },
        )


def claim_from_chat(*, show: Show, user: User | None, text: str) -> Claim | None:
    """Read a chat message that went through (docs/comment-to-buy.md): when
    its first word is the keyword of a product of the line-up, hold one unit
    of it for the viewer as a reserved order (``order_create`` with the
    source ``comment``, the saved address if the product is posted).

    None when the message claims nothing: not a keyword, no user, or the
    brand's staff (whose messages stay chat). Raises ``ClaimRefused`` with
    the refusal's code: ``not_pinned``, ``show_not_live``,
    ``variant_required``, ``no_variant_match``, ``already_claimed`` (one
    open claim per viewer and product: a repeated keyword makes no second
    hold), ``sold_out``, ``over_limit`` (a sale's per-buyer limit),
    ``rate_limited``, ``address_required`` or ``payment_provider_error``.

    Broadcasts what ``order_create`` does (``stock.changed``, the buyer's
    ``order.updated``), then ``claim.made`` {product_id, product, variant,
    name, user_id, at, server_now} to the room and ``claim.held`` (the
    ``claim_cards.claim_card``) to the claimer.
    """
    if user is None or not user.is_authenticated:
        return None
    words = chat_words(text)
    if not words.first:
        return None
    if membership_role(user=user, brand_id=show.brand_id) is not None:
        return None
    return _claim(show=show, user=user, words=words)
