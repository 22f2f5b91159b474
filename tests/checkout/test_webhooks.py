"""The Stripe webhook: signatures on the raw body, one row per event, and
transitions that end in the same state in any delivery order."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from checkout import services
from checkout.models import Order, OrderTransition, Payment, StockHold, WebhookEvent
from tests.checkout.conftest import intent_event, new_key, sign

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_test_checkout"
URL = "/stripe/webhook/"


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def reserved(stripe_settings, pinned, mic, guest):
    placed = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=2,
        idempotency_key=new_key(),
    )
    return placed.order


def deliver(payload: bytes, signature: str | None):
    client = Client()
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature else {}
    try:
        return client.post(
            URL, data=payload, content_type="application/json", **headers
        )
    finally:
        connection.close()


def events_for(order: Order) -> dict[str, bytes]:
    payment = Payment.objects.get(order=order)
    common = {
        "intent_id": payment.intent_id,
        "order_ref": str(order.public_id),
        "amount": order.total_minor,
    }
    return {
        "succeeded": intent_event(
            "payment_intent.succeeded", status="succeeded", **common
        ),
        "failed": intent_event(
            "payment_intent.payment_failed", status="requires_payment_method", **common
        ),
        "canceled": intent_event(
            "payment_intent.canceled", status="canceled", **common
        ),
    }


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "t=1,v1=00",
        "bad-header",
        "wrong-secret",
        "too-old",
    ],
)
def test_unsigned_or_badly_signed_webhooks_change_nothing(
    webhook_secret, reserved, signature
):
    """Missing, malformed, foreign-secret or stale signatures get 400 and leave
    the order, the stock and the event log alone."""
    payload = events_for(reserved)["succeeded"]
    if signature == "wrong-secret":
        signature = sign(payload, "whsec_someone_else")
    elif signature == "too-old":
        signature = sign(payload, SECRET, at=int(time.time()) - 3600)
    answer = deliver(payload, signature)
    assert answer.status_code == 400
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.RESERVED
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("offset", "direction"), [(-600, "past"), (600, "future"), (-301, "past")]
)
def test_signatures_dated_outside_the_tolerance_are_refused_both_ways(
    webhook_secret, reserved, offset, direction
):
    """A correctly signed event dated ten minutes (or just over the 5-minute
    tolerance) before or after now is refused with 400 and a clear error; the
    order stays reserved and nothing is recorded."""
    payload = events_for(reserved)["succeeded"]
    answer = deliver(payload, sign(payload, SECRET, at=int(time.time()) + offset))
    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook_signature_invalid"
    assert f"in the {direction}" in answer.json()["message"]
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.RESERVED
    assert WebhookEvent.objects.count() == 0


def test_a_signature_a_little_off_the_clock_is_accepted(webhook_secret, reserved):
    """Within the tolerance either way (clocks drift) the event is applied."""
    payload = events_for(reserved)["succeeded"]
    answer = deliver(payload, sign(payload, SECRET, at=int(time.time()) + 60))
    assert answer.status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID


def test_a_tampered_body_is_refused(webhook_secret, reserved):
    """The signature covers the raw body: change a byte and it is refused."""
    payload = events_for(reserved)["succeeded"]
    signature = sign(payload, SECRET)
    answer = deliver(payload.replace(b'"amount": ', b'"amount": 1'), signature)
    assert answer.status_code == 400
    assert WebhookEvent.objects.count() == 0


def test_succeeded_event_pays_the_order_once(webhook_secret, reserved, mic):
    """``payment_intent.succeeded`` marks the order paid; a repeat is a 200 no-op."""
    payload = events_for(reserved)["succeeded"]
    for _ in range(3):
        assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED
    assert OrderTransition.objects.filter(order=reserved, to_status="paid").count() == 1
    assert StockHold.objects.get(order=reserved).status == StockHold.Status.CONSUMED
    mic.refresh_from_db()
    assert mic.stock_available == 8


@pytest.mark.parametrize("seed", range(4))
def test_shuffled_concurrent_deliveries_end_in_the_same_state(
    webhook_secret, reserved, mic, seed
):
    """Succeeded and failed events, each delivered five times, concurrently and
    shuffled: the order ends paid with one transition each way it moved, and
    the stock counts the sale once."""
    payloads = events_for(reserved)
    deliveries = [payloads["succeeded"]] * 5 + [payloads["failed"]] * 5
    random.Random(seed).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda p: deliver(p, sign(p, SECRET)), deliveries))
    assert {a.status_code for a in answers} == {200}
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID
    assert WebhookEvent.objects.count() == 2
    paid = OrderTransition.objects.filter(order=reserved, to_status="paid").count()
    assert paid == 1
    assert OrderTransition.objects.filter(order=reserved).count() <= 3
    mic.refresh_from_db()
    # Paid wins in every order; if "failed" came first the stock was returned
    # and taken again, so the end is the same: two units sold.
    assert mic.stock_available == 8


def test_failed_then_nothing_returns_the_stock(webhook_secret, reserved, mic):
    """``payment_failed`` alone fails the order and returns its units."""
    payload = events_for(reserved)["failed"]
    assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.FAILED
    mic.refresh_from_db()
    assert mic.stock_available == 10


def test_canceled_event_cancels_and_never_undoes_a_payment(
    webhook_secret, reserved, mic
):
    """A late ``canceled`` after ``succeeded`` changes nothing."""
    payloads = events_for(reserved)
    for name in ("succeeded", "canceled"):
        payload = payloads[name]
        assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID


def test_unknown_events_are_acknowledged_and_ignored(webhook_secret, reserved):
    """Events about intents we do not know are stored as ignored (not
    processed) and answered 200; a repeat stops at the stored id."""
    payload = intent_event(
        "payment_intent.succeeded",
        intent_id="pi_not_ours",
        order_ref="",
        amount=100,
        status="succeeded",
    )
    for _ in range(2):
        assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.RESERVED
    event = WebhookEvent.objects.get()
    assert event.order is None
    assert event.status == WebhookEvent.Status.IGNORED


def test_a_failing_handler_forgets_the_event_so_stripe_retries(
    webhook_secret, reserved, monkeypatch
):
    """When the service raises, the event row is removed (Stripe's retry is
    then processed), and the retry pays the order."""
    from checkout import webhooks

    payload = events_for(reserved)["succeeded"]

    def broken(intent):
        raise RuntimeError("database went away")

    monkeypatch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", broken)
    client = Client(raise_request_exception=False)
    answer = client.post(
        URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, SECRET),
    )
    assert answer.status_code == 500
    assert WebhookEvent.objects.count() == 0
    monkeypatch.undo()
    assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_localstripe_delivers_signed_events_that_we_accept(
    webhook_secret, stripe_settings, reserved, live_server
):
    """localstripe's own signed ``payment_intent.succeeded`` reaches the webhook
    and pays the order (the end-to-end path the demo uses)."""
    import requests

    from checkout import stripe_gateway as gateway

    answer = requests.post(
        f"{stripe_settings}/_config/webhooks/checkout-test",
        data={
            "url": live_server.url.replace("localhost", "127.0.0.1") + URL,
            "secret": SECRET,
        },
        timeout=10,
    )
    assert answer.status_code == 200
    try:
        payment = Payment.objects.get(order=reserved)
        gateway.intent_confirm(
            intent_id=payment.intent_id, payment_method_id="pm_card_visa"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if WebhookEvent.objects.filter(
                type="payment_intent.succeeded", status=WebhookEvent.Status.PROCESSED
            ).exists():
                break
            time.sleep(0.1)
        reserved.refresh_from_db()
        assert reserved.status == Order.Status.PAID
        assert (
            WebhookEvent.objects.get(type="payment_intent.succeeded").order == reserved
        )
    finally:
        requests.post(
            f"{stripe_settings}/_config/webhooks/checkout-test",
            data={"url": "http://127.0.0.1:9/", "secret": SECRET},
            timeout=10,
        )
