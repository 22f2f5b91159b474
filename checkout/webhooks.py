"""Stripe webhooks: verify, record once, dispatch to a service.

The signature is checked on the raw body (a bad, missing or old one changes
nothing). The event id is stored first, under a unique constraint, so a repeat
delivery stops there with 200; the dispatch runs outside that insert because a
service may call Stripe (a late refund), and every service is a no-op when its
transition is already applied, so concurrent deliveries of different events
about one order end in the same state in any order. Refunds reported by
``charge.refunded`` and ``charge.refund.updated`` are recorded per refund id and
only ever raise the refunded amount, so they too are applied once whatever the
order of delivery. Events about nothing we know (another type, an intent or a
charge that matches no order) are recorded as ignored and answered 200 so
Stripe stops retrying them; an event whose service raises (a refund of a
payment not recorded yet) is forgotten and answered with an error, so Stripe
delivers it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from checkout import stripe_gateway as gateway
from checkout.models import Order, WebhookEvent
from checkout.services import orders, refunds

logger = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[[gateway.Intent], Order | None]] = {
    "payment_intent.succeeded": lambda intent: orders.order_mark_paid(
        intent=intent, reason="payment_intent.succeeded"
    ),
    "payment_intent.payment_failed": lambda intent: orders.order_mark_failed(
        intent=intent, reason="payment_intent.payment_failed"
    ),
    "payment_intent.canceled": lambda intent: orders.order_mark_cancelled(
        intent=intent
    ),
}
# A charge's refunded total and refund list, or one refund: the same service.
REFUND_HANDLERS: dict[str, Callable[[gateway.RefundReport], Order | None]] = {
    "charge.refunded": lambda report: refunds.order_refunds_record(report=report),
    "charge.refund.updated": lambda report: refunds.order_refunds_record(report=report),
}


def _work(event_type: str, event: dict[str, Any]) -> Callable[[], Order | None] | None:
    """The service call an event asks for, or None when it is not for us."""
    if event_type in HANDLERS:
        intent = gateway.intent_from_event(event)
        return None if intent is None else partial(HANDLERS[event_type], intent)
    if event_type in REFUND_HANDLERS:
        report = gateway.refunds_from_event(event)
        return None if report is None else partial(REFUND_HANDLERS[event_type], report)
    return None


def webhook_receive(*, payload: bytes, signature: str | None) -> bool:
    """Handle one delivery. Returns False for a repeat (no work done).
    Raises ``gateway.SignatureInvalid``."""
    event: dict[str, Any] = gateway.webhook_event(payload, signature)
    event_type = str(event.get("type", ""))[:100]
    work = _work(event_type, event)
    try:
        with transaction.atomic():
            record = WebhookEvent.objects.create(
                provider=gateway.PROVIDER,
                provider_event_id=event["id"],
                type=event_type,
                status=WebhookEvent.Status.IGNORED,
            )
    except IntegrityError:
        return False
    if work is None:
        return True
    try:
        order = work()
    except Exception:
        # Let Stripe deliver it again: forget that we saw it.
        WebhookEvent.objects.filter(pk=record.pk).delete()
        raise
    if order is None:
        # About no order of ours (another integration's intent): it stays
        # recorded as ignored, so a repeat still stops at the unique insert.
        return True
    WebhookEvent.objects.filter(pk=record.pk).update(
        status=WebhookEvent.Status.PROCESSED, order=order
    )
    return True
