"""Every call to Stripe: the only module that imports ``stripe``.

Callers get plain dataclasses and gateway exceptions, never Stripe objects. No
call here runs inside a database transaction that holds locks: services call
the gateway before or after their short transactions.

Against localstripe (``STRIPE_API_BASE`` set) the same calls run with the
parameters it understands: it rejects ``automatic_payment_methods``,
``setup_future_usage``, ``return_url`` and ``confirm(payment_method=…)``, so a
payment method is set with an update and then confirmed, which real Stripe
accepts too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

PROVIDER = "stripe"


class GatewayError(Exception):
    """Stripe could not be reached or refused the request."""


class CardDeclined(GatewayError):
    def __init__(self, code: str, intent: Intent | None = None) -> None:
        self.code = code
        self.intent = intent
        super().__init__(code)


class InvalidState(GatewayError):
    """The PaymentIntent is in a state that does not allow the call."""


class SignatureInvalid(Exception):
    """A webhook whose signature is missing, wrong or too old."""


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount_minor: int
    amount_received_minor: int
    currency: str
    client_secret: str
    payment_method_id: str
    customer_id: str
    error_code: str
    # Our order's public id, from the intent's metadata.
    order_ref: str


@dataclass(frozen=True)
class RefundSeen:
    """One refund as the provider reports it."""

    id: str
    amount_minor: int
    # "pending", "succeeded", "failed", "canceled" or "requires_action".
    status: str


@dataclass(frozen=True)
class RefundReport:
    """What a ``charge.refunded`` or ``charge.refund.updated`` event says about
    the refunds of one PaymentIntent."""

    intent_id: str
    currency: str
    # The charge's refunded total so far; None when the event is about a
    # single refund.
    refunded_minor: int | None
    refunds: tuple[RefundSeen, ...]


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str


def test_mode() -> bool:
    """Whether the server confirms with a test payment method (localstripe,
    demo, browser tests) instead of Stripe.js doing it in the browser."""
    return bool(settings.SHOWFLOOR_PAYMENTS_TEST_MODE or settings.STRIPE_API_BASE)


@lru_cache(maxsize=4)
def _client_for(key: str, base: str) -> stripe.StripeClient:
    if base:
        # localstripe honours no idempotency keys: a retry would pay twice.
        return stripe.StripeClient(
            key, base_addresses={"api": base}, max_network_retries=0
        )
    return stripe.StripeClient(key, max_network_retries=2)


def _client() -> stripe.StripeClient:
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE or "")


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a StripeObject (which has no ``.get``) or of a dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    try:
        value = obj[name]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def _intent(obj: Any) -> Intent:
    status = str(_field(obj, "status", ""))
    amount = int(_field(obj, "amount", 0))
    received = _field(obj, "amount_received", None)
    if received is None:
        received = amount if status == "succeeded" else 0
    error = _field(obj, "last_payment_error", None)
    payment_method = _field(obj, "payment_method", "") or ""
    if not isinstance(payment_method, str):
        payment_method = str(_field(payment_method, "id", ""))
    return Intent(
        id=str(_field(obj, "id")),
        status=status,
        amount_minor=amount,
        amount_received_minor=int(received),
        currency=str(_field(obj, "currency", "")).upper(),
        client_secret=str(_field(obj, "client_secret", "") or ""),
        payment_method_id=payment_method,
        customer_id=str(_field(obj, "customer", "") or ""),
        error_code=str(_field(error, "code", "") or "") if error else "",
        order_ref=str(_field(_field(obj, "metadata", {}) or {}, "order", "") or ""),
    )


_spent = threading.local()


def provider_ms_take() -> float:
    """Milliseconds this thread spent waiting for Stripe since the last take
    (for the API's Server-Timing header)."""
    spent = float(getattr(_spent, "ms", 0.0))
    _spent.ms = 0.0
    return spent


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    except stripe.CardError as exc:
        raise CardDeclined(str(exc.code or "card_declined")) from exc
    except stripe.InvalidRequestError as exc:
        logger.warning("stripe %s refused: %s", what, exc.user_message or exc.code)
        raise InvalidState(str(exc.code or "invalid_request")) from exc
    except stripe.StripeError as exc:
        logger.warning("stripe %s failed: %s", what, type(exc).__name__)
        raise GatewayError(type(exc).__name__) from exc
    finally:
        _spent.ms = getattr(_spent, "ms", 0.0) + (time.perf_counter() - started) * 1000


def intent_create(
    *,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
    customer_id: str = "",
) -> Intent:
    """Create a PaymentIntent (capture on confirmation)."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "metadata": metadata,
    }
    if customer_id:
        params["customer"] = customer_id
    if test_mode():
        params["payment_method_types"] = ["card"]
    else:
        params["automatic_payment_methods"] = {"enabled": True}
    obj = _call(
        "intent_create",
        _client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )
    return _intent(obj)


def intent_retrieve(intent_id: str) -> Intent:
    return _intent(
        _call("intent_retrieve", _client().v1.payment_intents.retrieve, intent_id)
    )


def intent_confirm(
    *, intent_id: str, payment_method_id: str, customer_id: str = "", save: bool = False
) -> Intent:
    """Confirm with a payment method chosen on the server (a saved card, or the
    test method). Returns the intent, ``requires_action`` when the bank asks for
    3-D Secure (the browser finishes it with the client secret). Raises
    ``CardDeclined`` carrying the refreshed intent."""
    client = _client()
    update: dict[str, Any] = {"payment_method": payment_method_id}
    if customer_id:
        update["customer"] = customer_id
    if save and not settings.STRIPE_API_BASE:
        update["setup_future_usage"] = "on_session"
    _call("intent_update", client.v1.payment_intents.update, intent_id, params=update)
    params: dict[str, Any] = {}
    if not settings.STRIPE_API_BASE:
        params["return_url"] = settings.SHOWFLOOR_PUBLIC_URL
    try:
        obj = _call(
            "intent_confirm",
            client.v1.payment_intents.confirm,
            intent_id,
            params=params,
        )
    except CardDeclined as exc:
        raise CardDeclined(exc.code, intent_retrieve(intent_id)) from exc
    return _intent(obj)


def intent_cancel(intent_id: str) -> Intent:
    """Cancel; when the intent can no longer be cancelled (it succeeded, or was
    cancelled already) return its current state instead of failing."""
    try:
        obj = _call("intent_cancel", _client().v1.payment_intents.cancel, intent_id)
    except InvalidState:
        return intent_retrieve(intent_id)
    return _intent(obj)


def refund_create(
    *, intent_id: str, amount_minor: int, idempotency_key: str
) -> RefundSeen:
    """Refund part or all of a captured intent; the refund as Stripe made it
    (its status is often ``pending`` at first, then ``succeeded`` or
    ``failed``, reported by ``charge.refund.updated``)."""
    obj = _call(
        "refund_create",
        _client().v1.refunds.create,
        params={"payment_intent": intent_id, "amount": amount_minor},
        options={"idempotency_key": idempotency_key},
    )
    seen = _refund_seen(obj)
    return replace(seen, status=seen.status or "succeeded")


def customer_create(*, email: str, idempotency_key: str) -> str:
    obj = _call(
        "customer_create",
        _client().v1.customers.create,
        params={"email": email},
        options={"idempotency_key": idempotency_key},
    )
    return str(_field(obj, "id"))


def payment_method_attach(*, payment_method_id: str, customer_id: str) -> Card:
    """Attach a payment method to a customer (saving a card in test mode)."""
    obj = _call(
        "payment_method_attach",
        _client().v1.payment_methods.attach,
        payment_method_id,
        params={"customer": customer_id},
    )
    return _card(obj)


def payment_method_card(payment_method_id: str) -> Card:
    obj = _call(
        "payment_method_retrieve",
        _client().v1.payment_methods.retrieve,
        payment_method_id,
    )
    return _card(obj)


def _card(obj: Any) -> Card:
    card = _field(obj, "card", None)
    return Card(
        payment_method_id=str(_field(obj, "id")),
        brand=str(_field(card, "brand", "")) if card is not None else "",
        last4=str(_field(card, "last4", "")) if card is not None else "",
    )


def _signed_at(signature: str) -> int:
    """The ``t=`` of a Stripe-Signature header. Raises ``SignatureInvalid``."""
    stamps = [
        value
        for key, _, value in (
            part.strip().partition("=") for part in signature.split(",")
        )
        if key == "t"
    ]
    if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit():
        raise SignatureInvalid("Stripe-Signature has no single timestamp")
    return int(stamps[0])


def webhook_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify Stripe's signature on the raw body, then parse it. The signing
    time must be within ``stripe.Webhook.DEFAULT_TOLERANCE`` of now either way:
    the library refuses only old timestamps, and a signature dated in the future
    would stay replayable until that date. Raises ``SignatureInvalid``."""
    if not signature:
        raise SignatureInvalid("missing Stripe-Signature")
    tolerance = stripe.Webhook.DEFAULT_TOLERANCE
    skew = int(time.time()) - _signed_at(signature)
    if abs(skew) > tolerance:
        raise SignatureInvalid(
            f"Stripe-Signature timestamp is {abs(skew)} s in the "
            f"{'past' if skew > 0 else 'future'} (tolerance {tolerance} s)"
        )
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise SignatureInvalid(str(exc)) from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise SignatureInvalid("not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise SignatureInvalid("not an event")
    return event


def intent_from_event(event: dict[str, Any]) -> Intent | None:
    """The PaymentIntent an event is about, if it is about one."""
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") != "payment_intent":
        return None
    return _intent(obj)


def _refund_seen(obj: Any) -> RefundSeen:
    return RefundSeen(
        id=str(_field(obj, "id", "")),
        amount_minor=int(_field(obj, "amount", 0)),
        status=str(_field(obj, "status", "")),
    )


def refunds_from_event(event: dict[str, Any]) -> RefundReport | None:
    """The refunds an event reports (a charge with its refunded total and, in
    older API versions, its refund list; or one refund), if it is about them
    and names its PaymentIntent."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object")
    if kind == "charge":
        listed = _field(_field(obj, "refunds", {}) or {}, "data", []) or []
        refunds = tuple(_refund_seen(item) for item in listed if isinstance(item, dict))
        refunded: int | None = int(obj.get("amount_refunded") or 0)
    elif kind == "refund":
        refunds = (_refund_seen(obj),)
        refunded = None
    else:
        return None
    intent_id = obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    if not isinstance(intent_id, str) or not intent_id:
        return None
    return RefundReport(
        intent_id=intent_id,
        currency=str(obj.get("currency") or "").upper(),
        refunded_minor=refunded,
        refunds=tuple(refund for refund in refunds if refund.id),
    )
