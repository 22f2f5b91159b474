"""Saved cards against localstripe on the production path: set up for
off-session use by the intent that paid, kept only when Stripe attached them,
charged again on the server, removed by the buyer (detached at Stripe)."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace

import pytest
import requests
import stripe
from django.test import Client

from checkout import services
from checkout import stripe_gateway as gateway
from checkout.exceptions import NoSavedCard
from checkout.models import Order, Payment, SavedCard
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)

S = Order.Status
THREE_D_SECURE_CARD = "4000002760003184"


def place(show, buyer, variant, **extra):
    return services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=1,
        idempotency_key=new_key(),
        **extra,
    ).order


def stripe_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": base})


def intent_of(base: str, order: Order) -> stripe.PaymentIntent:
    return stripe_client(base).v1.payment_intents.retrieve(
        Payment.objects.get(order=order).intent_id
    )


def card_method(base: str, number: str) -> str:
    """A card as Stripe.js would hand it over: a PaymentMethod id."""
    method = stripe_client(base).v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    return str(method.id)


def save_a_card(base, show, user, variant, number: str = "") -> SavedCard:
    """A first order that saves the buyer's card, paid on the server."""
    buyer = services.Buyer(user=user)
    order = place(show, buyer, variant, save_card=True)
    method = card_method(base, number) if number else ""
    result = services.order_pay(
        order=order, buyer=buyer, method="test", test_payment_method=method
    )
    assert result.outcome == "paid"
    return SavedCard.objects.get(user=user)


def test_saving_order_sets_the_card_up_for_off_session_use(
    stripe_settings, pinned, mic, make_user
):
    """The intent of an order that saves the card carries the customer and
    ``setup_future_usage=off_session`` for cards; Stripe attaches the card to
    the customer when it pays, and that is the card kept."""
    user = make_user("Saving Sam")
    order = place(pinned, services.Buyer(user=user), mic, save_card=True)
    intent = intent_of(stripe_settings, order)
    card = SavedCard.objects.get(user=user)
    assert intent.customer == card.customer_id
    assert intent.payment_method_options["card"]["setup_future_usage"] == (
        "off_session"
    )
    assert intent.automatic_payment_methods["enabled"] is True

    services.order_pay(order=order, buyer=services.Buyer(user=user), method="test")
    card.refresh_from_db()
    assert (card.brand, card.last4) == ("visa", "4242")
    method = stripe_client(stripe_settings).v1.payment_methods.retrieve(
        card.payment_method_id
    )
    assert method.customer == card.customer_id
    assert intent_of(stripe_settings, order).payment_method == card.payment_method_id


def test_order_without_saving_sets_nothing_up(stripe_settings, pinned, mic, make_user):
    """Without "Save my card" the intent has no setup_future_usage, and paying
    keeps no card (a returning buyer's intent still names their customer)."""
    user = make_user("Passing Pat")
    buyer = services.Buyer(user=user)
    order = place(pinned, buyer, mic)
    intent = intent_of(stripe_settings, order).to_dict()
    assert not intent.get("setup_future_usage")
    assert not intent.get("payment_method_options")
    assert services.order_pay(order=order, buyer=buyer, method="test").outcome == "paid"
    assert not SavedCard.objects.filter(user=user).exclude(payment_method_id="")


def test_saved_card_is_charged_again_on_the_server(
    stripe_settings, pinned, mic, make_user
):
    """The next order is paid with the saved card by the server alone (no
    browser): Stripe accepts the attached card because the intent names its
    customer, and the payment is recorded at once."""
    user = make_user("Returning Rita")
    card = save_a_card(stripe_settings, pinned, user, mic)
    buyer = services.Buyer(user=user)
    second = place(pinned, buyer, mic)

    result = services.order_pay(order=second, buyer=buyer, method="saved")

    assert result.outcome == "paid"
    second.refresh_from_db()
    assert second.status == S.PAID
    intent = intent_of(stripe_settings, second)
    assert intent.status == "succeeded"
    assert intent.payment_method == card.payment_method_id
    assert intent.customer == card.customer_id


def test_saved_card_that_needs_3d_secure_is_handed_to_the_browser(
    stripe_settings, pinned, mic, make_user
):
    """When the bank asks the buyer to authenticate the repeat payment, the
    answer is ``requires_action`` with the client secret and the order stays
    reserved; once the browser has authenticated, the refresh records it."""
    user = make_user("Careful Cas")
    buyer = services.Buyer(user=user)
    first = place(pinned, buyer, mic, save_card=True)
    method = card_method(stripe_settings, THREE_D_SECURE_CARD)
    started = services.order_pay(
        order=first, buyer=buyer, method="test", test_payment_method=method
    )
    assert started.outcome == "requires_action"
    authenticate(stripe_settings, first, started.client_secret, success=True)
    assert services.order_refresh(order=first).outcome == "paid"
    assert SavedCard.objects.get(user=user).payment_method_id == method

    second = place(pinned, buyer, mic)
    result = services.order_pay(order=second, buyer=buyer, method="saved")

    assert result.outcome == "requires_action"
    assert result.client_secret.startswith(Payment.objects.get(order=second).intent_id)
    second.refresh_from_db()
    assert second.status == S.RESERVED


def authenticate(base: str, order: Order, client_secret: str, *, success: bool):
    """What the bank's page does (localstripe's authentication endpoint)."""
    intent_id = Payment.objects.get(order=order).intent_id
    answer = requests.post(
        f"{base}/v1/payment_intents/{intent_id}/_authenticate"
        f"?success={'true' if success else 'false'}",
        json={"client_secret": client_secret, "key": "pk_test_showfloor"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_card_not_attached_by_stripe_is_not_kept(
    stripe_settings, pinned, mic, make_user
):
    """A paid intent whose card Stripe did not attach to the customer (here:
    its setup_future_usage was taken off before paying) keeps no card, whatever
    the order asked for."""
    user = make_user("Unlucky Una")
    buyer = services.Buyer(user=user)
    order = place(pinned, buyer, mic, save_card=True)
    stripe_client(stripe_settings).v1.payment_intents.update(
        Payment.objects.get(order=order).intent_id,
        params={"payment_method_options": {"card": {"setup_future_usage": ""}}},
    )
    assert services.order_pay(order=order, buyer=buyer, method="test").outcome == "paid"
    assert SavedCard.objects.get(user=user).payment_method_id == ""
    with pytest.raises(NoSavedCard):
        services.order_pay(order=place(pinned, buyer, mic), buyer=buyer, method="saved")


def test_card_kept_only_when_attached_to_the_intents_customer(
    stripe_settings, pinned, mic, make_user
):
    """The card kept is what Stripe says: an intent that claims off-session set-up
    but whose card is attached to nobody keeps nothing."""
    user = make_user("Claimed Cleo")
    buyer = services.Buyer(user=user)
    order = place(pinned, buyer, mic, save_card=True)
    loose = card_method(stripe_settings, "4242424242424242")
    intent = gateway.intent_retrieve(Payment.objects.get(order=order).intent_id)
    claimed = replace(
        intent,
        status="succeeded",
        payment_method_id=loose,
        setup_future_usage="off_session",
    )
    services.order_mark_paid(intent=claimed)
    order.refresh_from_db()
    assert order.status == S.PAID
    assert SavedCard.objects.get(user=user).payment_method_id == ""


def test_saving_another_card_detaches_the_one_before(
    stripe_settings, pinned, mic, make_user
):
    """Saving a new card replaces the kept one, and the old card is detached
    at Stripe (no forgotten card that could still be charged)."""
    user = make_user("Switching Sue")
    old = save_a_card(stripe_settings, pinned, user, mic).payment_method_id
    new = save_a_card(
        stripe_settings, pinned, user, mic, number="5555555555554444"
    ).payment_method_id
    assert new != old
    client = stripe_client(stripe_settings)
    assert client.v1.payment_methods.retrieve(old).customer is None
    assert client.v1.payment_methods.retrieve(new).customer is not None


def test_removing_the_card_detaches_it_and_saved_pay_is_refused(
    stripe_settings, pinned, mic, make_user
):
    """DELETE /api/me/card (CSRF-checked) detaches the card at Stripe and
    deletes the row; the next one-tap pay answers ``no_saved_card``, and a
    second removal is answered the same."""
    user = make_user("Leaving Lou")
    card = save_a_card(stripe_settings, pinned, user, mic)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = secrets.token_hex(16)
    client.cookies["csrftoken"] = token

    assert client.delete("/api/me/card").status_code == 403  # no CSRF token
    answer = client.delete("/api/me/card", HTTP_X_CSRFTOKEN=token)

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"saved_card": None}
    assert not SavedCard.objects.filter(user=user).exists()
    method = stripe_client(stripe_settings).v1.payment_methods.retrieve(
        card.payment_method_id
    )
    assert method.customer is None
    order = place(pinned, services.Buyer(user=user), mic)
    paid = client.post(
        f"/api/orders/{order.public_id}/pay",
        data=json.dumps({"method": "saved"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert paid.status_code == 409
    assert paid.json()["code"] == "no_saved_card"
    again = client.delete("/api/me/card", HTTP_X_CSRFTOKEN=token)
    assert again.status_code == 200


def test_removing_a_card_needs_a_signed_in_buyer(stripe_settings):
    client = Client()
    answer = client.delete("/api/me/card")
    assert answer.status_code == 403
    assert answer.json()["code"] == "login_required"


def test_card_kept_when_stripe_does_not_answer_the_removal(
    stripe_settings, pinned, mic, make_user, monkeypatch
):
    """If Stripe cannot detach the card, the row stays (the buyer can try
    again) and the answer is 502 ``payment_provider_error``."""
    user = make_user("Patient Pia")
    save_a_card(stripe_settings, pinned, user, mic)

    def down(payment_method_id: str) -> None:
        raise gateway.GatewayError("APIConnectionError")

    monkeypatch.setattr(gateway, "payment_method_detach", down)
    client = Client()
    client.force_login(user)
    answer = client.delete("/api/me/card")
    assert answer.status_code == 502
    assert answer.json()["code"] == "payment_provider_error"
    assert SavedCard.objects.get(user=user).usable
