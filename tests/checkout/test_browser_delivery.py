"""Buying posted goods in Chromium: a new buyer gives an address and sees the
shipping and tax before paying; a returning buyer's saved card and address
make the repeat two taps (Buy, Pay); a bad postal code is pointed out on its
field. Taps are counted as clicks from the pinned card's Buy to "paid"."""

from __future__ import annotations

import pytest

from checkout import services
from checkout.models import Order, OrderAddress, SavedAddress
from checkout.services import delivery
from tests.checkout.conftest import new_key
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def ships(brand):
    delivery.shipping_zone_set(
        brand=brand,
        name="Europe",
        countries=["DE", "AT", "NL", "FR"],
        rate_minor=490,
        currency="EUR",
        free_from_minor=10000,
    )
    delivery.tax_rate_set(brand=brand, country="DE", rate_bp=1900)
    delivery.tax_rate_set(brand=brand, country="FR", rate_bp=2000)
    return brand


def open_sheet(context, base, slug):
    page = context.new_page()
    page.goto(f"{base}/shows/{slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
    page.click(".room-pin .room-buy")  # tap 1
    page.wait_for_selector("#buy-sheet[open]")
    return page


def test_a_new_buyer_gives_an_address_and_sees_shipping_and_tax_before_paying(
    stripe_settings, asgi_server, browser, ships, pinned, mic
):
    """In French: the country starts at France; the sheet shows shipping and
    the tax in the price before anything is reserved; a wrong postal code is
    named on its field; Continue reserves with the address; Pay pays. Three
    taps (Buy, Continue, Pay) besides typing."""
    context = browser.new_context(
        locale="fr-FR", viewport={"width": 390, "height": 844}
    )
    try:
        page = context.new_page()
        page.goto(f"{asgi_server}/shows/{pinned.slug}/")
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        page.click(".room-pin .room-buy")  # tap 1
        page.wait_for_selector("#buy-sheet[open]")
        assert page.input_value("#buy-addr-country") == "FR"
        page.wait_for_function(
            "document.getElementById('buy-breakdown').textContent.includes('4,90')"
        )
        breakdown = page.inner_text("#buy-breakdown")
        assert "Livraison 4,90" in breakdown, breakdown
        assert "20 %" in breakdown
        total = page.inner_text("#buy-total")
        assert total.replace("\u202f", " ").replace("\xa0", " ") == "93,90 €"
        page.fill("#buy-email", "claire@example.test")
        page.fill("#buy-addr-name", "Claire Martin")
        page.fill("#buy-addr-line1", "12 rue de Rivoli")
        page.fill("#buy-addr-postal", "7500")
        page.fill("#buy-addr-city", "Paris")
        page.click("#buy-primary")  # tap 2 (refused: the postal code)
        page.wait_for_selector("#buy-addr-postal[aria-invalid='true']")
        assert page.locator("#buy-addr-postal-error").is_visible()
        assert Order.objects.count() == 0
        page.fill("#buy-addr-postal", "75001")
        page.click("#buy-primary")  # tap 2 again: reserve
        page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
        page.click("#buy-primary")  # tap 3: pay
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        order = Order.objects.get()
        assert (order.subtotal_minor, order.shipping_minor) == (8900, 490)
        assert order.total_minor == 9390
        assert order.tax_minor == 1565  # 93.90 includes 20 %: 15.65
        address = OrderAddress.objects.get(order=order)
        assert (address.city, address.postal_code, address.country) == (
            "Paris",
            "75001",
            "FR",
        )
        link = page.locator("#buy-order-link")
        assert link.is_visible()
        assert f"Commande {order.reference}" in link.inner_text()
    finally:
        context.close()


def test_a_returning_buyer_pays_in_two_taps_to_the_saved_address(
    stripe_settings, asgi_server, browser, ships, pinned, mic, make_user
):
    """After a first order that saved the card and the Berlin address, the
    sheet says where it goes and offers the saved card: Buy, Pay."""
    user = make_user("Lena Vogel", email="lena@example.test")
    buyer = services.Buyer(user=user)
    first = services.order_create(
        show=pinned,
        buyer=buyer,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
        save_card=True,
        address={
            "name": "Lena Vogel",
            "line1": "Torstraße 1",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
        },
        save_address=True,
    )
    services.order_pay(order=first.order, buyer=buyer, method="test")
    assert SavedAddress.objects.filter(user=user).exists()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        context.add_cookies(
            [{"name": "sessionid", "value": login_cookie(user), "url": asgi_server}]
        )
        page = open_sheet(context, asgi_server, pinned.slug)  # tap 1
        label = page.locator("#buy-address-label")
        label.wait_for()
        assert "Torstraße 1" in label.inner_text()
        assert page.locator("#buy-address-form").is_hidden()
        # The server's price, delivered, replaces the list price at once.
        page.wait_for_function(
            "document.getElementById('buy-primary').textContent.includes('93.90')"
        )
        primary = page.inner_text("#buy-primary")
        assert "4242" in primary, primary
        assert "93.90" in primary, primary
        page.click("#buy-primary")  # tap 2
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        second = Order.objects.filter(buyer=user).order_by("-id").first()
        assert second.status == Order.Status.PAID
        assert second.shipping_address.city == "Berlin"
        assert second.total_minor == 9390
    finally:
        context.close()


def test_back_from_the_banks_page_the_sheet_shows_the_order_paid(
    stripe_settings, asgi_server, browser, pinned, mic
):
    """A redirecting payment (localstripe's 3-D Secure page stands in for
    iDEAL or Bancontact) returns to the show page marked with the order: the
    sheet opens on it, the server records it paid from Stripe (before any
    webhook), and the address bar loses the marker."""
    from django.contrib.sessions.backends.db import SessionStore

    from tests.checkout.test_redirect_return import away_at_the_bank, bank_answers

    session = SessionStore()
    session.create()
    buyer = services.Buyer(
        user=None, session_key=str(session.session_key), email="back@example.test"
    )
    order, secret = away_at_the_bank(stripe_settings, pinned, buyer, mic)
    bank_answers(stripe_settings, order, secret, success=True)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        context.add_cookies(
            [{"name": "sessionid", "value": buyer.session_key, "url": asgi_server}]
        )
        page = context.new_page()
        page.goto(
            f"{asgi_server}/shows/{pinned.slug}/?order={order.public_id}"
            "&payment_intent=pi_x&redirect_status=succeeded"
        )
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        assert "Paid" in page.inner_text("#buy-status")
        assert page.evaluate("window.location.search") == ""
        order.refresh_from_db()
        assert order.status == Order.Status.PAID
    finally:
        context.close()
