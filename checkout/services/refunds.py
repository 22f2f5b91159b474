"""Refunds, never more than was captured: made here through the gateway
(``order_refund``) or reported by the provider (``order_refunds_record``, for a
refund made in Stripe's dashboard, or our own reported back). Both end in
``_settle``: one ``Refund`` row per provider refund id, and the order
``refunded`` once everything captured is refunded; a partial refund leaves it
``paid`` (or ``fulfilled``) with ``Payment.refunded_minor`` above zero. No
refund returns stock: the units may already be on their way to the buyer.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    NotRefundable,
    PaymentNotRecorded,
    PaymentProviderError,
    RefundTooLarge,
)
from checkout.models import Order, Payment, Refund
from checkout.services.orders import _move
from shows.models import User

logger = logging.getLogger(__name__)


def order_refund(
    *,
    order: Order,
    amount_minor: int | None = None,
    reason: str = "",
    by: User | None = None,
) -> Refund:
    """Refund all (``amount_minor=None``) or part of a paid order's payment.

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
        refund_id = gateway.refund_create(
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
            provider_refund_id=refund_id,
            defaults={
                "payment": payment,
                "amount_minor": amount,
                "currency": payment.currency,
                "reason": reason[:200],
                "created_by": by,
            },
        )
        if not created:
            # Its webhook came first: keep who refunded it and why.
            Refund.objects.filter(pk=refund.pk).update(
                reason=reason[:200], created_by=by
            )
        _settle(locked, payment_id=payment.pk, reason=reason or "refunded in full")
        order.status = locked.status
    logger.info("refunded %s of order %s", amount, order.public_id)
    return refund


# The provider's refunds that move money (a failed or canceled one does not).
COUNTED = frozenset({"pending", "succeeded"})


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
        for seen in report.refunds:
            if seen.status in COUNTED and seen.amount_minor > 0:
                Refund.objects.get_or_create(
                    provider_refund_id=seen.id,
                    defaults={
                        "payment": payment,
                        "amount_minor": seen.amount_minor,
                        "currency": payment.currency,
                        "reason": "refunded at Stripe",
                    },
                )
            elif seen.status not in COUNTED:
                logger.warning("refund %s is %s", seen.id, seen.status)
        _settle(
            order,
            payment_id=payment.pk,
            reason="refunded at Stripe",
            reported_minor=report.refunded_minor or 0,
        )
    return order


def _settle(
    order: Order, *, payment_id: int, reason: str, reported_minor: int = 0
) -> None:
    """Under the order's row lock: raise the payment's refunded amount to what
    its refund rows (or the provider's total) add up to, at most the capture,
    and move the order to ``refunded`` once it is all refunded."""
    known = (
        Refund.objects.filter(payment_id=payment_id).aggregate(
            total=Sum("amount_minor")
        )["total"]
        or 0
    )
    captured = Payment.objects.values_list("captured_minor", flat=True).get(
        pk=payment_id
    )
    floor = min(max(known, reported_minor), captured)
    Payment.objects.filter(pk=payment_id, refunded_minor__lt=floor).update(
        refunded_minor=floor, updated_at=timezone.now()
    )
    refunded = Payment.objects.values_list("refunded_minor", flat=True).get(
        pk=payment_id
    )
    if captured > 0 and refunded >= captured:
        _move(order, Order.Status.REFUNDED, reason)
