"""Orders: reserve stock, take payment once, move forward through the states.

Lock order everywhere: the order row, then stock-hold and variant rows. No
Stripe call runs inside a transaction; the gateway is called before or after.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from checkout import counts, emails, pricing, selectors, soldout
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    EmailRequired,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    NoSavedCard,
    NotPinned,
    OrderNotFound,
    OrderNotPayable,
    OverBuyerLimit,
    PaymentDeclined,
    PaymentMethodUnavailable,
    PaymentProviderError,
    QuantityInvalid,
    ShowNotLive,
    SoldOut,
    TooManyReservations,
    UnknownVariant,
)
from checkout.models import (
    BrandOrderSequence,
    FlashSale,
    Order,
    OrderLine,
    OrderTransition,
    Payment,
    Refund,
    SavedCard,
    StockHold,
)
from checkout.services import delivery
from realtime import events, limiter
from shows.models import Show, User, Variant
from shows.services.stream import stream_recording_path

logger = logging.getLogger(__name__)

S = Order.Status
# Where each status may go. Nothing moves backwards, so webhooks delivered in
# any order, any number of times, end in the same state. A payment that
# succeeds after its hold ended still wins: it takes the stock again or is
# refunded.
NEXT: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.RESERVED, S.EXPIRED, S.CANCELLED}),
    S.RESERVED: frozenset({S.PAID, S.EXPIRED, S.FAILED, S.CANCELLED}),
    S.EXPIRED: frozenset({S.PAID, S.REFUNDED}),
    S.FAILED: frozenset({S.PAID, S.REFUNDED}),
    S.CANCELLED: frozenset({S.PAID, S.REFUNDED}),
    S.PAID: frozenset({S.FULFILLED, S.REFUNDED}),
    S.FULFILLED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}
CLOSED_UNPAID = (S.EXPIRED, S.FAILED, S.CANCELLED)
# A brand's first order number: four digits from the start read as a shop's.
FIRST_ORDER_NUMBER = 1001
INTENT_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class Buyer:
    """Who buys: a signed-in user, or a guest known by session and email."""

    user: User | None
    session_key: str = ""
    email: str = ""
    # For a guest without a session yet: starts one and returns its key. Called
    # only when an order is about to be created, so a sold-out answer costs no
    # session row.
    start_session: Callable[[], str] | None = None
    # The client's network address, for the reservation rate limit.
    address: str = ""

    @property
    def signed_in(self) -> bool:
        return self.user is not None and self.user.is_authenticated

    @property
    def scope(self) -> str:
        return f"u{self.user.pk}" if self.signed_in else f"s{self.session_key}"  # type: ignore[union-attr]

    def line_filter(self) -> dict[str, Any]:
        """Keyword filter on ``OrderLine`` for this buyer's orders."""
        if self.signed_in:
            return {"order__buyer": self.user}
        return {"order__buyer__isnull": True, "order__session_key": self.session_key}


@dataclass(frozen=True)
class OrderPlaced:
    order: Order
    client_secret: str
    expires_at: datetime | None
    created: bool


@dataclass(frozen=True)
class PayResult:
    order: Order
    # "paid", "requires_action" (3-D Secure in the browser) or "processing";
    # ``order_refresh`` also says "requires_payment_method" (nobody paid yet)
    # and "cancelled".
    outcome: str
    client_secret: str = ""


# --- Events ---------------------------------------------------------------


def _recipient(order: Order) -> str | None:
    if order.buyer_id:
        return events.user_recipient(order.buyer_id)
    if order.session_key:
        return events.session_recipient(order.session_key)
    return None


def _notify_order(order: Order) -> None:
    recipient = _recipient(order)
    if recipient is None:
        return
    event: dict[str, Any] = {
        "type": events.ORDER_UPDATED,
        "order_id": str(order.public_id),
        "status": order.status,
        "total_minor": order.total_minor,
        "currency": order.currency,
    }
    if order.number is not None:
        # The event often arrives before the pay answer: the buyer's number.
        event["reference"] = order.reference
    if order.status == Order.Status.PAID and order.buyer_id:
        # The event often arrives before the pay answer: it carries the card
        # this payment saved, so the next Buy offers it at once.
        card = selectors.saved_card_summary(user_id=order.buyer_id)
        if card is not None:
            event["saved_card"] = card
    events.notify(order.show_id, recipient, event)


def _broadcast_stock(
    show_id: int, variant_id: int, known: tuple[int, int] | None = None
) -> int:
    """Send the variant's stock to the room after commit; returns that stock.
    ``known``: its product id and stock, when the caller has just read them."""
    if known is None:
        row = Variant.objects.values("product_id", "stock_available").get(pk=variant_id)
        known = (row["product_id"], row["stock_available"])
    product_id, stock = known
    events.broadcast(
        show_id,
        {
            "type": events.STOCK_CHANGED,
            "variant_id": variant_id,
            "product_id": product_id,
            "stock_available": stock,
        },
    )
    return int(stock)


def _take_stock(variant_id: int, quantity: int) -> tuple[int, int] | None:
    """Move ``quantity`` out of the variant's stock if it has that many: one
    conditional UPDATE, which also returns the product id and the stock left
    (the row stays locked until commit, so no second round trip under the
    lock). None when there is not enough."""
    table = Variant._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET stock_available = stock_available - %s"  # noqa: S608  # nosec B608 - the model's table, values as parameters
            " WHERE id = %s AND stock_available >= %s"
            " RETURNING product_id, stock_available",
            [quantity, variant_id, quantity],
        )
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def _broadcast_purchase(order: Order) -> None:
    line = order.lines.select_related("variant").first()
    if line is None:
        return
    events.broadcast_ephemeral(
        order.show_id,
        {
            "type": events.PURCHASE_MADE,
            "product_id": line.variant.product_id,
            "product_name": line.product_name,
            "quantity": line.quantity,
            # Only what the buyer chose to share; never a name or an email.
            "city": order.proof_city or None,
        },
    )


# --- Transitions ----------------------------------------------------------


def _move(order: Order, target: str, reason: str) -> bool:
    """Move a row-locked order to ``target`` if that is forward; log and notify."""
    if target not in NEXT[order.status]:
        return False
    now = timezone.now()
    fields: dict[str, Any] = {"status": target, "updated_at": now}
    if target == S.PAID:
        fields["paid_at"] = now
        if order.number is None:
            brand_id = Show.objects.values_list("brand_id", flat=True).get(
                pk=order.show_id
            )
            fields["brand_id"] = brand_id
            fields["number"] = _next_order_number(brand_id)
    Order.objects.filter(pk=order.pk).update(**fields)
    OrderTransition.objects.create(
        order=order, from_status=order.status, to_status=target, reason=reason[:200]
    )
    order.status = target
    if target == S.PAID:
        order.paid_at = now
        if "number" in fields:
            order.brand_id, order.number = fields["brand_id"], fields["number"]
    _notify_order(order)
    if target in emails.TEMPLATES:
        transaction.on_commit(partial(emails.order_email_send, order_id=order.pk))
    counts.order_moved(order, target)
    return True


def _next_order_number(brand_id: int) -> int:
    """The brand's next order number, in the caller's transaction (the row
    stays locked until it commits, so numbers are unique and gapless)."""
    table = BrandOrderSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (brand_id, last) VALUES (%s, %s)"  # noqa: S608  # nosec B608 - the model's table
            f" ON CONFLICT (brand_id) DO UPDATE SET last = {table}.last + 1"
            " RETURNING last",
            [brand_id, FIRST_ORDER_NUMBER],
        )
        (number,) = cursor.fetchone() or (0,)
    return int(number)


def _release_holds(order: Order) -> None:
    """Give a closed order's held units back to stock (once per hold)."""
    _return_holds(order, held=StockHold.Status.HELD, to=StockHold.Status.RELEASED)


def _return_holds(order: Order, *, held: str, to: str) -> int:
    """Give the units of the order's holds in status ``held`` back to stock,
    moving each hold to ``to`` once (a conditional update), with
    ``stock.changed`` to the room and the sold-out marker cleared after
    commit. Returns the units given back."""
    now = timezone.now()
    returned = 0
    for hold in StockHold.objects.filter(order=order, status=held):
        moved = StockHold.objects.filter(pk=hold.pk, status=held).update(
            status=to, settled_at=now
        )
        if moved:
            Variant.objects.filter(pk=hold.variant_id).update(
                stock_available=F("stock_available") + hold.quantity
            )
            _broadcast_stock(order.show_id, hold.variant_id)
            transaction.on_commit(partial(soldout.clear, hold.variant_id))
            returned += hold.quantity
    return returned


def _retake_stock(order: Order) -> bool:
    """Take the order's units again for a payment that arrived after its hold
    ended; all lines or none."""
    now = timezone.now()
    lines = list(order.lines.all())
    left: list[tuple[int, tuple[int, int]]] = []
    try:
        with transaction.atomic():
            for line in lines:
                taken = _take_stock(line.variant_id, line.quantity)
                if taken is None:
                    raise SoldOut()
                left.append((line.variant_id, taken))
                StockHold.objects.create(
                    order=order,
                    variant_id=line.variant_id,
                    quantity=line.quantity,
                    expires_at=now,
                    status=StockHold.Status.CONSUMED,
                    settled_at=now,
                )
    except SoldOut:
        return False
    for variant_id, taken in left:
        _broadcast_stock(order.show_id, variant_id, known=taken)
    return True


def _payment_for(intent: gateway.Intent) -> Payment | None:
    payment = Payment.objects.filter(intent_id=intent.id).first()
    if payment is None and intent.order_ref:
        # The webhook can outrun the request that stores the intent id.
        try:
            payment = Payment.objects.filter(order__public_id=intent.order_ref).first()
        except ValidationError:
            return None
        if payment is not None and payment.intent_id not in (None, intent.id):
            return None
    return payment


def order_mark_paid(*, intent: gateway.Intent, reason: str = "") -> Order | None:
    """Record a succeeded PaymentIntent: the hold becomes a sale and the order
    ``paid``. If the hold had already ended, take the stock again, or refund the
    payment automatically when the stock is gone. A no-op when already applied.
    Broadcasts ``order.updated`` and ``purchase.made`` (and ``stock.changed``
    when stock moved)."""
    payment = _payment_for(intent)
    if payment is None:
        logger.warning("succeeded intent %s matches no order", intent.id)
        return None
    captured = intent.amount_received_minor or intent.amount_minor
    late_refund = 0
    # Read from Stripe before the transaction, and kept in it: whoever hears
    # of the payment (the pay answer, order.updated) finds the card saved.
    card = _card_to_keep(order_id=payment.order_id, intent=intent)
    replaced = ""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        if card is not None:
            replaced = _keep_card(order=order, card=card)
        Payment.objects.filter(pk=payment.pk).update(
            intent_id=intent.id,
            status=Payment.Status.SUCCEEDED,
            captured_minor=captured,
            updated_at=timezone.now(),
        )
        if order.status == S.RESERVED:
            StockHold.objects.filter(order=order, status=StockHold.Status.HELD).update(
                status=StockHold.Status.CONSUMED, settled_at=timezone.now()
            )
            _move(order, S.PAID, reason or "payment succeeded")
            _broadcast_purchase(order)
        elif order.status in CLOSED_UNPAID:
            if _retake_stock(order):
                _move(order, S.PAID, "payment succeeded after the hold ended")
                _broadcast_purchase(order)
            else:
                # Reserve the whole amount for the refund under the constraint
                # refunded <= captured; the refund call happens after commit.
                Payment.objects.filter(pk=payment.pk, refunded_minor=0).update(
                    refunded_minor=captured
                )
                _move(order, S.REFUNDED, "paid after the hold ended; sold out")
                late_refund = captured
    if late_refund:
        _refund_late(order=order, intent_id=intent.id, amount_minor=late_refund)
    if replaced:
        _detach_quietly(replaced)
    return order


def _refund_late(*, order: Order, intent_id: str, amount_minor: int) -> None:
    try:
        made = gateway.refund_create(
            intent_id=intent_id,
            amount_minor=amount_minor,
            idempotency_key=f"showfloor-order-{order.public_id}-late-refund",
        )
    except gateway.GatewayError:
        logger.error(
            "automatic refund of order %s failed; refund it from the admin",
            order.public_id,
        )
        return
    Refund.objects.get_or_create(
        provider_refund_id=made.id,
        defaults={
            "payment_id": order.payment.pk,
            "amount_minor": amount_minor,
            "currency": order.currency,
            "reason": "paid after the hold ended; sold out",
            "automatic": True,
            "status": made.status,
        },
    )


def _card_to_keep(*, order_id: int, intent: gateway.Intent) -> gateway.Card | None:
    """The card of a succeeded intent to keep for the buyer, who asked to save
    it: only when Stripe says it can be charged again (the intent set it up for
    ``SAVED_CARD_USAGE`` and the payment method is a card attached to the
    intent's customer), never from what the request said. None when there is
    nothing (new) to keep; asks Stripe only then."""
    if not (intent.payment_method_id and intent.customer_id):
        return None
    if intent.setup_future_usage != gateway.SAVED_CARD_USAGE:
        return None
    order = Order.objects.filter(pk=order_id).values("buyer_id", "save_card").first()
    if order is None or not (order["save_card"] and order["buyer_id"]):
        return None
    if SavedCard.objects.filter(
        user_id=order["buyer_id"], payment_method_id=intent.payment_method_id
    ).exists():
        return None  # kept already (a repeated delivery)
    try:
        card = gateway.payment_method_card(intent.payment_method_id)
    except gateway.GatewayError:
        return None
    if card.type != "card" or card.customer_id != intent.customer_id:
        return None
    return card


def _keep_card(*, order: Order, card: gateway.Card) -> str:
    """Keep ``card`` (Stripe's id, brand, last 4) on the buyer's row for its
    customer, in the caller's transaction; returns the payment method it
    replaced, for the caller to detach after commit ("" when none)."""
    if order.buyer_id is None:
        return ""
    row = (
        SavedCard.objects.select_for_update()
        .filter(user_id=order.buyer_id, customer_id=card.customer_id)
        .first()
    )
    if row is None:
        return ""
    SavedCard.objects.filter(pk=row.pk).update(
        payment_method_id=card.payment_method_id, brand=card.brand, last4=card.last4
    )
    if row.payment_method_id in ("", card.payment_method_id):
        return ""
    return row.payment_method_id


def _detach_quietly(payment_method_id: str) -> None:
    try:
        gateway.payment_method_detach(payment_method_id)
    except gateway.GatewayError:
        logger.warning("could not detach replaced card %s", payment_method_id)


def saved_card_remove(*, user: User) -> None:
    """Forget the buyer's saved card: detach it at Stripe (it can no longer be
    charged), then delete the ``SavedCard`` row. Nothing to remove is fine.
    Raises ``PaymentProviderError`` when Stripe does not answer (the card is
    then kept, so removing it again works)."""
    card = SavedCard.objects.filter(user=user).first()
    if card is None:
        return
    if card.payment_method_id:
        try:
            gateway.payment_method_detach(card.payment_method_id)
        except gateway.GatewayError as exc:
            raise PaymentProviderError() from exc
    SavedCard.objects.filter(pk=card.pk).delete()


def _close_unpaid(
    *, intent: gateway.Intent | None, order: Order | None, target: str, reason: str
) -> Order | None:
    if order is None:
        payment = _payment_for(intent) if intent is not None else None
        if payment is None:
            return None
        order_id = payment.order_id
    else:
        order_id = order.pk
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order_id)
        if intent is not None:
            status = (
                Payment.Status.CANCELED
                if target == S.CANCELLED
                else Payment.Status.FAILED
            )
            Payment.objects.filter(order_id=order_id).exclude(
                status=Payment.Status.SUCCEEDED
            ).update(
                status=status,
                failure_code=intent.error_code[:64],
                updated_at=timezone.now(),
            )
        if locked.status == S.RESERVED:
            _release_holds(locked)
            _move(locked, target, reason)
    return locked


def order_mark_failed(*, intent: gateway.Intent, reason: str = "") -> Order | None:
    """A declined or failed payment: a reserved order becomes ``failed`` and its
    stock returns. A no-op for an order that already moved on."""
    return _close_unpaid(
        intent=intent, order=None, target=S.FAILED, reason=reason or "payment failed"
    )


def order_mark_cancelled(*, intent: gateway.Intent) -> Order | None:
    """The PaymentIntent was cancelled: the reserved order is ``cancelled``."""
    return _close_unpaid(
        intent=intent, order=None, target=S.CANCELLED, reason="payment cancelled"
    )


def _cancel_intent_after_close(order: Order) -> None:
    """Cancel the order's PaymentIntent; if it turns out to have succeeded
    meanwhile, record the (late) payment."""
    intent_id = (
        Payment.objects.filter(order=order).values_list("intent_id", flat=True).first()
    )
    if not intent_id:
        return
    try:
        intent = gateway.intent_cancel(intent_id)
    except gateway.GatewayError:
        logger.warning(
            "could not cancel intent %s of order %s", intent_id, order.public_id
        )
        return
    if intent.status == "succeeded":
        order_mark_paid(intent=intent, reason="payment succeeded as the hold ended")


def order_cancel(*, order: Order, reason: str = "cancelled by the buyer") -> Order:
    """The buyer closed the sheet: a reserved order is ``cancelled``, its stock
    returns and its PaymentIntent is cancelled. Broadcasts ``stock.changed`` and
    ``order.updated``."""
    closed = _close_unpaid(intent=None, order=order, target=S.CANCELLED, reason=reason)
    if closed is None:
        raise OrderNotFound()
    if closed.status == S.CANCELLED:
        _cancel_intent_after_close(closed)
        closed.refresh_from_db()
    return closed


def _due_order_ids(*, status: str, now: datetime, limit: int) -> list[int]:
    """Orders in ``status`` holding units whose hold ran out (the sweeper's)."""
    return list(
        StockHold.objects.filter(
            status=StockHold.Status.HELD, expires_at__lte=now, order__status=status
        )
        .values_list("order_id", flat=True)
        .distinct()[:limit]
    )


def _lock_if_still(order_id: int, status: str) -> Order | None:
    """The order locked, if it is still in ``status`` and no other sweeper
    holds it (in the caller's transaction)."""
    return (
        Order.objects.select_for_update(skip_locked=True)
        .filter(pk=order_id, status=status)
        .first()
    )


def order_expire_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Expire reserved orders whose hold ran out: stock returns, the
    PaymentIntent is cancelled. Returns how many orders expired."""
    now = now or timezone.now()
    expired = 0
    for order_id in _due_order_ids(status=S.RESERVED, now=now, limit=limit):
        with transaction.atomic():
            order = _lock_if_still(order_id, S.RESERVED)
            if order is None:
                continue
            _release_holds(order)
            _move(order, S.EXPIRED, "hold expired")
        expired += 1
        _cancel_intent_after_close(order)
    return expired


# --- Placing an order -----------------------------------------------------


def _throttle_reservations(buyer: Buyer) -> None:
    """Holds take stock off sale for minutes: limit how fast one address (or
    one buyer) can take them. Sold-out answers never count."""
    per_minute = settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE
    if per_minute <= 0:
        return
    who = buyer.address or (buyer.scope if buyer.signed_in or buyer.session_key else "")
    if not who:
        return
    wait = limiter.take_token(
        f"checkout:reserve:{who}",
        capacity=settings.SHOWFLOOR_RESERVATIONS_BURST,
        rate=per_minute / 60,
    )
    if wait > 0:
        raise TooManyReservations(retry_after=wait)


def _clean_key(raw: str | None) -> str:
    key = (raw or "").strip()
    if not 8 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


def _lock_buyer_in_sale(sale: FlashSale, scope: str) -> None:
    """Serialize one buyer's orders in a sale, so the per-buyer count is exact."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [sale.pk % 2**31, zlib.crc32(scope.encode()) - 2**31],
            )
    else:
        FlashSale.objects.select_for_update().filter(pk=sale.pk).first()


def _order_key(
    *, buyer: Buyer, show: Show, variant_id: int, email: str, key: str
) -> str:
    """The stored, unique form of an Idempotency-Key (``Order.idempotency_key``).

    A signed-in buyer's key is theirs. A guest's is scoped to what the client
    sent (key, show, variant, email), not to a session: a guest's first Buy
    has no session yet, so five copies of it sent at once would otherwise each
    start one and make five orders. The unique column then lets one of them
    create the order; the others find it and answer with it."""
    if buyer.signed_in:
        return f"u{buyer.user.pk}:{key}"  # type: ignore[union-attr]
    scope = "\0".join([str(show.pk), str(variant_id), email.casefold(), key])
    return "g:" + hashlib.sha256(scope.encode()).hexdigest()


def _existing(full_key: str) -> Order | None:
    return (
        Order.objects.select_related("payment").filter(idempotency_key=full_key).first()
    )


def _replay(order: Order, buyer: Buyer) -> OrderPlaced:
    """The answer for a repeated Idempotency-Key: the same order.

    A guest's order is read and paid through its session; a replay from a
    client with no session yet (the same first Buy sent twice) is answered
    with that session (the view sends its cookie). A replay from another
    guest session is refused: the key is in use by someone else's checkout."""
    if (
        not buyer.signed_in
        and buyer.session_key
        and buyer.session_key != order.session_key
    ):
        raise IdempotencyKeyReused()
    client_secret = ""  # nosec B105 - none yet, not a password
    payment = _wait_for_intent(order, wait=order.status == S.RESERVED)
    if payment is not None and payment.intent_id and order.status == S.RESERVED:
        try:
            client_secret = gateway.intent_retrieve(payment.intent_id).client_secret
        except gateway.GatewayError:
            client_secret = ""  # nosec B105 - none to hand out, not a password
    hold = order.holds.order_by("id").first()
    return OrderPlaced(
        order=order,
        client_secret=client_secret,
        expires_at=hold.expires_at if hold else None,
        created=False,
    )


def _customer_for(user: User) -> str:
    card = SavedCard.objects.filter(user=user).first()
    if card is not None:
        return card.customer_id
    customer_id = gateway.customer_create(
        email=user.email, idempotency_key=f"showfloor-user-{user.pk}-customer"
    )
    card, _ = SavedCard.objects.get_or_create(
        user=user, defaults={"customer_id": customer_id}
    )
    return card.customer_id


# The ``Order.source`` of an order placed from a show's replay.
REPLAY_SOURCE = "replay"


def selling_from_replay(show: Show, *, replay_access: bool) -> bool:
    """False while ``show`` is live; True when it sells from its replay (it
    ended, has a recording and the buyer may watch it); else ``ShowNotLive``."""
    if show.status == Show.Status.LIVE:
        return False
    if (
        show.status == Show.Status.ENDED
        and replay_access
        and stream_recording_path(show=show) is not None
    ):
        return True
    raise ShowNotLive()


def order_create(
    *,
    show: Show,
    buyer: Buyer,
    variant_id: int,
    quantity: int,
    idempotency_key: str | None,
    save_card: bool = False,
    proof_city: str = "",
    address: dict[str, object] | None = None,
    save_address: bool = False,
    source: str = "",
    share_link_id: int | None = None,
    replay_access: bool = False,
) -> OrderPlaced:
    """Reserve ``quantity`` of a pinned variant for ``buyer`` and open a
    PaymentIntent for it. ``source`` and ``share_link_id`` say where the
    buyer came from (``shows/attribution.py``); the order keeps them.

    Where the brand has set up delivery and the product is posted, the order
    needs ``address`` (checked for its country); the total is then the lines
    plus shipping, with tax included or added (``services.delivery``,
    ``checkout/pricing.py``), and a signed-in buyer's address is kept for next
    time when ``save_address``. Raises ``AddressRequired``, ``AddressInvalid``
    or ``NotShippable`` before anything is reserved.

    One conditional UPDATE moves the stock into a hold that expires after
    ``SHOWFLOOR_HOLD_SECONDS``; the order starts ``reserved``. The same
    Idempotency-Key from the same buyer returns the same order. During a flash
    sale the sale price applies and the per-buyer limit counts earlier orders.

    An ended show with a recording still sells from its replay when the
    caller says the buyer may watch it (``replay_access``, the page's own
    access rule): any product of the line-up, at list price (the sales ended
    with the show), recorded with the source ``replay`` (docs/replay.md).

    Raises ``SoldOut``, ``ShowNotLive``, ``UnknownVariant``, ``NotPinned``,
    ``QuantityInvalid``, ``OverBuyerLimit``, ``EmailRequired``,
    ``IdempotencyKeyInvalid`` or ``PaymentProviderError`` (the order is then
    failed and its stock back). Broadcasts ``stock.changed`` and, to the buyer,
    ``order.updated``; after commit records the key and, when the stock reached
    zero, the sold-out marker (``checkout/soldout.py``).
    """
    key = _clean_key(idempotency_key)
    email = buyer.user.email if buyer.signed_in else buyer.email.strip()  # type: ignore[union-attr]
    if not buyer.signed_in:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise EmailRequired() from exc
    full_key = _order_key(
        buyer=buyer, show=show, variant_id=variant_id, email=email, key=key
    )
    existing = _existing(full_key)
    if existing is not None:
        return _replay(existing, buyer)
    from_replay = selling_from_replay(show, replay_access=replay_access)
    if from_replay:
        source = REPLAY_SOURCE
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise QuantityInvalid()
    now = timezone.now()
    # Read before the stock: the sold-out marker is written only if no stock
    # came back since (checkout/soldout.py).
    seen = soldout.generation(variant_id)
    variant = selectors.variant_in_show(show=show, variant_id=variant_id, now=now)
    if variant is None:
        raise UnknownVariant()
    if not variant.pinned and not from_replay:  # type: ignore[attr-defined]
        raise NotPinned()
    sale = None if from_replay else selectors.sale_for_variant(variant)
    limit = sale.per_buyer_limit if sale else settings.SHOWFLOOR_MAX_PER_BUYER
    if quantity > limit:
        raise OverBuyerLimit(
            _("You can take at most %(limit)s of this.") % {"limit": limit}
        )
    if variant.stock_available < quantity:
        # Cheap answer for the sold-out storm; the UPDATE below decides the rest.
        soldout.mark(
            variant_id=variant.pk,
            slug=show.slug,
            seen=seen,
            sold_out=variant.stock_available == 0,
            left=variant.stock_available,
        )
        raise SoldOut()
    unit_minor = sale.price_minor if sale else variant.price_minor
    price, ship_to = delivery.delivery_quote(
        show=show,
        currency=variant.currency,
        lines=[
            pricing.Line(
                unit_minor,
                quantity,
                variant.requires_shipping,  # type: ignore[attr-defined]
            )
        ],
        address=address,
    )
    expires_at = now + timedelta(seconds=settings.SHOWFLOOR_HOLD_SECONDS)
    _throttle_reservations(buyer)
    new_session = not buyer.signed_in and not buyer.session_key
    if new_session and buyer.start_session is None:
        raise EmailRequired()
    asked_by = buyer
    try:
        with transaction.atomic():
            if new_session:
                # In the order's transaction: one commit to wait for, not two.
                buyer = replace(buyer, session_key=buyer.start_session())  # type: ignore[misc]
            # A session this request started has no earlier orders to count.
            if sale is not None and not new_session:
                _lock_buyer_in_sale(sale, buyer.scope)
                earlier = selectors.sale_quantity_of_buyer(
                    sale=sale, buyer_scope=buyer.line_filter()
                )
                if earlier + quantity > limit:
                    raise OverBuyerLimit(
                        _("You can take at most %(limit)s of this in the sale.")
                        % {"limit": limit}
                    )
            order = Order.objects.create(
                show=show,
                buyer=buyer.user if buyer.signed_in else None,
                email=email,
                session_key="" if buyer.signed_in else buyer.session_key,
                total_minor=price.total_minor,
                subtotal_minor=price.subtotal_minor,
                shipping_minor=price.shipping_minor,
                tax_minor=price.tax_minor,
                tax_rate_bp=price.tax_rate_bp,
                tax_included=price.tax_included,
                currency=variant.currency,
                idempotency_key=full_key,
                sale=sale,
                save_card=save_card and buyer.signed_in,
                proof_city=proof_city.strip()[:60],
                language=translation.get_language() or "",
                source=source[:64],
                share_link_id=share_link_id,
            )
            if ship_to is not None:
                delivery.order_address_record(order=order, address=ship_to)
                if save_address and buyer.signed_in:
                    delivery.saved_address_set(user=buyer.user, address=ship_to)  # type: ignore[arg-type]
            OrderLine.objects.create(
                order=order,
                variant=variant,
                product_name=variant.product_name,  # type: ignore[attr-defined]
                variant_name=variant.name,
                quantity=quantity,
                unit_price_minor=unit_minor,
                currency=variant.currency,
                sale=sale,
            )
            StockHold.objects.create(
                order=order, variant=variant, quantity=quantity, expires_at=expires_at
            )
            Payment.objects.create(
                order=order,
                provider=gateway.PROVIDER,
                amount_minor=order.total_minor,
                currency=order.currency,
            )
            OrderTransition.objects.create(
                order=order, from_status="", to_status=S.RESERVED, reason="stock held"
            )
            # Last statement before commit: the variant row stays locked briefly.
            taken = _take_stock(variant.pk, quantity)
            if taken is None:
                raise SoldOut()
            left = _broadcast_stock(show.pk, variant.pk, known=taken)
            _notify_order(order)
            counts.order_held(order, product_ids=[variant.product_id])
            # The key first, so a replay of this order is never answered early.
            transaction.on_commit(
                partial(
                    soldout.mark,
                    variant_id=variant.pk,
                    slug=show.slug,
                    seen=seen,
                    sold_out=left == 0,
                    order_key=key,
                    left=left,
                )
            )
    except IntegrityError:
        # The same Buy sent at once: the request that inserted first made the
        # order (its commit ended our wait on the unique index).
        existing = _existing(full_key)
        if existing is None:
            raise
        return _replay(existing, asked_by)
    intent = _intent_open(order)
    return OrderPlaced(
        order=order,
        client_secret=intent.client_secret,
        expires_at=expires_at,
        created=True,
    )


def _intent_open(order: Order) -> gateway.Intent:
    """Create the order's PaymentIntent (idempotency key from the order)."""
    try:
        customer_id = ""
        if order.buyer_id and order.save_card:
            customer_id = _customer_for(order.buyer)  # type: ignore[arg-type]
        elif order.buyer_id:
            customer_id = (
                SavedCard.objects.filter(user_id=order.buyer_id)
                .values_list("customer_id", flat=True)
                .first()
                or ""
            )
        intent = gateway.intent_create(
            amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"showfloor-order-{order.public_id}-intent",
            metadata={"order": str(order.public_id), "show": str(order.show_id)},
            customer_id=customer_id,
            save_card=bool(order.buyer_id and order.save_card),
        )
    except gateway.GatewayError as exc:
        _close_unpaid(
            intent=None, order=order, target=S.FAILED, reason="payment provider error"
        )
        raise PaymentProviderError() from exc
    Payment.objects.filter(order=order, intent_id__isnull=True).update(
        intent_id=intent.id, status=intent.status, updated_at=timezone.now()
    )
    return intent


def _wait_for_intent(order: Order, *, wait: bool = True) -> Payment | None:
    """The order's payment once its intent exists: a repeated request may arrive
    while the first one is still talking to Stripe."""
    deadline = time.monotonic() + (INTENT_WAIT_SECONDS if wait else 0)
    while True:
        payment = Payment.objects.filter(order=order).first()
        if payment is None or payment.intent_id or time.monotonic() >= deadline:
            return payment
        time.sleep(0.05)


# --- Paying ---------------------------------------------------------------


def order_pay(
    *,
    order: Order,
    buyer: Buyer,
    method: str,
    test_payment_method: str = "",
) -> PayResult:
    """Confirm the order's PaymentIntent on the server with the buyer's saved
    card (``method="saved"``) or, in test mode only, a Stripe test payment
    method (``method="test"``). When the bank asks for 3-D Secure the result is
    ``requires_action`` with the client secret for the browser.

    Raises ``OrderNotPayable``, ``NoSavedCard``, ``PaymentMethodUnavailable``,
    ``PaymentDeclined`` (the order is then failed and its stock back) or
    ``PaymentProviderError``.
    """
    if order.status in (S.PAID, S.FULFILLED):
        return PayResult(order=order, outcome="paid")
    if order.status != S.RESERVED:
        raise OrderNotPayable()
    payment = _wait_for_intent(order)
    if payment is None or not payment.intent_id:
        raise PaymentProviderError()
    customer_id = ""
    if method == "saved":
        card = selectors.saved_card_for(user=buyer.user)
        if card is None:
            raise NoSavedCard()
        payment_method, customer_id = card.payment_method_id, card.customer_id
    elif method == "test" and gateway.test_mode():
        # Saved, when the buyer asked, by the intent's setup_future_usage as
        # in production.
        payment_method = test_payment_method or settings.SHOWFLOOR_TEST_PAYMENT_METHOD
    else:
        raise PaymentMethodUnavailable()
    try:
        intent = gateway.intent_confirm(
            intent_id=payment.intent_id,
            payment_method_id=payment_method,
            customer_id=customer_id,
            return_url=order_return_url(order),
        )
    except gateway.CardDeclined as exc:
        failed = exc.intent or gateway.intent_retrieve(payment.intent_id)
        order_mark_failed(intent=failed, reason=f"card declined ({exc.code})")
        raise PaymentDeclined() from exc
    except gateway.GatewayError as exc:
        raise PaymentProviderError() from exc
    return intent_apply(order=order, intent=intent)


def order_return_url(order: Order) -> str:
    """Where Stripe sends the buyer back after a redirecting payment method
    (iDEAL, Bancontact, a 3-D Secure page): the show page marked with the
    order. Stripe adds ``payment_intent``, ``payment_intent_client_secret``
    and ``redirect_status``; the page then asks ``POST
    /api/orders/<id>/refresh`` (``order_refresh``), trusting none of them."""
    path = reverse("show_detail", args=[order.show.slug])
    query = urlencode({"order": str(order.public_id)})
    return f"{str(settings.SHOWFLOOR_PUBLIC_URL).rstrip('/')}{path}?{query}"


def intent_apply(*, order: Order, intent: gateway.Intent) -> PayResult:
    """Apply what the provider says about the intent right after a confirmation."""
    if intent.status == "succeeded":
        paid = order_mark_paid(intent=intent, reason="payment confirmed")
        return PayResult(order=paid or order, outcome="paid")
    Payment.objects.filter(order=order).exclude(status=Payment.Status.SUCCEEDED).update(
        status=intent.status, updated_at=timezone.now()
    )
    if intent.status == "requires_action":
        return PayResult(
            order=order, outcome="requires_action", client_secret=intent.client_secret
        )
    if intent.status == "requires_payment_method":
        order_mark_failed(intent=intent, reason="authentication failed")
        raise PaymentDeclined(_("The bank did not approve the payment."))
    return PayResult(order=order, outcome="processing")


def order_refresh(*, order: Order) -> PayResult:
    """Read the order's PaymentIntent from Stripe and apply it, as the webhook
    would: for the buyer back from a bank's page (iDEAL, Bancontact, 3-D
    Secure), so the page is right before the webhook arrives. Succeeded →
    ``order_mark_paid``; failed (Stripe returns a refused redirect to
    ``requires_payment_method`` with an error) → ``order_mark_failed``, stock
    back, and ``PaymentDeclined``; cancelled → ``order_mark_cancelled``. An
    intent nobody tried to pay yet changes nothing (outcome
    ``requires_payment_method``). Trusts nothing the browser brought back.

    Raises ``PaymentDeclined`` or ``PaymentProviderError``; broadcasts what the
    services it calls broadcast."""
    if order.status in (S.PAID, S.FULFILLED, S.REFUNDED):
        return PayResult(order=order, outcome="paid")
    payment = Payment.objects.filter(order=order).first()
    if payment is None or not payment.intent_id:
        return PayResult(order=order, outcome="processing")
    try:
        intent = gateway.intent_retrieve(payment.intent_id)
    except gateway.GatewayError as exc:
        raise PaymentProviderError() from exc
    if intent.status == "requires_payment_method" and not intent.error_code:
        return PayResult(
            order=order,
            outcome="requires_payment_method",
            client_secret=intent.client_secret,
        )
    if intent.status == "canceled":
        order_mark_cancelled(intent=intent)
        return PayResult(order=order, outcome="cancelled")
    if intent.status == "requires_payment_method":
        order_mark_failed(
            intent=intent, reason=f"payment failed on return ({intent.error_code})"
        )
        raise PaymentDeclined(_("The bank did not approve the payment."))
    return intent_apply(order=order, intent=intent)
