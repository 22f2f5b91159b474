"""The development Stripe behaves like Stripe where the production path needs
it (``checkout/devstripe.py``): it refuses what Stripe refuses, attaches a
card set up for future use, and declines an off-session payment that needs
the buyer."""

from __future__ import annotations

import importlib.metadata

import pytest
import stripe

from checkout import devstripe

CARD = {"exp_month": 12, "exp_year": 2031, "cvc": "123"}


@pytest.fixture
def client(stripe_settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_x", base_addresses={"api": stripe_settings}, max_network_retries=0
    )


def card(client, number: str = "4242424242424242") -> str:
    made = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, **CARD}}
    )
    return str(made.id)


def intent(client, **params):
    return client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "eur",
            "automatic_payment_methods": {"enabled": True},
            **params,
        }
    )


def test_a_server_confirmation_needs_a_return_url_while_redirects_are_allowed(
    client,
):
    opened = intent(client)
    with pytest.raises(stripe.InvalidRequestError, match="return_url"):
        client.v1.payment_intents.confirm(
            opened.id, params={"payment_method": "pm_card_visa"}
        )
    done = client.v1.payment_intents.confirm(
        opened.id,
        params={"payment_method": "pm_card_visa", "return_url": "https://x.test/"},
    )
    assert done.status == "succeeded"
    # Stripe's test id became a stored payment method.
    assert done.payment_method.startswith("pm_")
    assert done.payment_method != "pm_card_visa"


def test_automatic_methods_and_a_list_of_types_are_refused_together(client):
    with pytest.raises(stripe.InvalidRequestError):
        intent(client, payment_method_types=["card"])


def test_card_set_up_for_future_use_is_attached_only_to_its_customer(client):
    """After paying, the card belongs to the customer: an intent of nobody or
    of another customer cannot use it."""
    customer = client.v1.customers.create(params={"email": "a@example.test"})
    saving = intent(
        client,
        customer=customer.id,
        payment_method_options={"card": {"setup_future_usage": "off_session"}},
    )
    method = card(client)
    client.v1.payment_intents.confirm(
        saving.id, params={"payment_method": method, "return_url": "https://x.test/"}
    )
    assert client.v1.payment_methods.retrieve(method).customer == customer.id
    stranger = intent(client)
    with pytest.raises(stripe.InvalidRequestError, match="another Customer"):
        client.v1.payment_intents.confirm(
            stranger.id,
            params={"payment_method": method, "return_url": "https://x.test/"},
        )


def test_card_paid_without_setting_up_stays_unattached(client):
    customer = client.v1.customers.create(params={"email": "b@example.test"})
    paying = intent(client, customer=customer.id)
    method = card(client)
    client.v1.payment_intents.confirm(
        paying.id, params={"payment_method": method, "return_url": "https://x.test/"}
    )
    assert client.v1.payment_methods.retrieve(method).customer is None


def test_detached_card_is_refused_and_cannot_be_detached_twice(client):
    customer = client.v1.customers.create(params={"email": "c@example.test"})
    method = card(client)
    client.v1.payment_methods.attach(method, params={"customer": customer.id})
    client.v1.payment_methods.detach(method)
    with pytest.raises(stripe.InvalidRequestError, match="not attached"):
        client.v1.payment_methods.detach(method)
    with pytest.raises(stripe.InvalidRequestError, match="detached"):
        client.v1.payment_intents.confirm(
            intent(client, customer=customer.id).id,
            params={"payment_method": method, "return_url": "https://x.test/"},
        )


def test_off_session_payment_that_needs_the_buyer_is_declined(client):
    """``authentication_required``, the intent back to
    ``requires_payment_method`` with that error, as at Stripe."""
    opened = intent(client)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(
            opened.id,
            params={
                "payment_method": card(client, "4000002760003184"),
                "return_url": "https://x.test/",
                "off_session": True,
            },
        )
    assert declined.value.code == "authentication_required"
    after = client.v1.payment_intents.retrieve(opened.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.code == "authentication_required"


def test_refuses_to_patch_another_localstripe(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    with pytest.raises(RuntimeError, match=r"1\.15\.10"):
        devstripe.extend_localstripe()
