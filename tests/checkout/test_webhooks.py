"""The Stripe webhook: signatures on the raw body, one row per event, and
transitions that end in the same state in any delivery order."""

from __future__ import annotations

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from checkout import selectors, services
from checkout.models import (
    Order,
    OrderTransition,
    Payment,
    Refund,
    StockHold,
    WebhookEvent,
)
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


# --- Refunds made at Stripe ------------------------------------------------


def refund_object(refund_id: str, amount: int, intent_id: str, status: str):
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "currency": "eur",
        "charge": "ch_of_" + intent_id,
        "payment_intent": intent_id,
        "status": status,
    }


def charge_refunded(
    intent_id: str, captured: int, refunds: list[tuple[str, int]], *, listed=True
) -> bytes:
    """``charge.refunded`` with the charge's refunded total (and, as older API
    versions send it, its refund list)."""
    charge: dict = {
        "id": "ch_of_" + intent_id,
        "object": "charge",
        "amount": captured,
        "amount_captured": captured,
        "amount_refunded": sum(amount for _, amount in refunds),
        "currency": "eur",
        "payment_intent": intent_id,
        "refunded": sum(amount for _, amount in refunds) >= captured,
    }
    if listed:
        charge["refunds"] = {
            "object": "list",
            "data": [
                refund_object(rid, amount, intent_id, "succeeded")
                for rid, amount in refunds
            ],
        }
    return envelope("charge.refunded", charge)


def refund_updated(refund_id: str, amount: int, intent_id: str, status: str) -> bytes:
    return envelope(
        "charge.refund.updated", refund_object(refund_id, amount, intent_id, status)
    )


def envelope(event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "data": {"object": obj},
        }
    ).encode()


@pytest.fixture
def paid(webhook_secret, reserved):
    payload = events_for(reserved)["succeeded"]
    assert deliver(payload, sign(payload, SECRET)).status_code == 200
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.PAID
    return reserved


def deliver_all(payloads: list[bytes]) -> None:
    for payload in payloads:
        assert deliver(payload, sign(payload, SECRET)).status_code == 200


def test_a_partial_dashboard_refund_is_applied_once(paid, mic, pinned):
    """``charge.refunded`` and ``charge.refund.updated`` for one €50.00 refund,
    each delivered twice: one refund row, €50.00 refunded, the order still
    paid, no stock back, and the studio's revenue net of the refund."""
    intent_id = Payment.objects.get(order=paid).intent_id
    charge = charge_refunded(intent_id, paid.total_minor, [("re_part", 5000)])
    update = refund_updated("re_part", 5000, intent_id, "succeeded")
    deliver_all([update, charge, update, charge])
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID
    payment = Payment.objects.get(order=paid)
    assert payment.refunded_minor == 5000
    assert list(Refund.objects.values_list("provider_refund_id", "amount_minor")) == [
        ("re_part", 5000)
    ]
    assert WebhookEvent.objects.filter(order=paid).count() == 3
    mic.refresh_from_db()
    assert mic.stock_available == 8
    revenue = selectors.studio_orders(show=pinned).revenue
    assert [(r.currency, r.minor, r.orders) for r in revenue] == [
        ("EUR", paid.total_minor - 5000, 1)
    ]


@pytest.mark.parametrize("seed", range(3))
def test_two_refunds_delivered_twice_and_shuffled_refund_the_order_once(
    paid, mic, pinned, seed
):
    """Two refunds that together refund everything, reported by both event
    types, every event delivered twice in a shuffled order (the charge's later
    total before its earlier one included): the order ends refunded with one
    transition, two refund rows, the capture refunded exactly, no stock back
    and no revenue."""
    intent_id = Payment.objects.get(order=paid).intent_id
    rest = paid.total_minor - 5000
    events = [
        charge_refunded(intent_id, paid.total_minor, [("re_1", 5000)]),
        charge_refunded(
            intent_id, paid.total_minor, [("re_1", 5000), ("re_2", rest)], listed=False
        ),
        refund_updated("re_1", 5000, intent_id, "succeeded"),
        refund_updated("re_2", rest, intent_id, "pending"),
        refund_updated("re_2", rest, intent_id, "succeeded"),
    ]
    deliveries = events * 2
    random.Random(seed).shuffle(deliveries)
    deliver_all(deliveries)
    paid.refresh_from_db()
    assert paid.status == Order.Status.REFUNDED
    assert OrderTransition.objects.filter(order=paid, to_status="refunded").count() == 1
    payment = Payment.objects.get(order=paid)
    assert payment.refunded_minor == payment.captured_minor == paid.total_minor
    assert sorted(Refund.objects.values_list("provider_refund_id", "amount_minor")) == [
        ("re_1", 5000),
        ("re_2", rest),
    ]
    assert WebhookEvent.objects.filter(order=paid).count() == 6
    mic.refresh_from_db()
    assert mic.stock_available == 8
    assert selectors.studio_orders(show=pinned).revenue == []


def test_a_refund_before_its_payment_is_recorded_is_retried(webhook_secret, reserved):
    """A refund reported before ``payment_intent.succeeded`` is answered 409
    and forgotten, so Stripe's retry after the payment applies it."""
    intent_id = Payment.objects.get(order=reserved).intent_id
    charge = charge_refunded(intent_id, reserved.total_minor, [("re_all", 17800)])
    answer = deliver(charge, sign(charge, SECRET))
    assert answer.status_code == 409
    assert answer.json()["code"] == "payment_not_recorded"
    assert WebhookEvent.objects.count() == 0
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.RESERVED
    deliver_all([events_for(reserved)["succeeded"], charge])
    reserved.refresh_from_db()
    assert reserved.status == Order.Status.REFUNDED
    assert Refund.objects.get().amount_minor == 17800


def test_a_failed_refund_is_not_counted(paid):
    """``charge.refund.updated`` for a failed refund is recorded as failed and
    refunds nothing."""
    intent_id = Payment.objects.get(order=paid).intent_id
    deliver_all([refund_updated("re_failed", 5000, intent_id, "failed")])
    assert list(Refund.objects.values_list("provider_refund_id", "status")) == [
        ("re_failed", "failed")
    ]
    assert Payment.objects.get(order=paid).refunded_minor == 0
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID


@pytest.mark.parametrize("seed", range(4))
def test_a_full_refund_that_fails_after_pending_is_undone_in_any_order(
    paid, mic, pinned, seed
):
    """A full refund reported pending (by the charge's total and by its own
    update), then failed, each event delivered twice in a shuffled order: the
    order ends paid, nothing refunded, the refund recorded as failed, the
    revenue whole and no stock back."""
    intent_id = Payment.objects.get(order=paid).intent_id
    total = paid.total_minor
    deliveries = [
        charge_refunded(intent_id, total, [("re_bounced", total)], listed=False),
        refund_updated("re_bounced", total, intent_id, "pending"),
        refund_updated("re_bounced", total, intent_id, "failed"),
    ] * 2
    random.Random(seed).shuffle(deliveries)
    deliver_all(deliveries)
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID
    assert Payment.objects.get(order=paid).refunded_minor == 0
    assert Refund.objects.get().status == Refund.Status.FAILED
    revenue = selectors.studio_orders(show=pinned).revenue
    assert [(r.minor, r.orders) for r in revenue] == [(total, 1)]
    mic.refresh_from_db()
    assert mic.stock_available == 8


def test_a_refund_that_fails_undoes_only_its_own_amount(paid):
    """Two partial refunds, one of which fails: only the other stays
    refunded, and the order, refunded in full for a moment, is paid again
    with the transition that says why."""
    intent_id = Payment.objects.get(order=paid).intent_id
    rest = paid.total_minor - 5000
    deliver_all(
        [
            refund_updated("re_ok", 5000, intent_id, "succeeded"),
            refund_updated("re_bad", rest, intent_id, "pending"),
        ]
    )
    paid.refresh_from_db()
    assert paid.status == Order.Status.REFUNDED
    deliver_all([refund_updated("re_bad", rest, intent_id, "failed")])
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID
    assert Payment.objects.get(order=paid).refunded_minor == 5000
    last = OrderTransition.objects.filter(order=paid).order_by("-id").first()
    assert (last.from_status, last.to_status, last.reason) == (
        "refunded",
        "paid",
        "refund failed",
    )


def test_refunds_of_charges_that_are_not_ours_are_ignored(paid):
    """A refund of an unknown intent, or of a charge with no intent, is stored
    as ignored and changes nothing."""
    foreign = charge_refunded("pi_not_ours", 1000, [("re_x", 1000)])
    no_intent = json.loads(charge_refunded("pi_x", 1000, [("re_y", 1000)]))
    no_intent["data"]["object"]["payment_intent"] = None
    deliver_all([foreign, json.dumps(no_intent).encode()])
    assert Refund.objects.count() == 0
    ignored = WebhookEvent.objects.filter(type="charge.refunded")
    assert {event.status for event in ignored} == {WebhookEvent.Status.IGNORED}
    assert ignored.count() == 2
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID


def test_our_own_refund_reported_back_is_not_counted_twice(
    stripe_settings, pinned, mic, guest, webhook_secret
):
    """A refund made from the admin, then reported by Stripe, stays one refund
    row and one amount."""
    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=2,
        idempotency_key=new_key(),
    ).order
    services.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    refund = services.order_refund(order=order, amount_minor=1000)
    payment = Payment.objects.get(order=order)
    charge = charge_refunded(
        payment.intent_id, payment.captured_minor, [(refund.provider_refund_id, 1000)]
    )
    update = refund_updated(
        refund.provider_refund_id, 1000, payment.intent_id, "succeeded"
    )
    deliver_all([charge, update, charge])
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.refunded_minor == 1000
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
