"""Saving a card without paying: what a bidder does before their first bid
(docs/auctions.md). A Stripe SetupIntent for the buyer's customer, set up
for ``SAVED_CARD_USAGE`` (off-session), so a won auction can be charged
while they are away."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from checkout import selectors
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    PaymentDeclined,
    PaymentMethodUnavailable,
    PaymentProviderError,
)
from checkout.models import SavedCard
from checkout.services.orders import _customer_for, _detach_quietly
from shows.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardSetup:
    # "succeeded" (the card is saved), "requires_action" (the bank wants the
    # buyer: Stripe.js finishes with the client secret) or
    # "requires_payment_method" (Stripe.js collects the card).
    status: str
    client_secret: str
    setup_id: str
    saved_card: dict[str, str] | None


def _keep(*, user: User, customer_id: str, payment_method_id: str) -> None:
    """Keep the set-up card on the buyer's row; detach the one it replaces."""
    card = gateway.payment_method_card(payment_method_id)
    if not card.customer_id:
        # Stripe attaches a set-up card itself; localstripe needs asking.
        card = gateway.payment_method_attach(
            payment_method_id=payment_method_id, customer_id=customer_id
        )
    if card.type != "card" or card.customer_id != customer_id:
        raise PaymentMethodUnavailable()
    with transaction.atomic():
        row = SavedCard.objects.select_for_update().get(user=user)
        replaced = row.payment_method_id
        SavedCard.objects.filter(pk=row.pk).update(
            payment_method_id=card.payment_method_id,
            brand=card.brand,
            last4=card.last4,
        )
    if replaced and replaced != card.payment_method_id:
        _detach_quietly(replaced)


def saved_card_setup(
    *, user: User, setup_id: str = "", test_payment_method: str = ""
) -> CardSetup:
    """Save a card for ``user`` without a payment.

    Without ``setup_id``: open a SetupIntent for the buyer's Stripe customer.
    In test mode (localstripe, the demo) the server confirms it at once with
    a Stripe test method (``test_payment_method`` or
    ``SHOWFLOOR_TEST_PAYMENT_METHOD``), as the pay path does; in production
    the answer carries the client secret for Stripe.js
    (``stripe.confirmCardSetup``). With ``setup_id`` (the browser is back from
    Stripe.js): read that SetupIntent from Stripe, trusting nothing else, and
    keep its card once it succeeded.

    Raises ``PaymentDeclined``, ``PaymentMethodUnavailable`` (a SetupIntent of
    another customer, or not a card) or ``PaymentProviderError``."""
    try:
        customer_id = _customer_for(user)
        if setup_id:
            setup = gateway.setup_retrieve(setup_id)
            if setup.customer_id != customer_id:
                raise PaymentMethodUnavailable()
        else:
            setup = gateway.setup_create(
                customer_id=customer_id,
                idempotency_key=f"showfloor-user-{user.pk}-setup-{uuid.uuid4().hex}",
            )
            if gateway.test_mode():
                setup = gateway.setup_confirm(
                    setup_id=setup.id,
                    payment_method_id=test_payment_method
                    or settings.SHOWFLOOR_TEST_PAYMENT_METHOD,
                )
        if setup.status == "succeeded" and setup.payment_method_id:
            _keep(
                user=user,
                customer_id=customer_id,
                payment_method_id=setup.payment_method_id,
            )
    except gateway.CardDeclined as exc:
        raise PaymentDeclined() from exc
    except gateway.GatewayError as exc:
        raise PaymentProviderError() from exc
    return CardSetup(
        status=setup.status,
        client_secret=setup.client_secret,
        setup_id=setup.id,
        saved_card=selectors.saved_card_summary(user_id=user.pk),
    )
