"""Refunds through the gateway, never more than was captured."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from checkout import stripe_gateway as gateway
from checkout.exceptions import NotRefundable, PaymentProviderError, RefundTooLarge
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
        refund = Refund.objects.create(
            payment=payment,
            amount_minor=amount,
            currency=payment.currency,
            provider_refund_id=refund_id,
            reason=reason[:200],
            created_by=by,
        )
        payment.refresh_from_db()
        if payment.refunded_minor >= payment.captured_minor:
            locked = Order.objects.select_for_update().get(pk=order.pk)
            _move(locked, Order.Status.REFUNDED, reason or "refunded in full")
            order.status = locked.status
    logger.info("refunded %s of order %s", amount, order.public_id)
    return refund
