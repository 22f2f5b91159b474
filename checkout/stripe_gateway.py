"""Every call to Stripe: the only module that imports ``stripe``.

Callers get plain dataclasses and gateway exceptions, never Stripe objects. No
call here runs inside a database transaction that holds locks: services call
the gateway before or after their short transactions.

Against localstripe (``STRIPE_API_BASE`` set) the same calls run with the
same parameters: ``checkout/devstripe.py`` teaches it what production sends
(``automatic_payment_methods``, a card's ``setup_future_usage``,
``confirm(payment_method=…, return_url=…)``, detaching), and
``tests/checkout/test_gateway_params.py`` checks every request against the
parameters the ``stripe`` library declares.
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
    # How a card paid with it is kept for later ("off_session", "on_session"
    # or ""): the intent's own ``setup_future_usage`` or its card option's.
    setup_future_usage: str = ""


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


# How a saved card is set up: it may be charged while the buyer is away (an
# auction won while they were not watching), see docs/checkout.md.
SAVED_CARD_USAGE = "off_session"


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str
    # The Stripe customer the payment method is attached to ("" when none).
    customer_id: str = ""
    # Stripe's payment method type: "card" for cards and wallets.
    type: str = ""


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
    card_options = _field(_field(obj, "payment_method_options", {}) or {}, "card", {})
    usage = _field(obj, "setup_future_usage", "") or _field(
        card_options or {}, "setup_future_usage", ""
    )
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
        setup_future_usage="" if usage == "none" else str(usage or ""),
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
    save_card: bool = False,
) -> Intent:
    """Create a PaymentIntent (capture on confirmation) offering the payment
    methods enabled in the Stripe dashboard (cards, wallets, iDEAL, Bancontact…).

    ``save_card`` (needs ``customer_id``): a card paid with it is attached to
    the customer and set up for ``SAVED_CARD_USAGE``. Only cards: a buyer who
    ticks "Save my card" and pays with iDEAL leaves no SEPA mandate behind, and
    no redirect method is hidden from them."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "metadata": metadata,
        "automatic_payment_methods": {"enabled": True},
    }
    if customer_id:
        params["customer"] = customer_id
    if save_card:
        if not customer_id:
            raise ValueError("saving a card needs a customer")
        params["payment_method_options"] = {
            "card": {"setup_future_usage": SAVED_CARD_USAGE}
        }
    obj = _call(
        "intent_create",
        _client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )
    return _intent(obj)


def intent_create_off_session(
    *,
    amount_minor: int,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str,
    metadata: dict[str, str],
) -> Intent:
    """A PaymentIntent to charge a saved card while the buyer is away (an
    auction won), confirmed by ``intent_confirm_off_session``. Cards only, no
    redirect: nobody is there to follow one. The caller keeps its id before
    confirming, so a charge whose answer is lost can still be found."""
    obj = _call(
        "intent_create",
        _client().v1.payment_intents.create,
        params={
            "amount": amount_minor,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "metadata": metadata,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        },
        options={"idempotency_key": idempotency_key},
    )
    return _intent(obj)


def intent_confirm_off_session(*, intent_id: str, payment_method_id: str) -> Intent:
    """Confirm ``off_session``: the bank may decline or want the buyer
    (``authentication_required``); both raise ``CardDeclined`` with the
    intent. An intent already past confirmation is returned as it is."""
    current = intent_retrieve(intent_id)
    if current.status not in ("requires_payment_method", "requires_confirmation"):
        return current
    try:
        obj = _call(
            "intent_confirm",
            _client().v1.payment_intents.confirm,
            intent_id,
            params={"payment_method": payment_method_id, "off_session": True},
        )
    except CardDeclined as exc:
        raise CardDeclined(exc.code, intent_retrieve(intent_id)) from exc
    return _intent(obj)


@dataclass(frozen=True)
class Setup:
    """A SetupIntent: saving a card for later without paying now."""

    id: str
    status: str
    client_secret: str
    payment_method_id: str
    customer_id: str


def _setup(obj: Any) -> Setup:
    payment_method = _field(obj, "payment_method", "") or ""
    if not isinstance(payment_method, str):
        payment_method = str(_field(payment_method, "id", ""))
    customer = _field(obj, "customer", "") or ""
    if not isinstance(customer, str):
        customer = str(_field(customer, "id", ""))
    return Setup(
        id=str(_field(obj, "id")),
        status=str(_field(obj, "status", "")),
        client_secret=str(_field(obj, "client_secret", "") or ""),
        payment_method_id=payment_method,
        customer_id=customer,
    )


def setup_create(*, customer_id: str, idempotency_key: str) -> Setup:
    """A SetupIntent for the customer to save a card usable off-session
    (``SAVED_CARD_USAGE``); Stripe.js confirms it in the browser with the
    client secret, or ``setup_confirm`` does in test mode."""
    obj = _call(
        "setup_create",
        _client().v1.setup_intents.create,
        params={"customer": customer_id, "usage": SAVED_CARD_USAGE},
        options={"idempotency_key": idempotency_key},
    )
    return _setup(obj)


def setup_confirm(*, setup_id: str, payment_method_id: str) -> Setup:
    """Confirm a SetupIntent on the server with a payment method (test mode:
    a Stripe test method). Raises ``CardDeclined``."""
    obj = _call(
        "setup_confirm",
        _client().v1.setup_intents.confirm,
        setup_id,
        params={"payment_method": payment_method_id},
    )
    return _setup(obj)


def setup_retrieve(setup_id: str) -> Setup:
    return _setup(
        _call("setup_retrieve", _client().v1.setup_intents.retrieve, setup_id)
    )


def payment_method_attach(*, payment_method_id: str, customer_id: str) -> Card:
    """Attach a payment method to a customer (a succeeded SetupIntent does
    this at Stripe; localstripe needs it asked). Raises ``CardDeclined``."""
    obj = _call(
        "payment_method_attach",
        _client().v1.payment_methods.attach,
        payment_method_id,
        params={"customer": customer_id},
    )
    return _card(obj)


def intent_retrieve(intent_id: str) -> Intent:
    return _intent(
        _call("intent_retrieve", _client().v1.payment_intents.retrieve, intent_id)
    )


def intent_confirm(
    *,
    intent_id: str,
    payment_method_id: str,
    return_url: str = "",
    customer_id: str = "",
) -> Intent:
    """Confirm on the server with a payment method chosen there (a saved card,
    or the test method) while the buyer is on the page (an on-session payment:
    no ``off_session``). ``customer_id``: the customer a saved card is attached
    to, set on the intent first (Stripe refuses an attached card on an intent
    of no or another customer). ``return_url``: where a bank's page sends the
    buyer back, which Stripe requires of a server-side confirmation while
    redirecting methods are enabled (default: the site's address).

    Returns the intent, ``requires_action`` when the bank asks for 3-D Secure
    (the browser finishes it with the client secret). Raises ``CardDeclined``
    carrying the refreshed intent."""
    client = _client()
    if customer_id:
        _call(
            "intent_update",
            client.v1.payment_intents.update,
            intent_id,
            params={"customer": customer_id},
        )
    try:
        obj = _call(
            "intent_confirm",
            client.v1.payment_intents.confirm,
            intent_id,
            params={
                "payment_method": payment_method_id,
                "return_url": return_url or settings.SHOWFLOOR_PUBLIC_URL,
            },
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


def payment_method_detach(payment_method_id: str) -> None:
    """Detach a saved payment method from its customer: Stripe will not charge
    it again. One that is no longer attached counts as done."""
    try:
        _call(
            "payment_method_detach",
            _client().v1.payment_methods.detach,
            payment_method_id,
        )
    except InvalidState as refused:
        try:
            card = payment_method_card(payment_method_id)
        except InvalidState:
            return  # gone at Stripe
        if card.customer_id:
            raise refused from None


def payment_method_card(payment_method_id: str) -> Card:
    obj = _call(
        "payment_method_retrieve",
        _client().v1.payment_methods.retrieve,
        payment_method_id,
    )
    return _card(obj)


def _card(obj: Any) -> Card:
    card = _field(obj, "card", None)
    customer = _field(obj, "customer", "") or ""
    if not isinstance(customer, str):
        customer = str(_field(customer, "id", ""))
    return Card(
        payment_method_id=str(_field(obj, "id")),
        brand=str(_field(card, "brand", "")) if card is not None else "",
        last4=str(_field(card, "last4", "")) if card is not None else "",
        customer_id=customer,
        type=str(_field(obj, "type", "")),
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
