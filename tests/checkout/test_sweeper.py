"""The sweeper: holds come back to stock within TTL + a few seconds."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.management import call_command

from checkout import services, sweeper
from checkout.models import Order
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_running_sweeper_returns_stock_within_ttl_plus_five_seconds(
    stripe_settings, settings, pinned, mic, guest
):
    """With a 1 s hold and the sweeper thread running, the unit is back in
    stock (and the order expired) well within TTL + 5 s."""
    settings.SHOWFLOOR_HOLD_SECONDS = 1
    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=2,
        idempotency_key=new_key(),
    ).order
    placed_at = time.monotonic()
    stop = threading.Event()
    thread = threading.Thread(
        target=sweeper.run, kwargs={"interval": 0.5, "stop": stop}
    )
    thread.start()
    try:
        while time.monotonic() - placed_at < 6:
            mic.refresh_from_db()
            if mic.stock_available == 10:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    mic.refresh_from_db()
    assert mic.stock_available == 10
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED


def test_sweep_command_once_expires_due_holds(
    stripe_settings, settings, pinned, mic, guest
):
    """``manage.py sweep --once`` does one pass and reports it."""
    from datetime import timedelta

    from django.utils import timezone

    from checkout.models import StockHold

    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    StockHold.objects.filter(order=order).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    from io import StringIO

    out = StringIO()
    call_command("sweep", "--once", stdout=out)
    assert out.getvalue().startswith("1 ")
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED


def test_start_for_demo_serves_localstripe_and_delivers_webhooks():
    """``devstripe.start_for_demo`` starts localstripe on a free loopback port
    and registers the webhook, which then receives signed events."""
    import http.server
    import json

    from checkout import devstripe

    received: list[tuple[str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.headers.get("Stripe-Signature", ""), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/stripe/webhook/"
    proc, base = devstripe.start_for_demo(url, "whsec_demo_test")
    try:
        assert base.startswith("http://127.0.0.1:")
        import stripe

        client = stripe.StripeClient("sk_test_demo", base_addresses={"api": base})
        params: dict = {
            "amount": 500,
            "currency": "eur",
            "payment_method_types": ["card"],
        }
        intent = client.v1.payment_intents.create(params=params)
        client.v1.payment_intents.update(
            intent.id, params={"payment_method": "pm_card_visa"}
        )
        client.v1.payment_intents.confirm(intent.id)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        signature, body = received[0]
        assert json.loads(body)["type"] == "payment_intent.succeeded"
        stripe.WebhookSignature.verify_header(
            body.decode(), signature, "whsec_demo_test"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
