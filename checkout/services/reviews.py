"""Reviews: a buyer rates and describes a product they received; the brand
replies, hides and features them (see docs/reviews.md).

Who may review: the buyer of a paid order containing the product, once the
order was delivered, or at once when the product needs no shipping
(``Product.requires_shipping`` False: a download, a ticket). A refunded or
cancelled order proves nothing. A signed-in buyer reviews as their account;
a guest (reaching the order through the email's signed link) as the order's
email. Once per product: the unique constraints decide, so a double submit
makes one review.

Blocked words are handled as the room handles chat: a review containing one
of the brand's blocked words is kept but hidden (``hidden`` with no
``hidden_by``); its author still sees it, and a moderator can show it.

Moderators, hosts and owners hide and unhide (``Capability.ROOM_MODERATE``);
owners and hosts reply (``Capability.CATALOG_MANAGE``); the show's staff
feature a visible review of a line-up product in the live room
(``review.featured``, broadcast after commit).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from checkout.exceptions import CheckoutError
from checkout.models import Order, OrderAddress, Review
from realtime import events
from shows.exceptions import NotInLineup, ShowNotLive
from shows.models import LineupItem, Product, Show, User
from shows.services.moderation import blocked_word_in, require_staff
from shows.services.workspace import Capability, require

REVIEW_FEATURED = "review.featured"
# The line the room shows: enough for a sentence or three.
FEATURED_TEXT_MAX = 280

PAID = (Order.Status.PAID, Order.Status.FULFILLED)


class ReviewNotAllowed(CheckoutError):
    code = "review_not_allowed"
    status = 403
    default_message = _(
        "You can review a product once your order of it has been delivered."
    )


class AlreadyReviewed(CheckoutError):
    code = "already_reviewed"
    status = 409
    default_message = _("You have already reviewed this product.")


class RatingInvalid(CheckoutError):
    code = "rating_invalid"
    status = 400
    default_message = _("Choose from one to five stars.")


class ReviewTextInvalid(CheckoutError):
    code = "review_text_invalid"
    status = 400
    default_message = _("A review has at most 2,000 characters.")


class ReviewNotFound(CheckoutError):
    code = "review_not_found"
    status = 404
    default_message = _("That review does not exist.")


def reviewable_product_ids(order: Order) -> list[int]:
    """The products of ``order`` its buyer may review now, in line order:
    all of them once it is delivered, those needing no shipping once paid;
    none for an order not paid (or refunded, cancelled)."""
    if order.status not in PAID:
        return []
    rows = order.lines.values_list(
        "variant__product_id", "variant__product__requires_shipping"
    )
    ids: list[int] = []
    for product_id, ships in rows:
        if (order.delivered_at is not None or not ships) and product_id not in ids:
            ids.append(product_id)
    return ids


def _author(order: Order) -> tuple[User | None, str, str]:
    """The review's owner (account or guest email) and the name the room shows."""
    if order.buyer_id is not None:
        buyer = order.buyer
        assert buyer is not None  # noqa: S101  # nosec B101 - buyer_id is set
        return buyer, "", buyer.display_name[:80]
    address = OrderAddress.objects.filter(order=order).only("name").first()
    first = address.name.split()[0] if address and address.name.split() else ""
    return None, order.email.lower(), first[:80]


def review_write(
    *, order: Order, product_id: int, rating: int, text: str, language: str
) -> Review:
    """The buyer of ``order`` reviews ``product_id``. The caller has shown the
    order belongs to the person asking (their account, or the email's signed
    link). Raises ``RatingInvalid``, ``ReviewTextInvalid``,
    ``ReviewNotAllowed`` (not delivered, or not in the order) or
    ``AlreadyReviewed``. Kept hidden when it contains a blocked word."""
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise RatingInvalid()
    text = text.strip()
    if len(text) > Review.MAX_LENGTH:
        raise ReviewTextInvalid()
    order.refresh_from_db(fields=["status", "delivered_at"])
    if product_id not in reviewable_product_ids(order):
        raise ReviewNotAllowed()
    buyer, email, name = _author(order)
    brand_id = Product.objects.values_list("brand_id", flat=True).get(pk=product_id)
    held = bool(text) and blocked_word_in(brand_id=brand_id, text=text)
    try:
        with transaction.atomic():
            return Review.objects.create(
                product_id=product_id,
                order=order,
                buyer=buyer,
                email=email,
                author_name=name,
                rating=rating,
                text=text,
                language=language[:16],
                hidden=held,
                hidden_at=timezone.now() if held else None,
            )
    except IntegrityError as exc:
        raise AlreadyReviewed() from exc


def _brand_review(*, brand_id: int, review_id: int) -> Review:
    review = (
        Review.objects.filter(pk=review_id, product__brand_id=brand_id)
        .select_related("product")
        .first()
    )
    if review is None:
        raise ReviewNotFound()
    return review


def review_set_hidden(
    *, actor: User | None, brand_id: int, review_id: int, hidden: bool
) -> Review:
    """Hide a review of the brand's product from every page and average, or
    show it again. Moderators, hosts and owners (``NotAllowed`` otherwise;
    ``NotAMember`` or ``ReviewNotFound`` for another brand's)."""
    review = _brand_review(brand_id=brand_id, review_id=review_id)
    require(actor, review.product.brand, Capability.ROOM_MODERATE)
    review.hidden = hidden
    review.hidden_by = actor if hidden else None
    review.hidden_at = timezone.now() if hidden else None
    review.save(update_fields=["hidden", "hidden_by", "hidden_at"])
    return review


def review_reply(
    *, actor: User | None, brand_id: int, review_id: int, text: str
) -> Review:
    """The brand's public answer under a review (empty text removes it).
    Hosts and owners. Raises ``ReviewTextInvalid`` past 2,000 characters."""
    review = _brand_review(brand_id=brand_id, review_id=review_id)
    require(actor, review.product.brand, Capability.CATALOG_MANAGE)
    text = text.strip()
    if len(text) > Review.MAX_LENGTH:
        raise ReviewTextInvalid()
    review.reply = text
    review.replied_at = timezone.now() if text else None
    review.replied_by = actor if text else None
    review.save(update_fields=["reply", "replied_at", "replied_by"])
    return review


def review_feature(*, show: Show, actor: User | None, review_id: int) -> Review:
    """Show a visible review of a line-up product in the live room for a few
    seconds. The show's staff only (``NotAHost``); raises ``ShowNotLive``,
    ``ReviewNotFound`` (hidden, or another brand's) or ``NotInLineup``.
    Broadcasts ``review.featured`` with the rating, the text (cut to 280
    characters), the author's name and the product."""
    require_staff(show=show, user=actor)
    show.refresh_from_db(fields=["status"])
    if show.status != Show.Status.LIVE:
        raise ShowNotLive()
    review = _brand_review(brand_id=show.brand_id, review_id=review_id)
    if review.hidden:
        raise ReviewNotFound()
    if not LineupItem.objects.filter(show=show, product_id=review.product_id).exists():
        raise NotInLineup()
    text = review.text
    if len(text) > FEATURED_TEXT_MAX:
        text = text[: FEATURED_TEXT_MAX - 1].rstrip() + "…"
    with transaction.atomic():
        events.broadcast(
            show.pk,
            {
                "type": REVIEW_FEATURED,
                "review": {
                    "id": review.pk,
                    "rating": review.rating,
                    "text": text,
                    "author": review.author_name,
                    "language": review.language,
                    "product": {"id": review.product_id, "name": review.product.name},
                },
            },
        )
    return review
