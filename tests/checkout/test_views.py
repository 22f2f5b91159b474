"""The order API over HTTP: codes and messages, CSRF and origin checks,
idempotency under concurrent repeats, the host's sale and orders endpoints."""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from checkout.models import FlashSale, Order, Payment
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


def api_client(session_key: str | None = None, user=None) -> tuple[Client, str]:
    """A browser-like client that must pass the CSRF check."""
    client = Client(enforce_csrf_checks=True)
    token = secrets.token_hex(16)
    client.cookies["csrftoken"] = token
    if user is not None:
        client.force_login(user)
    elif session_key:
        client.cookies["sessionid"] = session_key
    return client, token


def buy(client, token, slug, body, key=None, **headers):
    return client.post(
        f"/api/shows/{slug}/orders",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_IDEMPOTENCY_KEY=key or new_key(),
        **headers,
    )


def test_guest_buys_and_gets_the_order_with_a_client_secret(
    stripe_settings, pinned, mic
):
    """POST /orders answers 201 with the reserved order and its client secret,
    never the secret key."""
    client, token = api_client()
    answer = buy(
        client,
        token,
        pinned.slug,
        {"variant_id": mic.pk, "quantity": 2, "email": "g@example.test"},
    )
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["status"] == "reserved"
    assert data["total_minor"] == 17800
    assert data["client_secret"].startswith("pi_")
    assert "sk_test" not in answer.content.decode()
    order = Order.objects.get(public_id=data["id"])
    assert order.email == "g@example.test"
    assert order.session_key


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"variant_id": "x"}, 400, "invalid"),
        ({"variant_id": 987654}, 404, "unknown_variant"),
        ({"quantity": 9}, 409, "over_limit"),
        ({"email": ""}, 400, "email_required"),
    ],
)
def test_bad_orders_get_a_code_and_a_message(
    stripe_settings, pinned, mic, body, status, code
):
    """Each refusal has its status, a stable code and a readable message."""
    client, token = api_client()
    payload = {"variant_id": mic.pk, "quantity": 1, "email": "g@example.test", **body}
    answer = buy(client, token, pinned.slug, payload)
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert Order.objects.count() == 0


def test_sold_out_is_409_sold_out(stripe_settings, pinned, mic):
    """No stock left: 409 with code ``sold_out``."""
    mic.__class__.objects.filter(pk=mic.pk).update(stock_available=0)
    client, token = api_client()
    answer = buy(
        client, token, pinned.slug, {"variant_id": mic.pk, "email": "g@example.test"}
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "sold_out"


def test_missing_idempotency_key_is_refused(stripe_settings, pinned, mic):
    client, token = api_client()
    answer = client.post(
        f"/api/shows/{pinned.slug}/orders",
        data=json.dumps({"variant_id": mic.pk, "email": "g@example.test"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "idempotency_key_invalid"


def test_requests_without_csrf_token_are_refused(stripe_settings, pinned, mic):
    """A POST without the CSRF token is refused and creates nothing."""
    client, _ = api_client()
    answer = buy(
        client,
        "wrong-token-wrong-token-wrong-tok",
        pinned.slug,
        {"variant_id": mic.pk, "email": "g@example.test"},
    )
    assert answer.status_code == 403
    assert Order.objects.count() == 0


def test_foreign_origin_is_refused(stripe_settings, pinned, mic):
    """A request from another site's page is refused even with a token."""
    client, token = api_client()
    answer = buy(
        client,
        token,
        pinned.slug,
        {"variant_id": mic.pk, "email": "g@example.test"},
        HTTP_ORIGIN="https://evil.example",
    )
    assert answer.status_code == 403
    assert Order.objects.count() == 0


@pytest.mark.slow
def test_the_same_buy_five_times_at_once_makes_one_order_and_one_intent(
    stripe_settings, pinned, mic
):
    """Five concurrent requests with one Idempotency-Key: one order, one hold,
    one PaymentIntent, and every answer names the same order."""
    session = SessionStore()
    session.create()
    key = new_key()

    def send(_):
        client, token = api_client(session.session_key)
        try:
            return buy(
                client,
                token,
                pinned.slug,
                {"variant_id": mic.pk, "email": "g@example.test"},
                key=key,
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(send, range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Order.objects.count() == 1
    assert Payment.objects.count() == 1
    mic.refresh_from_db()
    assert mic.stock_available == 9
    order_id = answers[0].json()["id"]
    mine = [
        pi
        for pi in all_intents(stripe_settings)
        if pi["metadata"].get("order") == order_id
    ]
    assert len(mine) == 1


def test_a_new_guests_first_buy_five_times_at_once_makes_one_order(
    stripe_settings, asgi_server, pinned, mic
):
    """A guest with no session yet double-taps Buy (five copies, one key) at a
    real Daphne: one order, one hold, one PaymentIntent; every answer names it
    and carries its session, so whichever cookie the browser keeps reads it."""
    import requests

    key = new_key()
    token = secrets.token_hex(16)
    start = threading.Barrier(5)

    def send(_):
        start.wait()
        return requests.post(
            f"{asgi_server}/api/shows/{pinned.slug}/orders",
            json={"variant_id": mic.pk, "email": "first@example.test"},
            headers={
                "Idempotency-Key": key,
                "X-CSRFToken": token,
                "Cookie": f"csrftoken={token}",
                "Origin": asgi_server,
            },
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(send, range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201], [
        a.text for a in answers
    ]
    order = Order.objects.get()
    assert {a.json()["id"] for a in answers} == {str(order.public_id)}
    assert order.holds.count() == 1
    assert Payment.objects.count() == 1
    assert len({a.json()["client_secret"] for a in answers}) == 1
    mic.refresh_from_db()
    assert mic.stock_available == 9
    mine = [
        pi
        for pi in all_intents(stripe_settings)
        if pi["metadata"].get("order") == str(order.public_id)
    ]
    assert len(mine) == 1
    assert {a.cookies.get("sessionid") for a in answers} == {order.session_key}
    read = requests.get(
        f"{asgi_server}/api/orders/{order.public_id}",
        cookies={"sessionid": order.session_key},
        timeout=10,
    )
    assert read.status_code == 200
    assert read.json()["id"] == str(order.public_id)


def test_a_guest_key_is_scoped_to_the_show_variant_and_email(
    stripe_settings, pinned, mic
):
    """The same key with another email is another order; the same key and email
    from another guest session is refused, never handed that checkout."""
    key = new_key()
    first, token = api_client()
    body = {"variant_id": mic.pk, "email": "a@example.test"}
    assert buy(first, token, pinned.slug, body, key=key).status_code == 201
    other_email = buy(
        first, token, pinned.slug, {**body, "email": "b@example.test"}, key=key
    )
    assert other_email.status_code == 201
    session = SessionStore()
    session.create()
    stranger, token = api_client(session.session_key)
    refused = buy(stranger, token, pinned.slug, body, key=key)
    assert refused.status_code == 409
    assert refused.json()["code"] == "idempotency_key_reused"
    assert "sessionid" not in refused.cookies or (
        refused.cookies["sessionid"].value == session.session_key
    )
    assert Order.objects.count() == 2


def all_intents(base: str) -> list[dict]:
    """Every PaymentIntent localstripe holds, page by page."""
    import requests

    found: list[dict] = []
    after = None
    while True:
        page = requests.get(
            f"{base}/v1/payment_intents",
            params={"limit": 100, **({"starting_after": after} if after else {})},
            headers={"Authorization": "Bearer sk_test_showfloor"},
            timeout=10,
        ).json()
        found += page["data"]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def test_pay_with_the_test_method_then_read_the_order(stripe_settings, pinned, mic):
    """The sheet's server-confirmed test payment, then GET shows it paid; another
    visitor cannot read it."""
    session = SessionStore()
    session.create()
    client, token = api_client(session.session_key)
    order = buy(
        client, token, pinned.slug, {"variant_id": mic.pk, "email": "g@example.test"}
    ).json()
    paid = client.post(
        f"/api/orders/{order['id']}/pay",
        data=json.dumps({"method": "test"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert paid.status_code == 200, paid.content
    assert paid.json()["status"] == "paid"
    assert paid.json()["outcome"] == "paid"
    assert client.get(f"/api/orders/{order['id']}").json()["status"] == "paid"
    stranger, _ = api_client()
    assert stranger.get(f"/api/orders/{order['id']}").status_code == 404


def test_saved_card_is_refused_without_one(stripe_settings, pinned, mic, make_user):
    """One-tap pay needs a saved card: without one it is a clear 409."""
    user = make_user()
    client, token = api_client(user=user)
    order = buy(client, token, pinned.slug, {"variant_id": mic.pk}).json()
    answer = client.post(
        f"/api/orders/{order['id']}/pay",
        data=json.dumps({"method": "saved"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "no_saved_card"


def start_sale(client, token, slug, body):
    return client.post(
        f"/api/shows/{slug}/sales",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def test_host_starts_a_flash_sale_and_orders_take_its_price_and_limit(
    stripe_settings, pinned, mic, host, make_user, sent
):
    """A host's sale sets the price for orders during it and caps each buyer
    across orders; viewers cannot start sales."""
    viewer = make_user()
    client, token = api_client(user=viewer)
    body = {
        "product_id": mic.product_id,
        "price_minor": 4900,
        "duration_seconds": 60,
        "per_buyer_limit": 2,
    }
    assert start_sale(client, token, pinned.slug, body).status_code == 403
    host_client, host_token = api_client(user=host)
    answer = start_sale(host_client, host_token, pinned.slug, body)
    assert answer.status_code == 201, answer.content
    sale = answer.json()
    assert sale["ends_at"] - sale["starts_at"] == 60_000
    (started,) = [e for _, _, e in sent if e["type"] == "sale.started"]
    assert started["price_minor"] == 4900
    assert started["server_now"] >= sale["starts_at"]
    assert (
        start_sale(host_client, host_token, pinned.slug, body).json()["code"]
        == "sale_running"
    )

    first = buy(client, token, pinned.slug, {"variant_id": mic.pk, "quantity": 2})
    assert first.status_code == 201
    assert first.json()["total_minor"] == 9800
    again = buy(client, token, pinned.slug, {"variant_id": mic.pk, "quantity": 1})
    assert again.status_code == 409
    assert again.json()["code"] == "over_limit"
    assert Order.objects.filter(sale__isnull=False).count() == 1


def test_sale_ends_by_the_server_clock(stripe_settings, pinned, mic, host, sent):
    """When its window has passed, the sweeper closes the sale once and orders
    go back to the normal price."""
    from datetime import timedelta

    from django.utils import timezone

    from checkout import services, sweeper

    sale = services.sale_start(
        show=pinned,
        user=host,
        product_id=mic.product_id,
        price_minor=100,
        duration_seconds=10,
        per_buyer_limit=1,
    )
    FlashSale.objects.filter(pk=sale.pk).update(
        starts_at=timezone.now() - timedelta(seconds=20),
        ends_at=timezone.now() - timedelta(seconds=1),
    )
    assert sweeper.sweep_once() == 1
    assert sweeper.sweep_once() == 0
    assert len([e for _, _, e in sent if e["type"] == "sale.ended"]) == 1
    client, token = api_client()
    answer = buy(
        client, token, pinned.slug, {"variant_id": mic.pk, "email": "g@example.test"}
    )
    assert answer.json()["total_minor"] == 8900


def test_studio_orders_are_for_staff_only(
    stripe_settings, pinned, mic, host, make_user
):
    """The host sees orders and revenue; a viewer gets 403."""
    from checkout import services

    buyer = services.Buyer(user=make_user("Bo Buyer"))
    placed = services.order_create(
        show=pinned,
        buyer=buyer,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    )
    services.order_pay(order=placed.order, buyer=buyer, method="test")
    viewer_client, _ = api_client(user=make_user())
    assert viewer_client.get(f"/api/shows/{pinned.slug}/orders").status_code == 403
    host_client, _ = api_client(user=host)
    data = host_client.get(f"/api/shows/{pinned.slug}/orders").json()
    assert data["revenue"] == [
        {"currency": "EUR", "minor": 8900, "orders": 1, "formatted": "€89.00"}
    ]
    assert data["orders"][0]["buyer"] == "Bo Buyer"
    assert data["orders"][0]["status"] == "paid"


def test_reservations_from_one_address_are_rate_limited(
    stripe_settings, settings, pinned, mic
):
    """After its burst, an address gets 429 ``rate_limited`` with Retry-After
    and no further holds; sold-out answers never count against it."""
    import uuid

    settings.SHOWFLOOR_RESERVATIONS_BURST = 2
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 1
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    client, token = api_client()
    body = {"variant_id": mic.pk, "email": "g@example.test"}
    answers = [
        buy(client, token, pinned.slug, body, REMOTE_ADDR=address) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["code"] == "rate_limited"
    assert int(answers[2]["Retry-After"]) >= 1
    assert Order.objects.count() == 2
    mic.refresh_from_db()
    assert mic.stock_available == 8
    other = f"2001:db8::{uuid.uuid4().hex[:4]}"
    mic.__class__.objects.filter(pk=mic.pk).update(stock_available=0)
    sold_out = [
        buy(client, token, pinned.slug, body, REMOTE_ADDR=other) for _ in range(4)
    ]
    assert {a.json()["code"] for a in sold_out} == {"sold_out"}


def test_a_guests_first_order_writes_its_session_once(stripe_settings, pinned, mic):
    """The session a guest's first order starts is inserted once: no lookup
    of the new key before it, no second write for the answer
    (``SESSION_ENGINE`` is ``shows.sessions``)."""
    client, token = api_client()
    body = {"variant_id": mic.pk, "quantity": 1, "email": "first@example.test"}
    with CaptureQueriesContext(connection) as queries:
        answer = buy(client, token, pinned.slug, body)
    assert answer.status_code == 201
    session_sql = [
        q["sql"].split()[0]
        for q in queries.captured_queries
        if "django_session" in q["sql"]
    ]
    assert session_sql == ["INSERT"]
    assert client.cookies["sessionid"].value
    # Written in the order's transaction: one commit on the way, not two.
    sql = [q["sql"] for q in queries.captured_queries]
    session_at = next(i for i, q in enumerate(sql) if "django_session" in q)
    order_at = next(i for i, q in enumerate(sql) if 'INTO "checkout_order"' in q)
    assert session_at < order_at
    assert not any(q.startswith("COMMIT") for q in sql[session_at:order_at])
