"""Stripe webhooks: verify, record once, dispatch to a service.

The signature is checked on the raw body (a bad, missing or old one changes
nothing). The event id is stored first, under a unique constraint, so a repeat
delivery stops there with 200; the dispatch runs outside that insert because a
service may call Stripe (a late refund), and every service is a no-op when its
transition is already applied, so concurrent deliveries of different events
about one order end in the same state in any order. Events about nothing we
know are recorded as ignored and answered 200 so Stripe stops retrying them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from checkout import stripe_gateway as gateway
from checkout.models import Order, WebhookEvent
from checkout.services import orders

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


def webhook_receive(*, payload: bytes, signature: str | None) -> bool:
    """Handle one delivery. Returns False for a repeat (no work done).
    Raises ``gateway.SignatureInvalid``."""
    event: dict[str, Any] = gateway.webhook_event(payload, signature)
    event_type = str(event.get("type", ""))[:100]
    handler = HANDLERS.get(event_type)
    intent = gateway.intent_from_event(event)
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
    if handler is None or intent is None:
        return True
    try:
        order = handler(intent)
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
