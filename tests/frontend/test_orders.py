"""The buyer's order pages (frontend/orders.py): "My orders", one order with
its timeline and tracking, the email's signed link for guests, and the
buyer's cancel; nobody else's order is ever shown."""

from __future__ import annotations

import pytest
from django.test import Client

from checkout import services
from checkout.models import Order
from checkout.order_links import order_link_token, order_link_url
from checkout.services import fulfilment
from shows.services import room
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pinned(live_show, products, host):
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    return live_show


@pytest.fixture
def mic(products):
    return products[1].variants.get()


@pytest.fixture
def guest():
    return services.Buyer(user=None, session_key="g" * 32, email="g@example.test")


@pytest.fixture
def buyer(make_user):
    return make_user(display_name="Noor", email="noor@example.test")


def paid_order(show, buyer, variant):
    placed = services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    services.order_pay(order=placed, buyer=buyer, method="test")
    placed.refresh_from_db()
    return placed


def test_my_orders_lists_the_buyers_own_paid_orders(
    stripe_settings, pinned, mic, buyer, make_user
):
    order = paid_order(pinned, services.Buyer(user=buyer), mic)
    stranger = make_user(display_name="Sam", email="sam@example.test")
    paid_order(pinned, services.Buyer(user=stranger), mic)
    client = Client()
    client.force_login(buyer)
    page = client.get("/orders/")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count('class="order-row"') == 1
    assert f"Order {order.reference}" in body
    assert "€89.00" in body
    assert Client().get("/orders/").status_code == 302  # to the login


def test_an_order_page_shows_the_timeline_and_tracking_to_its_buyer_only(
    stripe_settings, pinned, mic, buyer, make_user
):
    order = paid_order(pinned, services.Buyer(user=buyer), mic)
    fulfilment.order_ship(
        order=order,
        carrier="DHL",
        tracking_number="JJD42",
        tracking_url="https://track.example/JJD42",
    )
    client = Client()
    client.force_login(buyer)
    page = client.get(f"/orders/{order.public_id}/")
    body = page.content.decode()
    assert page.status_code == 200
    for text in ("Order placed", "Paid", "Packed", "Shipped", "JJD42", "DHL"):
        assert text in body, text
    assert 'href="https://track.example/JJD42"' in body
    assert "Cancel this order" not in body
    stranger = Client()
    stranger.force_login(make_user(display_name="Sam", email="sam@example.test"))
    assert stranger.get(f"/orders/{order.public_id}/").status_code == 404
    assert Client().get(f"/orders/{order.public_id}/").status_code == 404


def test_a_guest_reaches_the_order_through_the_signed_link_only(
    stripe_settings, pinned, mic, guest
):
    order = paid_order(pinned, guest, mic)
    url = order_link_url(order)
    assert url.startswith("http")
    path = url[url.index("/orders/link/") :]
    page = Client().get(path)
    assert page.status_code == 200
    assert f"Order {order.reference}" in page.content.decode()
    token = order_link_token(order)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = Client().get(f"/orders/link/{tampered}/")
    assert refused.status_code == 404
    assert "This link does not work" in refused.content.decode()


def test_the_buyer_cancels_from_the_page_before_packing(
    stripe_settings, pinned, mic, guest
):
    """The page offers the cancel; posting it refunds and returns the unit;
    the page then says so and offers it no more; a reload posts nothing."""
    order = paid_order(pinned, guest, mic)
    path = f"/orders/link/{order_link_token(order)}/"
    client = Client()
    assert "Cancel this order" in client.get(path).content.decode()
    answer = client.post(path, {"action": "cancel"}, follow=True)
    body = answer.content.decode()
    assert "Your order is cancelled." in body
    assert "Cancel this order" not in body
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    mic.refresh_from_db()
    assert mic.stock_available == 10


def test_a_packed_order_page_refuses_the_cancel_with_a_message(
    stripe_settings, pinned, mic, guest
):
    order = paid_order(pinned, guest, mic)
    path = f"/orders/link/{order_link_token(order)}/"
    client = Client()
    client.get(path)
    fulfilment.order_pack(order=order)
    answer = client.post(path, {"action": "cancel"}, follow=True)
    assert "already packed" in answer.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_the_cancel_needs_the_csrf_token(stripe_settings, pinned, mic, guest):
    order = paid_order(pinned, guest, mic)
    client = Client(enforce_csrf_checks=True)
    answer = client.post(
        f"/orders/link/{order_link_token(order)}/", {"action": "cancel"}
    )
    assert answer.status_code == 403
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_the_buyer_removes_the_saved_card_and_address_from_my_orders(
    stripe_settings, pinned, mic, buyer
):
    """What checkout keeps is listed with a way to remove it: the card is
    detached at Stripe and forgotten, the address deleted."""
    from checkout.addresses import address_clean
    from checkout.models import SavedAddress, SavedCard
    from checkout.services import delivery

    placed = services.order_create(
        show=pinned,
        buyer=services.Buyer(user=buyer),
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
        save_card=True,
    ).order
    services.order_pay(order=placed, buyer=services.Buyer(user=buyer), method="test")
    delivery.saved_address_set(
        user=buyer,
        address=address_clean(
            {
                "name": "Noor",
                "line1": "Torstraße 1",
                "postal_code": "10119",
                "city": "Berlin",
                "country": "DE",
            }
        ),
    )
    client = Client()
    client.force_login(buyer)
    body = client.get("/orders/").content.decode()
    assert "•••• 4242" in body
    assert "Torstraße 1" in body
    client.post("/orders/", {"action": "remove_card"})
    client.post("/orders/", {"action": "remove_address"})
    assert not SavedCard.objects.filter(user=buyer).exists()
    assert not SavedAddress.objects.filter(user=buyer).exists()
    body = client.get("/orders/").content.decode()
    assert "Saved for checkout" not in body
