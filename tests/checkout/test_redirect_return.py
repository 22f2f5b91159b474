"""The buyer back from a bank's page: ``POST /api/orders/<id>/refresh`` reads
the order's PaymentIntent and records it with the webhook's services, before
the webhook arrives. localstripe has no iDEAL or Bancontact; its 3-D Secure
page is a redirect that returns the same way (success, or a refusal that
leaves the intent ``requires_payment_method`` with an error)."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import stripe
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from checkout import services
from checkout.models import Order, OrderTransition, Payment, StockHold
from tests.checkout.conftest import new_key, of_type

pytestmark = pytest.mark.django_db(transaction=True)

S = Order.Status
THREE_D_SECURE_CARD = "4000002760003184"


@pytest.fixture
def guest() -> services.Buyer:
    """A guest whose session exists, so a browser can carry it."""
    session = SessionStore()
    session.create()
    return services.Buyer(
        user=None, session_key=str(session.session_key), email="back@example.test"
    )


def buyer_client(session_key: str) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    token = secrets.token_hex(16)
    client.cookies["csrftoken"] = token
    client.cookies["sessionid"] = session_key
    return client, token


def stock(variant) -> int:
    variant.refresh_from_db()
    return variant.stock_available


def away_at_the_bank(base: str, show, buyer, variant) -> tuple[Order, str]:
    """An order whose payment waits on the bank's page: what the Payment
    Element leaves behind before Stripe redirects the buyer."""
    order = services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=2,
        idempotency_key=new_key(),
    ).order
    method = stripe.StripeClient(
        "sk_test_x", base_addresses={"api": base}
    ).v1.payment_methods.create(
        params={
            "type": "card",
            "card": {
                "number": THREE_D_SECURE_CARD,
                "exp_month": 12,
                "exp_year": 2031,
                "cvc": "123",
            },
        }
    )
    started = services.order_pay(
        order=order, buyer=buyer, method="test", test_payment_method=method.id
    )
    assert started.outcome == "requires_action"
    return order, started.client_secret


def bank_answers(base: str, order: Order, client_secret: str, *, success: bool):
    intent_id = Payment.objects.get(order=order).intent_id
    answer = requests.post(
        f"{base}/v1/payment_intents/{intent_id}/_authenticate"
        f"?success={'true' if success else 'false'}",
        json={"client_secret": client_secret, "key": "pk_test_showfloor"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def refresh(client: Client, token: str, order: Order):
    return client.post(
        f"/api/orders/{order.public_id}/refresh",
        data=json.dumps({}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def test_return_url_is_the_show_page_marked_with_the_order(
    stripe_settings, pinned, mic, guest, settings
):
    settings.SHOWFLOOR_PUBLIC_URL = "https://shop.example/"
    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    url = urlsplit(services.orders.order_return_url(order))
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "shop.example",
        f"/shows/{pinned.slug}/",
    )
    assert parse_qs(url.query) == {"order": [str(order.public_id)]}


def test_successful_return_marks_the_order_paid_before_the_webhook(
    stripe_settings, pinned, mic, guest, sent
):
    """Back with ``redirect_status=succeeded``: the refresh finds the intent
    succeeded and records the payment as the webhook would (once: a second
    refresh changes nothing)."""
    order, secret = away_at_the_bank(stripe_settings, pinned, guest, mic)
    bank_answers(stripe_settings, order, secret, success=True)
    client, token = buyer_client(guest.session_key)

    answer = refresh(client, token, order)

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["status"], body["outcome"]) == ("paid", "paid")
    assert body["payment_status"] == "succeeded"
    order.refresh_from_db()
    assert order.status == S.PAID
    assert StockHold.objects.get(order=order).status == StockHold.Status.CONSUMED
    assert of_type(sent, "order.updated")[-1]["status"] == "paid"
    again = refresh(client, token, order)
    assert again.json()["status"] == "paid"
    assert OrderTransition.objects.filter(order=order, to_status=S.PAID).count() == 1


def test_failed_return_marks_the_order_failed_with_its_stock_back(
    stripe_settings, pinned, mic, guest, sent
):
    """Back with ``redirect_status=failed``: the intent is
    ``requires_payment_method`` with an error, so the order fails, its stock
    returns and the answer is 402 ``payment_declined``."""
    order, secret = away_at_the_bank(stripe_settings, pinned, guest, mic)
    assert stock(mic) == 8
    bank_answers(stripe_settings, order, secret, success=False)
    client, token = buyer_client(guest.session_key)

    answer = refresh(client, token, order)

    assert answer.status_code == 402
    assert answer.json()["code"] == "payment_declined"
    order.refresh_from_db()
    assert order.status == S.FAILED
    assert stock(mic) == 10
    assert of_type(sent, "stock.changed")[-1]["stock_available"] == 10
    payment = Payment.objects.get(order=order)
    assert payment.status == Payment.Status.FAILED
    assert payment.failure_code == "payment_intent_authentication_failure"


def test_return_while_the_bank_still_waits_changes_nothing(
    stripe_settings, pinned, mic, guest
):
    """Back without having answered the bank (the page reloaded): still
    ``requires_action`` with the client secret; the order keeps its hold."""
    order, secret = away_at_the_bank(stripe_settings, pinned, guest, mic)
    client, token = buyer_client(guest.session_key)
    body = refresh(client, token, order).json()
    assert (body["status"], body["outcome"]) == ("reserved", "requires_action")
    assert body["client_secret"] == secret
    assert stock(mic) == 8


def test_refresh_of_an_intent_nobody_paid_changes_nothing(
    stripe_settings, pinned, mic, guest
):
    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    result = services.order_refresh(order=order)
    assert result.outcome == "requires_payment_method"
    order.refresh_from_db()
    assert order.status == S.RESERVED


def test_refresh_is_only_for_the_orders_buyer(stripe_settings, pinned, mic, guest):
    """Another session gets 404, and a request without the CSRF token 403."""
    order, _ = away_at_the_bank(stripe_settings, pinned, guest, mic)
    stranger, token = buyer_client("x" * 32)
    assert refresh(stranger, token, order).status_code == 404
    client, _token = buyer_client(guest.session_key)
    assert client.post(f"/api/orders/{order.public_id}/refresh").status_code == 403
