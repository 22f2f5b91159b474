"""The bag: several products of a show, each line holding its own stock, paid
once.

One-tap Buy on a pinned product stays the fast path (``order_create``). Beside
it a viewer fills a bag with pinned or line-up products. The bag is an
``Order`` in status ``open``: one per buyer and show (a partial unique index),
no payment yet. Every change of a line takes or returns stock with the same
conditional UPDATE as a Buy, so the bag never oversells, and each taking is a
``StockHold`` of its own that expires ``SHOWFLOOR_BAG_HOLD_SECONDS`` after it
was taken; an expired hold gives its units back and shrinks its line
(``bag_expire_due``, and every read of the bag). A line keeps the price it was
given when its quantity last changed (the sale price while a sale runs); the
sale's per-buyer limit counts the bag's lines with the buyer's orders.

Checking out prices the bag with the delivery address (shipping, tax), moves
it to ``reserved``, gives every hold one more hold period, and opens one
PaymentIntent for the total: from then on it is paid, expires or is
cancelled exactly like a one-tap order.

Every change sends ``bag.updated`` with the bag (or ``null``) to the buyer's
sockets, so another tab and the badge follow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from checkout import pricing, selectors, soldout
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    BagChanged,
    BagEmpty,
    BagFull,
    CurrencyMismatch,
    EmailRequired,
    OverBuyerLimit,
    QuantityInvalid,
    SoldOut,
    UnknownVariant,
)
from checkout.models import (
    Order,
    OrderLine,
    OrderTransition,
    Payment,
    StockHold,
)
from checkout.services import delivery
from checkout.services.orders import (
    REPLAY_SOURCE,
    Buyer,
    OrderPlaced,
    S,
    _broadcast_stock,
    _due_order_ids,
    _intent_open,
    _lock_buyer_in_sale,
    _lock_if_still,
    _move,
    _recipient,
    _replay,
    _take_stock,
    _throttle_reservations,
    selling_from_replay,
)
from realtime import events
from shows.models import Show, Variant

# Distinct products and options in one bag.
MAX_LINES = 20


def _owner(buyer: Buyer) -> dict[str, Any]:
    if buyer.signed_in:
        return {"buyer": buyer.user}
    return {"buyer__isnull": True, "session_key": buyer.session_key}


def _open_bag(show: Show, buyer: Buyer, *, lock: bool) -> Order | None:
    if not buyer.signed_in and not buyer.session_key:
        return None
    query = Order.objects.filter(show=show, status=S.OPEN, **_owner(buyer))
    if lock:
        query = query.select_for_update()
    return query.first()


def _checkout_of(show: Show, buyer: Buyer) -> Order | None:
    """The buyer's checked-out bag in ``show`` still waiting for payment."""
    if not buyer.signed_in and not buyer.session_key:
        return None
    return (
        Order.objects.filter(
            show=show, status=S.RESERVED, from_bag=True, **_owner(buyer)
        )
        .order_by("-id")
        .first()
    )


def bag_json(order: Order | None, *, now: datetime | None = None) -> dict[str, Any]:
    """The bag as the sheet and ``bag.updated`` show it: its lines with each
    line's earliest hold expiry, the subtotal and the count of units."""
    if order is None or order.status != S.OPEN:
        return {"bag": None}
    now = now or timezone.now()
    expiries: dict[int, datetime] = {}
    for variant_id, expires_at in StockHold.objects.filter(
        order=order, status=StockHold.Status.HELD
    ).values_list("variant_id", "expires_at"):
        if variant_id not in expiries or expires_at < expiries[variant_id]:
            expiries[variant_id] = expires_at
    data = selectors.order_json(order)
    for line in data["lines"]:
        expires = expiries.get(line["variant_id"])
        line["expires_at"] = expires.isoformat() if expires else None
    data["count"] = sum(line["quantity"] for line in data["lines"])
    data["server_now"] = int(now.timestamp() * 1000)
    return {"bag": data}


def _send(order: Order) -> None:
    """``bag.updated`` to the buyer's sockets (after commit, in the outbox)."""
    recipient = _recipient(order)
    if recipient is None:
        return
    payload = bag_json(order)
    events.notify(order.show_id, recipient, {"type": events.BAG_UPDATED, **payload})


def _retotal(order: Order) -> None:
    """The bag's subtotal (its lines at their prices); shipping and tax come
    with the address at checkout."""
    subtotal = sum(line.unit_price_minor * line.quantity for line in order.lines.all())
    Order.objects.filter(pk=order.pk).update(
        subtotal_minor=subtotal,
        total_minor=subtotal,
        shipping_minor=0,
        tax_minor=0,
        updated_at=timezone.now(),
    )
    order.subtotal_minor = order.total_minor = subtotal
    order.shipping_minor = order.tax_minor = 0


def _give_back(order: Order, hold: StockHold, quantity: int, now: datetime) -> int:
    """Return ``quantity`` units of a held hold to stock (all of it, or split
    off part of it); returns the units returned (0 if it was no longer held)."""
    if quantity >= hold.quantity:
        moved = StockHold.objects.filter(
            pk=hold.pk, status=StockHold.Status.HELD
        ).update(status=StockHold.Status.RELEASED, settled_at=now)
        quantity = hold.quantity
    else:
        moved = StockHold.objects.filter(
            pk=hold.pk, status=StockHold.Status.HELD, quantity=hold.quantity
        ).update(quantity=F("quantity") - quantity)
        if moved:
            StockHold.objects.create(
                order=order,
                variant_id=hold.variant_id,
                quantity=quantity,
                expires_at=hold.expires_at,
                status=StockHold.Status.RELEASED,
                settled_at=now,
            )
    if not moved:
        return 0
    Variant.objects.filter(pk=hold.variant_id).update(
        stock_available=F("stock_available") + quantity
    )
    _broadcast_stock(order.show_id, hold.variant_id)
    transaction.on_commit(partial(soldout.clear, hold.variant_id))
    return quantity


def _shrink_line(order: Order, variant_id: int, by: int) -> None:
    line = OrderLine.objects.filter(order=order, variant_id=variant_id).first()
    if line is None:
        return
    if line.quantity <= by:
        line.delete()
    else:
        OrderLine.objects.filter(pk=line.pk).update(quantity=F("quantity") - by)


def _drop_expired(order: Order, now: datetime) -> bool:
    """In a locked open bag: give back the holds that ran out and shrink their
    lines; an emptied bag expires. Returns whether anything changed."""
    due = list(
        StockHold.objects.filter(
            order=order, status=StockHold.Status.HELD, expires_at__lte=now
        )
    )
    for hold in due:
        returned = _give_back(order, hold, hold.quantity, now)
        if returned:
            _shrink_line(order, hold.variant_id, returned)
    if not due:
        return False
    _retotal(order)
    if not order.lines.exists():
        _move(order, S.EXPIRED, "every line's hold ran out")
    return True


def bag_get(*, show: Show, buyer: Buyer) -> tuple[Order | None, Order | None]:
    """The buyer's open bag in ``show`` (holds that ran out are given back
    first) and their checked-out bag still waiting for payment, if any."""
    pending = _checkout_of(show, buyer)
    if _open_bag(show, buyer, lock=False) is None:
        return None, pending
    with transaction.atomic():
        bag = _open_bag(show, buyer, lock=True)
        if bag is not None and _drop_expired(bag, timezone.now()):
            _send(bag)
    return (bag if bag is not None and bag.status == S.OPEN else None), pending


def _bag_for_update(show: Show, buyer: Buyer, *, currency: str) -> Order:
    """The buyer's open bag, locked; a new one when they have none."""
    bag = _open_bag(show, buyer, lock=True)
    if bag is not None:
        return bag
    try:
        with transaction.atomic():
            bag = Order(
                show=show,
                buyer=buyer.user if buyer.signed_in else None,
                session_key="" if buyer.signed_in else buyer.session_key,
                email=buyer.user.email if buyer.signed_in else "",  # type: ignore[union-attr]
                status=S.OPEN,
                from_bag=True,
                total_minor=0,
                currency=currency,
                language=translation.get_language() or "",
            )
            bag.idempotency_key = f"bag:{bag.public_id}"
            bag.save(force_insert=True)
            OrderTransition.objects.create(
                order=bag, from_status="", to_status=S.OPEN, reason="bag opened"
            )
    except IntegrityError:
        # The same first "Add" sent twice at once: the other request's bag.
        bag = _open_bag(show, buyer, lock=True)
        if bag is None:
            raise
    return bag


def bag_set_line(
    *,
    show: Show,
    buyer: Buyer,
    variant_id: int,
    quantity: int,
    replay_access: bool = False,
) -> tuple[Order | None, Buyer]:
    """Set how many of a line-up variant the buyer's bag holds (0 removes the
    line). Takes or gives back only the difference, so a repeated request
    (a double tap) changes nothing. Returns the bag (None once emptied) and the
    buyer, whose guest session this may have started.

    Raises ``ShowNotLive``, ``UnknownVariant``, ``QuantityInvalid``,
    ``OverBuyerLimit``, ``SoldOut``, ``CurrencyMismatch``, ``BagFull`` or
    ``TooManyReservations``; nothing changes then.

    An ended show's replay fills the bag too, at list price, when the caller
    says the buyer may watch it (``replay_access``; docs/replay.md)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
        raise QuantityInvalid()
    from_replay = selling_from_replay(show, replay_access=replay_access)
    now = timezone.now()
    seen = soldout.generation(variant_id)
    variant = selectors.variant_in_show(show=show, variant_id=variant_id, now=now)
    if variant is None:
        raise UnknownVariant()
    sale = None if from_replay else selectors.sale_for_variant(variant)
    limit = sale.per_buyer_limit if sale else settings.SHOWFLOOR_MAX_PER_BUYER
    if quantity > limit:
        raise OverBuyerLimit(
            _("You can take at most %(limit)s of this.") % {"limit": limit}
        )
    if quantity == 0 and _open_bag(show, buyer, lock=False) is None:
        return None, buyer
    if quantity > 0:
        _throttle_reservations(buyer)
    new_session = not buyer.signed_in and not buyer.session_key
    if new_session and buyer.start_session is None:
        raise EmailRequired()
    left: int | None = None
    with transaction.atomic():
        if new_session:
            buyer = replace(buyer, session_key=buyer.start_session())  # type: ignore[misc]
        bag = _bag_for_update(show, buyer, currency=variant.currency)
        _drop_expired(bag, now)
        if bag.status != S.OPEN:  # emptied by expiry just now: a fresh one
            bag = _bag_for_update(show, buyer, currency=variant.currency)
        lines = list(bag.lines.all())
        line = next((x for x in lines if x.variant_id == variant.pk), None)
        if lines and line is None and quantity > 0:
            if lines[0].currency != variant.currency:
                raise CurrencyMismatch()
            if len(lines) >= MAX_LINES:
                raise BagFull()
        elif not lines:
            Order.objects.filter(pk=bag.pk).update(currency=variant.currency)
            bag.currency = variant.currency
        held = line.quantity if line else 0
        delta = quantity - held
        if sale is not None and delta > 0:
            _lock_buyer_in_sale(sale, buyer.scope)
            earlier = selectors.sale_quantity_of_buyer(
                sale=sale, buyer_scope=buyer.line_filter()
            )
            in_this_line = held if line is not None and line.sale_id == sale.pk else 0
            if earlier - in_this_line + quantity > limit:
                raise OverBuyerLimit(
                    _("You can take at most %(limit)s of this in the sale.")
                    % {"limit": limit}
                )
        if delta > 0:
            taken = _take_stock(variant.pk, delta)
            if taken is None:
                raise SoldOut()
            StockHold.objects.create(
                order=bag,
                variant=variant,
                quantity=delta,
                expires_at=now + timedelta(seconds=settings.SHOWFLOOR_BAG_HOLD_SECONDS),
            )
            left = _broadcast_stock(show.pk, variant.pk, known=taken)
        elif delta < 0:
            owed = -delta
            # The newest holds first: the oldest keep their place in time.
            for hold in StockHold.objects.filter(
                order=bag, variant=variant, status=StockHold.Status.HELD
            ).order_by("-expires_at", "-id"):
                owed -= _give_back(bag, hold, min(owed, hold.quantity), now)
                if owed <= 0:
                    break
        unit = sale.price_minor if sale else variant.price_minor
        if quantity == 0:
            if line is not None:
                line.delete()
        elif line is None:
            OrderLine.objects.create(
                order=bag,
                variant=variant,
                product_name=variant.product_name,  # type: ignore[attr-defined]
                variant_name=variant.name,
                quantity=quantity,
                unit_price_minor=unit,
                currency=variant.currency,
                sale=sale,
            )
        else:
            OrderLine.objects.filter(pk=line.pk).update(
                quantity=quantity, unit_price_minor=unit, sale=sale
            )
        _retotal(bag)
        if not bag.lines.exists():
            _move(bag, S.CANCELLED, "bag emptied")
        _send(bag)
        if left is not None:
            transaction.on_commit(
                partial(
                    soldout.mark,
                    variant_id=variant.pk,
                    slug=show.slug,
                    seen=seen,
                    sold_out=left == 0,
                    left=left,
                )
            )
    return (bag if bag.status == S.OPEN else None), buyer


def bag_checkout(
    *,
    show: Show,
    buyer: Buyer,
    address: dict[str, object] | None = None,
    save_address: bool = False,
    save_card: bool = False,
    proof_city: str = "",
    source: str = "",
    share_link_id: int | None = None,
) -> OrderPlaced:
    """Pay for the bag: price it delivered to ``address`` (shipping, tax),
    make it a ``reserved`` order whose holds all last one more hold period,
    and open its PaymentIntent. A repeat (a double tap on Pay) answers with
    the same order. ``source`` and ``share_link_id`` say where the buyer came
    from when checking out (``shows/attribution.py``); the order keeps them.

    Raises ``BagEmpty`` (nothing held any more), ``EmailRequired`` (a guest
    without a valid email), ``AddressRequired``, ``AddressInvalid``,
    ``NotShippable`` or ``PaymentProviderError``; the bag is then unchanged
    (apart from holds that ran out)."""
    email = buyer.user.email if buyer.signed_in else buyer.email.strip()  # type: ignore[union-attr]
    if not buyer.signed_in:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise EmailRequired() from exc
    if show.status == Show.Status.ENDED:
        source = REPLAY_SOURCE  # filled from the replay (docs/replay.md)
    now = timezone.now()
    with transaction.atomic():
        bag = _open_bag(show, buyer, lock=True)
        if bag is None:
            pending = _checkout_of(show, buyer)
            if pending is not None:
                return _replay(pending, buyer)
            raise BagEmpty()
        if _drop_expired(bag, now):
            _send(bag)
        expired = bag.status != S.OPEN
    if expired:
        raise BagEmpty()
    lines = list(bag.lines.select_related("variant__product"))
    if not lines:
        raise BagEmpty()
    price, ship_to = delivery.delivery_quote(
        show=show,
        currency=bag.currency,
        lines=[
            pricing.Line(
                line.unit_price_minor,
                line.quantity,
                line.variant.product.requires_shipping,
            )
            for line in lines
        ],
        address=address,
    )
    with transaction.atomic():
        bag = _open_bag(show, buyer, lock=True)
        if bag is None:  # checked out meanwhile (a double tap)
            pending = _checkout_of(show, buyer)
            if pending is None:
                raise BagEmpty()
            return _replay(pending, buyer)
        if [(x.variant_id, x.quantity, x.unit_price_minor) for x in lines] != [
            (x.variant_id, x.quantity, x.unit_price_minor) for x in bag.lines.all()
        ]:
            # Changed in another tab between the two reads: price it again.
            raise BagChanged()
        Order.objects.filter(pk=bag.pk).update(
            email=email,
            total_minor=price.total_minor,
            subtotal_minor=price.subtotal_minor,
            shipping_minor=price.shipping_minor,
            tax_minor=price.tax_minor,
            tax_rate_bp=price.tax_rate_bp,
            tax_included=price.tax_included,
            save_card=save_card and buyer.signed_in,
            proof_city=proof_city.strip()[:60],
            language=translation.get_language() or bag.language,
            source=source[:64],
            share_link_id=share_link_id,
        )
        bag.refresh_from_db()
        if ship_to is not None:
            delivery.order_address_record(order=bag, address=ship_to)
            if save_address and buyer.signed_in:
                delivery.saved_address_set(user=buyer.user, address=ship_to)  # type: ignore[arg-type]
        # Paying takes as long as a one-tap Buy may: every line one more period.
        expires_at = now + timedelta(seconds=settings.SHOWFLOOR_HOLD_SECONDS)
        StockHold.objects.filter(
            order=bag, status=StockHold.Status.HELD, expires_at__lt=expires_at
        ).update(expires_at=expires_at)
        Payment.objects.create(
            order=bag,
            provider=gateway.PROVIDER,
            amount_minor=bag.total_minor,
            currency=bag.currency,
        )
        _move(bag, S.RESERVED, "bag checked out")
        _send(bag)
    intent = _intent_open(bag)
    first = (
        StockHold.objects.filter(order=bag, status=StockHold.Status.HELD)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )
    return OrderPlaced(
        order=bag,
        client_secret=intent.client_secret,
        expires_at=first or expires_at,
        created=True,
    )


def bag_checkout_resume(order: Order) -> tuple[str, datetime | None]:
    """A checked-out bag's PaymentIntent client secret ("" when Stripe does
    not answer or there is none yet) and when its first hold ends: what the
    sheet needs to pay it after a reload, without checking out again."""
    first = (
        StockHold.objects.filter(order=order, status=StockHold.Status.HELD)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )
    intent_id = (
        Payment.objects.filter(order=order).values_list("intent_id", flat=True).first()
    )
    if not intent_id:
        return "", first
    try:
        return gateway.intent_retrieve(intent_id).client_secret, first
    except gateway.GatewayError:
        return "", first


def bag_quote(*, show: Show, buyer: Buyer, country: str) -> pricing.Quote:
    """What the open bag costs delivered to ``country``: the sheet's figures
    before checkout. Raises ``BagEmpty`` or ``NotShippable``."""
    bag = _open_bag(show, buyer, lock=False)
    lines = (
        list(bag.lines.select_related("variant__product")) if bag is not None else []
    )
    if not lines:
        raise BagEmpty()
    return delivery.lines_quote(
        show=show,
        currency=lines[0].currency,
        lines=[
            pricing.Line(
                line.unit_price_minor,
                line.quantity,
                line.variant.product.requires_shipping,
            )
            for line in lines
        ],
        country=country,
    )


def bag_expire_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Give back the bag holds that ran out (the sweeper calls this): their
    lines shrink, emptied bags expire, the buyer's sockets hear of it.
    Returns how many bags changed."""
    now = now or timezone.now()
    changed = 0
    for order_id in _due_order_ids(status=S.OPEN, now=now, limit=limit):
        with transaction.atomic():
            bag = _lock_if_still(order_id, S.OPEN)
            if bag is None:
                continue
            if _drop_expired(bag, now):
                _send(bag)
                changed += 1
    return changed


__all__ = [
    "bag_checkout",
    "bag_checkout_resume",
    "bag_expire_due",
    "bag_get",
    "bag_json",
    "bag_quote",
    "bag_set_line",
]
