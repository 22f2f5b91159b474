"""No secret reaches the logs or the database: after a whole purchase (a buyer
who saves their card, the card entered as Stripe.js would send it, the
payment confirmed, Stripe's webhook delivered, the confirmation email sent by
the background worker),
neither the secret key, the webhook secret nor the card number is found in
anything logged at any level, in any row of any table, or in the email."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
import requests
from django.apps import apps
from django.core import mail, serializers
from django.test import Client

from checkout.models import Order, SavedCard, WebhookEvent
from tests.checkout.conftest import intent_event, new_key, sign

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "4242424242424242"


def _card_payment_method(base: str) -> str:
    """What Stripe.js does in the buyer's browser: the card goes to Stripe
    (localstripe here), never to our server, which gets a PaymentMethod id.
    (localstripe takes only secret keys; the browser's is publishable, and
    another than the server's, so nothing of it is logged by the server.)"""
    answer = requests.post(
        f"{base}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": CARD,
            "card[exp_month]": "12",
            "card[exp_year]": "2031",
            "card[cvc]": "123",
        },
        headers={"Authorization": "Bearer sk_test_the_browsers_stand_in"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _everything_stored() -> str:
    """Every row of every table, serialized."""
    return "\n".join(
        serializers.serialize("json", model._default_manager.all())
        for model in apps.get_models()
    )


def test_no_secret_or_card_number_in_logs_the_database_or_email(
    stripe_settings, pinned, mic, make_user, settings, caplog, run_tasks
):
    settings.STRIPE_SECRET_KEY = "sk_test_" + secrets.token_hex(12)
    settings.STRIPE_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(12)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    caplog.set_level(logging.DEBUG)
    buyer = make_user(display_name="Noor", email="noor@example.test")
    client = Client()
    client.force_login(buyer)

    placed = client.post(
        f"/api/shows/{pinned.slug}/orders",
        data=json.dumps({"variant_id": mic.pk, "save_card": True}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    paid = client.post(
        f"/api/orders/{order_id}/pay",
        data=json.dumps(
            {
                "method": "test",
                "test_payment_method": _card_payment_method(stripe_settings),
            }
        ),
        content_type="application/json",
    )
    assert paid.status_code == 200, paid.content
    assert paid.json()["status"] == "paid"
    order = Order.objects.select_related("payment").get(public_id=order_id)
    payload = intent_event(
        "payment_intent.succeeded",
        intent_id=order.payment.intent_id,
        order_ref=order_id,
        amount=order.total_minor,
        status="succeeded",
    )
    delivered = Client().post(
        "/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, settings.STRIPE_WEBHOOK_SECRET),
    )
    assert delivered.status_code == 200

    # The purchase really ran where a leak could happen.
    assert SavedCard.objects.get(user=buyer).last4 == CARD[-4:]
    assert WebhookEvent.objects.count() == 1
    assert "/v1/payment_intents" in caplog.text
    assert mail.outbox == []  # the request and the webhook send nothing
    assert run_tasks() == 1
    assert len(mail.outbox) == 1
    stored = _everything_stored()
    emailed = "\n".join(f"{m.subject}\n{m.body}" for m in mail.outbox)
    for place, text in (
        ("logs", caplog.text),
        ("database", stored),
        ("email", emailed),
    ):
        for name, secret in (
            ("secret key", settings.STRIPE_SECRET_KEY),
            ("webhook secret", settings.STRIPE_WEBHOOK_SECRET),
            ("card number", CARD),
            ("card number, spaced", "4242 4242 4242 4242"),
        ):
            assert secret not in text, f"the {name} is in the {place}"
