"""Refunds, never more than was captured: made here through the gateway
(``order_refund``) or reported by the provider (``order_refunds_record``, for a
refund made in Stripe's dashboard, or our own reported back). Both end in
``_settle``: one ``Refund`` row per provider refund id, and the order
``refunded`` once everything captured is refunded; a partial refund leaves it
``paid`` (or ``fulfilled``) with ``Payment.refunded_minor`` above zero.

A refund's status only moves forward (``pending`` → ``succeeded``, ``failed``
or ``canceled``), so reports delivered in any order, any number of times, end
the same. Pending and succeeded refunds count as refunded money; one that
fails or is canceled gives its amount back to the payment, and an order that
was ``refunded`` by it goes back to what it was before.

A refund returns stock only when the brand asks (``restock``, or
``order_restock`` later): the units may already be on their way to the buyer.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from checkout import counts
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    NotRefundable,
    PaymentNotRecorded,
    PaymentProviderError,
    RefundTooLarge,
)
from checkout.models import Order, OrderTransition, Payment, Refund, StockHold
from checkout.services.orders import _move, _notify_order, _return_holds
from shows.models import User

logger = logging.getLogger(__name__)


def order_refund(
    *,
    order: Order,
    amount_minor: int | None = None,
    reason: str = "",
    by: User | None = None,
    restock: bool = False,
) -> Refund:
    """Refund all (``amount_minor=None``) or part of a paid order's payment,
    and return its units to stock if the brand says so (``restock``).

    The amount is first reserved on the payment with a conditional update
    (``refunded + amount <= captured``), then refunded through the gateway
    outside any transaction; a gateway failure gives the reservation back. The
    order becomes ``refunded`` once everything captured is refunded.
    Raises ``NotRefundable``, ``RefundTooLarge`` or ``PaymentProviderError``.
    """
    payment = Payment.objects.filter(order=order).first()
    if (
        order.status not in (Order.Status.PAID, Order.Status.FULFILLED)
        or payment is None
        or not payment.intent_id
        or payment.captured_minor <= 0
    ):
        raise NotRefundable()
    amount = (
        payment.captured_minor - payment.refunded_minor
        if amount_minor is None
        else amount_minor
    )
    if amount <= 0:
        raise RefundTooLarge()
    reserved = Payment.objects.filter(
        pk=payment.pk, refunded_minor__lte=F("captured_minor") - amount
    ).update(refunded_minor=F("refunded_minor") + amount, updated_at=timezone.now())
    if not reserved:
        raise RefundTooLarge()
    try:
        made = gateway.refund_create(
            intent_id=payment.intent_id,
            amount_minor=amount,
            # One key per refund decision; the library's retries reuse it.
            idempotency_key=f"showfloor-order-{order.public_id}-refund-{uuid.uuid4()}",
        )
    except gateway.GatewayError as exc:
        Payment.objects.filter(pk=payment.pk).update(
            refunded_minor=F("refunded_minor") - amount
        )
        raise PaymentProviderError() from exc
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        refund, created = Refund.objects.get_or_create(
            provider_refund_id=made.id,
            defaults={
                "payment": payment,
                "amount_minor": amount,
                "currency": payment.currency,
                "reason": reason[:200],
                "created_by": by,
                "status": _known(made.status),
            },
        )
        counts.refund_recorded(order.show_id, refund, created=created)
        # Our reservation is given back if Stripe refused the refund at once.
        withdraw = 0 if refund.status in COUNTED else amount
        if not created:
            # Its webhook came first: keep who refunded it and why.
            Refund.objects.filter(pk=refund.pk).update(
                reason=reason[:200], created_by=by
            )
            withdraw = amount if _advance(refund, made.status) else withdraw
        _settle(
            locked,
            payment_id=payment.pk,
            reason=reason or "refunded in full",
            withdraw=withdraw,
        )
        if restock:
            _restock(locked)
        order.status = locked.status
    logger.info("refunded %s of order %s", amount, order.public_id)
    return refund


def order_restock(*, order: Order) -> int:
    """Return a sold order's units to stock, once (the brand has them back,
    or they never left). Returns the units returned; 0 when they already were
    or the order sold nothing."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status not in (
            Order.Status.PAID,
            Order.Status.FULFILLED,
            Order.Status.REFUNDED,
        ):
            raise NotRefundable()
        return _restock(locked)


def _restock(order: Order) -> int:
    """Under the order's row lock: each sold hold's units back, once."""
    returned = _return_holds(
        order, held=StockHold.Status.CONSUMED, to=StockHold.Status.RESTOCKED
    )
    if returned:
        logger.info("returned %s units of order %s to stock", returned, order.public_id)
    return returned


# The provider's refunds that move money (a failed or canceled one does not).
COUNTED = frozenset(
    {Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION, Refund.Status.SUCCEEDED}
)
# How far along each status is: a refund's status only moves forward.
RANK: dict[str, int] = {
    Refund.Status.REQUIRES_ACTION: 0,
    Refund.Status.PENDING: 1,
    Refund.Status.SUCCEEDED: 2,
    Refund.Status.FAILED: 2,
    Refund.Status.CANCELED: 2,
}


def _known(status: str) -> str:
    """A provider status we know, or ``pending`` for one we do not (it is not
    final, and counting it errs towards the buyer until it is)."""
    return status if status in RANK else Refund.Status.PENDING


def _advance(refund: Refund, status: str) -> bool:
    """Move the refund's status forward to ``status`` if that is forward;
    True when that made a counted refund one that does not count."""
    status = _known(status)
    if RANK[status] <= RANK[refund.status]:
        return False
    lost = refund.status in COUNTED and status not in COUNTED
    Refund.objects.filter(pk=refund.pk).update(status=status)
    refund.status = status
    counts.refund_advanced(refund, lost=lost)
    return lost


def order_refunds_record(*, report: gateway.RefundReport) -> Order | None:
    """Apply refunds the provider reports (``charge.refunded``,
    ``charge.refund.updated``): each refund id is recorded once, the payment's
    refunded amount is raised to what is reported (never lowered, so repeats and
    any delivery order end the same), and the order becomes ``refunded`` when
    all of the capture is refunded. Stock is not returned. None when the intent
    matches no order. Raises ``PaymentNotRecorded`` when the payment is not
    recorded yet (the provider retries). Broadcasts ``order.updated`` when the
    order moves."""
    payment = Payment.objects.filter(intent_id=report.intent_id).first()
    if payment is None or (report.currency and report.currency != payment.currency):
        logger.warning("refund of intent %s matches no order", report.intent_id)
        return None
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        payment.refresh_from_db()
        if payment.captured_minor <= 0:
            raise PaymentNotRecorded()
        withdraw = 0
        for seen in report.refunds:
            if seen.amount_minor <= 0:
                continue
            refund, created = Refund.objects.get_or_create(
                provider_refund_id=seen.id,
                defaults={
                    "payment": payment,
                    "amount_minor": seen.amount_minor,
                    "currency": payment.currency,
                    "reason": "refunded at Stripe",
                    "status": _known(seen.status),
                },
            )
            counts.refund_recorded(order.show_id, refund, created=created)
            if created and refund.status not in COUNTED:
                # First heard of as failed: a charge total reported earlier
                # may have counted it.
                withdraw += refund.amount_minor
            elif not created and _advance(refund, seen.status):
                withdraw += refund.amount_minor
            if refund.status not in COUNTED:
                logger.warning("refund %s is %s", seen.id, refund.status)
        _settle(
            order,
            payment_id=payment.pk,
            reason="refunded at Stripe",
            reported_minor=report.refunded_minor or 0,
            withdraw=withdraw,
        )
    return order


def _settle(
    order: Order,
    *,
    payment_id: int,
    reason: str,
    reported_minor: int = 0,
    withdraw: int = 0,
) -> None:
    """Under the order's row lock: lower the payment's refunded amount by
    ``withdraw`` (refunds that failed; never below the refunds that count),
    raise it to what its counted refunds (or the provider's total, less the
    failed ones) add up to, at most the capture; move the order to
    ``refunded`` once it is all refunded, and back when a failure undoes
    that. The amount is otherwise only raised: a refund of ours reserves its
    amount before its row exists."""
    rows = Refund.objects.filter(payment_id=payment_id)
    counted = rows.filter(status__in=COUNTED).aggregate(total=Sum("amount_minor"))
    failed = rows.exclude(status__in=COUNTED).aggregate(total=Sum("amount_minor"))
    known, lost = counted["total"] or 0, failed["total"] or 0
    captured = Payment.objects.values_list("captured_minor", flat=True).get(
        pk=payment_id
    )
    now = timezone.now()
    if withdraw:
        Payment.objects.filter(pk=payment_id).update(
            refunded_minor=Greatest(
                F("refunded_minor") - withdraw, Value(min(known, captured))
            ),
            updated_at=now,
        )
    floor = min(max(known, reported_minor - lost), captured)
    Payment.objects.filter(pk=payment_id, refunded_minor__lt=floor).update(
        refunded_minor=floor, updated_at=now
    )
    refunded = Payment.objects.values_list("refunded_minor", flat=True).get(
        pk=payment_id
    )
    if captured > 0 and refunded >= captured:
        _move(order, Order.Status.REFUNDED, reason)
    elif order.status == Order.Status.REFUNDED:
        _refund_undone(order)


def _refund_undone(order: Order) -> None:
    """A refund that made the order ``refunded`` failed: the order goes back
    to the status it had before (``paid`` or ``fulfilled``). Not a move
    backwards in ``NEXT``: no payment event can do this, only a refund's
    final failure."""
    before = (
        OrderTransition.objects.filter(order=order, to_status=Order.Status.REFUNDED)
        .order_by("-id")
        .values_list("from_status", flat=True)
        .first()
    )
    if before not in (Order.Status.PAID, Order.Status.FULFILLED):
        before = Order.Status.PAID
    Order.objects.filter(pk=order.pk).update(status=before, updated_at=timezone.now())
    OrderTransition.objects.create(
        order=order,
        from_status=order.status,
        to_status=before,
        reason="refund failed",
    )
    order.status = before
    _notify_order(order)
    logger.warning(
        "a refund of order %s failed; it is %s again", order.public_id, before
    )
