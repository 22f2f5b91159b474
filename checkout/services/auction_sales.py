"""Auctions after the close: each round's order, the off-session charge of the
buyer's saved card, the wait for a payment in the sheet until ``pay_by``, the
offer to the next bidder, the settlement (docs/auctions.md).

A round's order holds the auction's unit without moving stock; one charge per
round is claimed by a conditional UPDATE, and Stripe is called outside every
transaction. Lock order as in ``services.auctions``: the auction row, then the
order, then stock-hold and variant rows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from checkout import auction_cards as cards
from checkout import counts, soldout
from checkout import stripe_gateway as gateway
from checkout.models import (
    Auction,
    Bid,
    Order,
    OrderLine,
    OrderTransition,
    Payment,
    SavedCard,
    StockHold,
)
from checkout.services.orders import (
    S,
    _broadcast_stock,
    _move,
    _notify_order,
    _take_stock,
    order_mark_paid,
)
from realtime import events
from shows.models import User, Variant

logger = logging.getLogger(__name__)

AUCTION_OFFERED = "auction.offered"
AUCTION_SETTLED = "auction.settled"
AUCTION_WON = "auction.won"

# A round's stock hold outlives its pay_by by this much, so the auction, not
# the hold sweeper, decides what happens to the unit when the buyer is late.
HOLD_GRACE_SECONDS = 120
ORDER_SOURCE = "auction"


def _ms(moment: datetime) -> int:
    return cards.epoch_ms(moment)


def notify_bidder(auction: Auction, user_id: int, event: dict[str, Any]) -> None:
    events.notify(auction.show_id, events.user_recipient(user_id), event)


def unit_back(auction: Auction) -> None:
    """Give the auction's unit back to stock (in the caller's transaction)."""
    if not Auction.objects.filter(pk=auction.pk, unit_held=True).update(
        unit_held=False
    ):
        return
    auction.unit_held = False
    Variant.objects.filter(pk=auction.variant_id).update(
        stock_available=F("stock_available") + 1
    )
    _broadcast_stock(auction.show_id, auction.variant_id)
    transaction.on_commit(partial(soldout.clear, auction.variant_id))


def round_order(
    auction: Auction, *, user_id: int, amount_minor: int, now: datetime
) -> Order:
    """The order of one round of the sale: reserved for ``user_id`` at
    ``amount_minor``, holding the auction's unit (no stock moves), payable
    until ``pay_by`` (in the caller's transaction)."""
    pay_by = now + timedelta(seconds=settings.SHOWFLOOR_AUCTION_PAY_SECONDS)
    email = User.objects.values_list("email", flat=True).get(pk=user_id)
    order = Order.objects.create(
        show_id=auction.show_id,
        buyer_id=user_id,
        email=email,
        total_minor=amount_minor,
        subtotal_minor=amount_minor,
        currency=auction.currency,
        idempotency_key=f"auction:{auction.pk}:round:{auction.round}",
        auction=auction,
        source=ORDER_SOURCE,
    )
    variant = Variant.objects.select_related("product").get(pk=auction.variant_id)
    OrderLine.objects.create(
        order=order,
        variant=variant,
        product_name=variant.product.name,
        variant_name=variant.name,
        quantity=1,
        unit_price_minor=amount_minor,
        currency=auction.currency,
    )
    StockHold.objects.create(
        order=order,
        variant=variant,
        quantity=1,
        expires_at=pay_by + timedelta(seconds=HOLD_GRACE_SECONDS),
    )
    Payment.objects.create(
        order=order,
        provider=gateway.PROVIDER,
        amount_minor=amount_minor,
        currency=auction.currency,
    )
    OrderTransition.objects.create(
        order=order,
        from_status="",
        to_status=S.RESERVED,
        reason=f"auction {auction.pk}, round {auction.round}",
    )
    auction.unit_held = False
    auction.order = order
    auction.pay_by = pay_by
    auction.buyer_id = user_id
    auction.amount_minor = amount_minor
    Auction.objects.filter(pk=auction.pk).update(
        unit_held=False,
        charge_intent_id="",
        order=order,
        pay_by=pay_by,
        buyer_id=user_id,
        buyer_name=auction.buyer_name,
        amount_minor=amount_minor,
        round=auction.round,
    )
    _notify_order(order)
    counts.order_held(order, product_ids=[variant.product_id])
    return order


# --- Paying ---------------------------------------------------------------------


def _won(auction: Auction, order: Order, status: str) -> None:
    notify_bidder(
        auction,
        int(order.buyer_id or 0),
        {
            "type": AUCTION_WON,
            "auction_id": auction.pk,
            "order_id": str(order.public_id),
            "status": status,
            "amount_minor": order.total_minor,
            "amount": cards.written(order.total_minor, order.currency),
            "pay_by": _ms(auction.pay_by)
            if status == "pay_now" and auction.pay_by
            else None,
        },
    )


def _settle_locked(auction: Auction, outcome: str, now: datetime) -> None:
    Auction.objects.filter(pk=auction.pk).update(settlement=outcome, settled_at=now)
    auction.settlement, auction.settled_at = outcome, now
    events.broadcast(
        auction.show_id,
        {
            "type": AUCTION_SETTLED,
            "auction_id": auction.pk,
            "outcome": outcome,
            "server_now": _ms(now),
        },
    )


def _paid(auction_id: int, *, notify: bool) -> None:
    """The round's order is paid: the sale is settled."""
    now = timezone.now()
    with transaction.atomic():
        auction = Auction.objects.select_for_update().get(pk=auction_id)
        if auction.settlement:
            return
        order = Order.objects.get(pk=int(auction.order_id or 0))
        if order.status not in (S.PAID, S.FULFILLED):
            return
        if notify:
            _won(auction, order, "paid")
        _settle_locked(auction, Auction.Settlement.PAID, now)


def _open_for_sheet(order: Order, customer_id: str) -> None:
    """The order's own PaymentIntent, which the buyer pays in the sheet
    (``order_pay``) before ``pay_by``."""
    try:
        intent = gateway.intent_create(
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"showfloor-order-{order.public_id}-intent",
            metadata={"order": str(order.public_id), "show": str(order.show_id)},
            customer_id=customer_id,
        )
    except gateway.GatewayError:
        logger.warning("could not open the intent of auction order %s", order.public_id)
        return
    Payment.objects.filter(order=order, intent_id__isnull=True).update(
        intent_id=intent.id, status=intent.status, updated_at=timezone.now()
    )


def charge_round(auction_id: int) -> None:
    """Charge the round's buyer's saved card off-session, once per round (a
    conditional UPDATE claims it), with an idempotency key from the order.
    Paid: the order is marked paid through ``order_mark_paid`` (as the pay
    path and the webhook do) and the sale settled. Declined, or no card: the
    order waits in the sheet until ``pay_by`` (``auction.won`` ``pay_now``).

    The off-session intent names the order under ``auction_order``, not
    ``order``: a decline's webhook then leaves the order payable."""
    claimed = Auction.objects.filter(
        pk=auction_id, charged_round__lt=F("round"), settlement=""
    ).update(charged_round=F("round"))
    if not claimed:
        return
    auction = Auction.objects.select_related("order").get(pk=auction_id)
    order = auction.order
    if order is None or order.status != S.RESERVED:
        return
    card = SavedCard.objects.filter(user_id=int(order.buyer_id or 0)).first()
    intent = None
    if card is not None and card.usable:
        try:
            created = gateway.intent_create_off_session(
                amount_minor=order.total_minor,
                currency=order.currency,
                customer_id=card.customer_id,
                payment_method_id=card.payment_method_id,
                idempotency_key=f"showfloor-order-{order.public_id}-auction-charge",
                metadata={
                    "auction_order": str(order.public_id),
                    "auction": str(auction.pk),
                    "show": str(order.show_id),
                },
            )
            Auction.objects.filter(pk=auction.pk).update(charge_intent_id=created.id)
            intent = gateway.intent_confirm_off_session(
                intent_id=created.id, payment_method_id=card.payment_method_id
            )
        except gateway.CardDeclined as exc:
            logger.info("auction %s: card declined (%s)", auction.pk, exc.code)
        except gateway.GatewayError:
            logger.warning("auction %s: the off-session charge failed", auction.pk)
    if intent is not None and intent.status == "succeeded":
        _record_charge(auction.pk, order, intent)
        return
    _open_for_sheet(order, card.customer_id if card is not None else "")
    with transaction.atomic():
        _won(auction, order, "pay_now")


def _record_charge(auction_id: int, order: Order, intent: gateway.Intent) -> None:
    """A succeeded off-session charge becomes the order's payment: marked
    paid by ``order_mark_paid`` as the pay path and the webhook do."""
    Payment.objects.filter(order=order).exclude(status=Payment.Status.SUCCEEDED).update(
        intent_id=intent.id, updated_at=timezone.now()
    )
    order_mark_paid(intent=intent, reason="auction won: saved card charged")
    _paid(auction_id, notify=True)


def _charge_went_through(auction: Auction, order: Order) -> bool:
    """Whether the round's off-session charge succeeded though its answer was
    never recorded (the process stopped); records it if so."""
    if not auction.charge_intent_id or auction.charged_round != auction.round:
        return False
    try:
        intent = gateway.intent_retrieve(auction.charge_intent_id)
    except gateway.GatewayError:
        return False
    if intent.status != "succeeded" or intent.amount_minor != order.total_minor:
        return False
    _record_charge(auction.pk, order, intent)
    return True


def _next_bidder(auction: Auction) -> tuple[int, str, int] | None:
    """The highest bidder not offered the sale yet, at their highest bid (at
    or above the reserve); of equal bids the earlier one."""
    tried = Order.objects.filter(auction=auction).values_list("buyer_id", flat=True)
    rows = (
        Bid.objects.filter(auction=auction)
        .exclude(bidder_id__in=tried)
        .values("bidder_id")
        .annotate(top=Max("amount_minor"), first=Min("id"), name=Max("bidder_name"))
        .order_by("-top", "first")
    )
    for row in rows[:1]:
        if auction.reserve_minor is not None and row["top"] < auction.reserve_minor:
            return None
        return int(row["bidder_id"]), str(row["name"]), int(row["top"])
    return None


def auction_settle(*, auction_id: int, now: datetime | None = None) -> int:
    """Move a sold auction's payment on: charge a round never charged, settle
    a paid one, and when the round's order was not paid by ``pay_by`` (or was
    closed unpaid) offer the sale to the next bidder (``auction.offered``,
    then their card is charged under the same rules), or settle it unpaid
    with the unit back in stock. Returns 1 when something moved, else 0."""
    now = now or timezone.now()
    auction = Auction.objects.filter(pk=auction_id).first()
    if auction is None or auction.settlement or auction.order_id is None:
        return 0
    if auction.charged_round < auction.round:
        charge_round(auction_id)
        return 1
    order = Order.objects.get(pk=int(auction.order_id))
    if (
        order.status == S.RESERVED
        and auction.pay_by is not None
        and auction.pay_by <= now
        and _charge_went_through(auction, order)
    ):
        return 1
    cancel: Order | None = None
    with transaction.atomic():
        auction = Auction.objects.select_for_update().get(pk=auction_id)
        if auction.settlement:
            return 0
        order = Order.objects.select_for_update().get(pk=int(auction.order_id or 0))
        if order.status in (S.PAID, S.FULFILLED, S.REFUNDED):
            # Whoever settles tells the winner (this pass may come between
            # the charge's order_mark_paid and its own _paid): once, as the
            # row lock lets only one of them settle.
            _won(auction, order, "paid")
            _settle_locked(auction, Auction.Settlement.PAID, now)
            return 1
        if order.status == S.RESERVED:
            if auction.pay_by is not None and auction.pay_by > now:
                return 0
            # The unit passes to the next round: the hold ends, stock stays.
            StockHold.objects.filter(order=order, status=StockHold.Status.HELD).update(
                status=StockHold.Status.RELEASED, settled_at=now
            )
            Auction.objects.filter(pk=auction.pk).update(unit_held=True)
            auction.unit_held = True
            _move(order, S.EXPIRED, "auction: not paid by the deadline")
            cancel = order
        offered = _offer_next(auction, now)
    if cancel is not None:
        _cancel_late_intent(cancel)
    if offered:
        charge_round(auction_id)
    return 1


def _offer_next(auction: Auction, now: datetime) -> bool:
    """Offer the sale to the next bidder, or settle it unpaid (in the
    caller's locked transaction)."""
    found = _next_bidder(auction)
    if found is not None and not auction.unit_held:
        # The last round's order gave its unit back to stock: take it again.
        taken = _take_stock(auction.variant_id, 1)
        if taken is None:
            found = None
        else:
            auction.unit_held = True
            _broadcast_stock(auction.show_id, auction.variant_id, known=taken)
    if found is None:
        unit_back(auction)
        _settle_locked(auction, Auction.Settlement.UNPAID, now)
        return False
    user_id, name, amount = found
    auction.round += 1
    auction.buyer_name = name
    round_order(auction, user_id=user_id, amount_minor=amount, now=now)
    events.broadcast(
        auction.show_id,
        {
            "type": AUCTION_OFFERED,
            "auction_id": auction.pk,
            "to": name,
            "amount_minor": amount,
            "amount": cards.written(amount, auction.currency),
            "pay_by": _ms(auction.pay_by) if auction.pay_by else None,
            "round": auction.round,
            "server_now": _ms(now),
        },
    )
    return True


def _cancel_late_intent(order: Order) -> None:
    """Cancel the expired round's PaymentIntent; one that succeeded meanwhile
    is recorded (``order_mark_paid`` refunds it: the unit went on)."""
    intent_id = (
        Payment.objects.filter(order=order).values_list("intent_id", flat=True).first()
    )
    if not intent_id:
        return
    try:
        intent = gateway.intent_cancel(intent_id)
    except gateway.GatewayError:
        logger.warning("could not cancel intent %s", intent_id)
        return
    if intent.status == "succeeded":
        order_mark_paid(intent=intent, reason="paid after the auction's deadline")
