"""A guest's order after the show, in Chromium, in German and in Frisian: the
emailed link opens the order; once the brand ships it, the page shows the
carrier and the tracking link."""

from __future__ import annotations

import pytest

from checkout import services
from checkout.order_links import order_link_url
from checkout.services import fulfilment
from shows.services import room
from tests.checkout.conftest import new_key

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


# locale, then the page's words: "Order", "Paid", "Track your parcel",
# "Shipped with DHL.", "Cancel this order".
WORDS = {
    "de-DE": (
        "Bestellung",
        "Bezahlt",
        "Sendung verfolgen",
        "Versandt mit DHL.",
        "Diese Bestellung stornieren",
    ),
    "fy": (
        "Bestelling",
        "Betelle",
        "Dyn pakket folgje",
        "Ferstjoerd mei DHL.",
        "Dizze bestelling annulearje",
    ),
}


@pytest.mark.parametrize("locale", list(WORDS))
def test_a_guest_follows_the_email_link_and_sees_the_tracking_link(
    stripe_settings, asgi_server, browser, live_show, products, host, settings, locale
):
    order_word, paid_word, track_word, shipped_words, cancel_words = WORDS[locale]
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    guest = services.Buyer(user=None, session_key="", email="gast@example.test")
    order = services.order_create(
        show=live_show,
        buyer=services.Buyer(
            user=None, email="gast@example.test", start_session=lambda: "s" * 32
        ),
        variant_id=products[1].variants.get().pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    services.order_pay(
        order=order,
        buyer=services.Buyer(user=None, session_key="s" * 32, email=guest.email),
        method="test",
    )
    order.refresh_from_db()
    settings.SHOWFLOOR_PUBLIC_URL = asgi_server
    link = order_link_url(order)
    context = browser.new_context(locale=locale, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(link)
        heading = page.get_by_role("heading", name=f"{order_word} {order.reference}")
        heading.wait_for()
        assert page.get_by_text(paid_word).first.is_visible()
        assert page.get_by_role("link", name=track_word).count() == 0
        fulfilment.order_ship(
            order=order,
            carrier="DHL",
            tracking_number="JJD00123",
            tracking_url="https://track.example/JJD00123",
        )
        page.reload()
        track = page.get_by_role("link", name=track_word)
        track.wait_for()
        assert track.get_attribute("href") == "https://track.example/JJD00123"
        assert shipped_words in page.inner_text(".tracking")
        assert page.get_by_role("button", name=cancel_words).count() == 0
    finally:
        context.close()
