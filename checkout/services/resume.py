"""Resuming a checkout: the buyer's open order, to pay instead of a new one.

A buyer who reloads the page mid-checkout still holds stock for a few minutes.
Tapping Buy again would place a second order and keep the first hold off sale
until it expires, so the sheet asks for the open order first and resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from checkout import selectors
from checkout import stripe_gateway as gateway
from checkout.exceptions import PaymentProviderError
from checkout.models import Order
from shows.models import Show, User


@dataclass(frozen=True)
class OpenOrder:
    order: Order
    client_secret: str
    expires_at: datetime


def order_resume(
    *,
    show: Show,
    user: User | None,
    session_key: str,
    variant_id: int | None = None,
) -> OpenOrder | None:
    """The buyer's order in ``show`` that still holds stock and waits for a
    card (``selectors.order_open_for_buyer``), with its PaymentIntent's client
    secret and the hold's expiry; None when there is none. Reads only: nothing
    changes and nothing is broadcast.

    Raises ``PaymentProviderError`` when Stripe does not answer.
    """
    order = selectors.order_open_for_buyer(
        show=show, user=user, session_key=session_key, variant_id=variant_id
    )
    if order is None:
        return None
    try:
        intent = gateway.intent_retrieve(str(order.payment.intent_id))
    except gateway.GatewayError as exc:
        raise PaymentProviderError() from exc
    return OpenOrder(
        order=order,
        client_secret=intent.client_secret,
        expires_at=order.hold_expires_at,  # type: ignore[attr-defined]
    )
