"""Comment to buy in Chromium: the host sets a keyword in the studio and pins;
a viewer types it in the chat, gets a confirmation card and pays with one
tap; the rest of the room sees the claim in the chat; on a phone, in four
languages, axe-clean."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext

from checkout import services
from checkout.models import Order
from shows.services import room
from shows.services.claim_keywords import claim_keyword_set
from tests.checkout.conftest import new_key
from tests.frontend.test_a11y import axe_problems, axe_script  # noqa: F401
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PHONE = {"width": 390, "height": 844}


def with_saved_card(user, show, variant) -> None:
    """A first order that saves the buyer's Visa (…4242), paid on the server."""
    buyer = services.Buyer(user=user)
    first = services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=1,
        idempotency_key=new_key(),
        save_card=True,
    )
    assert services.order_pay(order=first.order, buyer=buyer, method="test").outcome


def room_page(browser, base: str, slug: str, user=None, **context: Any):
    ctx = browser.new_context(viewport=PHONE, **context)
    if user is not None:
        ctx.add_cookies(
            [{"name": "sessionid", "value": login_cookie(user), "url": base}]
        )
    page = ctx.new_page()
    page.goto(f"{base}/shows/{slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
    return page


def poll(page, script: str, timeout: float = 15.0) -> Any:
    """Evaluate ``script`` until it is truthy (the page's CSP refuses
    Playwright's polling predicate)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def say_in_chat(page, text: str) -> None:
    page.fill("#room-chat-input", text)
    page.press("#room-chat-input", "Enter")


def test_the_host_sets_sold_a_viewer_claims_it_in_the_chat_and_pays_in_one_tap(
    stripe_settings, asgi_server, browser, live_show, products, host, make_user
):
    """The studio's keyword field and Pin; the viewer's phone shows "Type SOLD
    in the chat to claim one", then after "sold" the card with the saved card
    and the hold's countdown; one tap pays. Another viewer reads "Rita claimed
    one: Desk Mic" in the chat."""
    mic = products[1].variants.get()
    rita = make_user("Rita")
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    with_saved_card(rita, live_show, mic)
    room.product_unpin(show=live_show, actor=host, product_id=products[1].pk)
    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    studio_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    studio_ctx.add_cookies(
        [{"name": "sessionid", "value": login_cookie(host), "url": asgi_server}]
    )
    studio = studio_ctx.new_page()
    studio.goto(f"{asgi_server}/shows/{live_show.slug}/studio/")
    studio.wait_for_selector("#studio-conn[data-state='live']", timeout=15000)
    field = f"#studio-claim-{products[1].pk}"
    studio.fill(field, "SOLD")
    studio.press(field, "Enter")
    studio.wait_for_selector(
        f"#studio-claim-say-{products[1].pk}[data-kind='ok']", timeout=10000
    )
    assert "SOLD" in studio.inner_text(f"#studio-claim-say-{products[1].pk}")
    studio.click(f"#studio-lineup button[data-product='{products[1].pk}']")

    buyer = room_page(browser, asgi_server, live_show.slug, rita)
    other = room_page(browser, asgi_server, live_show.slug, make_user("Omar"))
    try:
        buyer.wait_for_selector("#room-claim .claim-hint", timeout=15000)
        hint = buyer.inner_text("#room-claim .claim-hint")
        assert "SOLD" in hint
        assert "Desk Mic" in hint
        say_in_chat(buyer, "sold")
        buyer.wait_for_selector("#room-claim .claim-card .claim-pay", timeout=15000)
        pay = buyer.inner_text("#room-claim .claim-pay")
        assert pay == "Pay €89.00 with Visa •••• 4242"
        left = buyer.inner_text("#room-claim .claim-left")
        # The hold's five minutes, counted down from the server's expiry (a
        # loaded machine may take a few seconds to draw the card).
        assert left.startswith("Held for you for "), left
        minutes, seconds = left.removeprefix("Held for you for ").split(":")
        assert 290 <= int(minutes) * 60 + int(seconds) <= 300, left
        # On a phone the card sits over the video's top, clear of the chat.
        box = buyer.locator("#room-claim .claim-card").bounding_box()
        chat = buyer.locator("#room-chat-input").bounding_box()
        assert box["y"] + box["height"] <= chat["y"]
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]

        line = other.wait_for_selector("#room-chat .claim-line", timeout=15000)
        assert line.inner_text().endswith("Rita claimed one: Desk Mic")
        assert other.locator("#room-claim .claim-card").count() == 0

        buyer.click("#room-claim .claim-pay")  # the one tap
        buyer.wait_for_selector(
            "#room-claim .claim-card[data-status='paid']", timeout=15000
        )
        assert "Paid" in buyer.inner_text("#room-claim .claim-say")
        # The live region said "Paying…" on the tap; it is told the outcome
        # once the card shows it.
        live = "document.querySelector('#room-claim .claim-live').textContent"
        said = poll(buyer, f"{live}.startsWith('Paid') && {live}")
        assert said, buyer.evaluate(live)
        assert said.startswith("Paid")
        claim = Order.objects.get(buyer=rita, source="comment")
        assert claim.status == Order.Status.PAID
        assert claim.total_minor == 8900
        studio.wait_for_selector("#studio-claims li", timeout=10000)
        assert "Rita claimed one: Desk Mic" in studio.inner_text("#studio-claims")
    finally:
        for page in (buyer, other, studio):
            page.context.close()


def test_without_a_saved_card_open_checkout_opens_the_sheet_on_the_held_order(
    stripe_settings, asgi_server, browser, live_show, products, host, make_user
):
    """The card's "Open checkout" opens the buy sheet on the claim's order
    (checkout.js's ``orderId``); closing the sheet leaves the hold alone."""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    claim_keyword_set(
        show=live_show, actor=host, product_id=products[1].pk, keyword="+1"
    )
    page = room_page(browser, asgi_server, live_show.slug, make_user("Nia"))
    try:
        say_in_chat(page, "+1")
        page.wait_for_selector("#room-claim .claim-open", timeout=15000)
        assert page.inner_text("#room-claim .claim-open") == "Open checkout · €89.00"
        order = Order.objects.get(source="comment")
        # By keyboard: the card's button takes the focus and Enter opens.
        page.focus("#room-claim .claim-open")
        page.keyboard.press("Enter")
        page.wait_for_selector("#buy-sheet[open]", timeout=15000)
        assert poll(
            page,
            "document.getElementById('buy-sheet').dataset.orderId || ''",
        ) == str(order.public_id)
        page.keyboard.press("Escape")
        page.wait_for_selector("#buy-sheet:not([open])", state="attached")
        time.sleep(1)
        order.refresh_from_db()
        assert order.status == Order.Status.RESERVED
        assert page.locator("#room-claim .claim-card[data-status='held']").count() == 1
    finally:
        page.context.close()


def test_a_refused_claim_says_why_in_a_status_line(
    stripe_settings, asgi_server, browser, live_show, products, host, make_user
):
    """Sold out: the reason shows in a status line, and nothing is held."""
    room.product_pin(show=live_show, actor=host, product_id=products[2].pk)
    claim_keyword_set(
        show=live_show, actor=host, product_id=products[2].pk, keyword="SOLD"
    )
    page = room_page(browser, asgi_server, live_show.slug, make_user("Sol"))
    try:
        say_in_chat(page, "SOLD")
        page.wait_for_selector("#room-claim .claim-note", timeout=15000)
        assert page.inner_text("#room-claim .claim-note").startswith("Sold out")
        # Said once more in the claim's one live region, for screen readers.
        assert page.get_attribute("#room-claim .claim-live", "role") == "status"
        said = poll(
            page, "document.querySelector('#room-claim .claim-live').textContent"
        )
        assert said.startswith("Sold out")
        assert not Order.objects.exists()
    finally:
        page.context.close()


def template_gettext(msgid: str) -> str:
    """A template's ``{% translate %}`` string with placeholders: catalogued
    with its ``%`` doubled (as makemessages extracts it), read back single."""
    return gettext(msgid.replace("%(", "%%(")).replace("%%", "%")


@pytest.mark.parametrize(
    ("language", "amount"),
    [
        ("en", "€89.00"),
        ("de", "89,00\xa0€"),
        ("fr", "89,00\xa0€"),
        ("fy", "€\xa089,00"),
    ],
)
def test_the_claim_speaks_the_viewers_language(
    stripe_settings,
    asgi_server,
    browser,
    live_show,
    products,
    host,
    make_user,
    language,
    amount,
    axe_script,  # noqa: F811
):
    """The hint, the card and the chat line in the page's language, the
    amount written as that language writes it; axe finds nothing serious on
    the phone page with all of it, in light and dark."""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    claim_keyword_set(
        show=live_show, actor=host, product_id=products[1].pk, keyword="SOLD"
    )
    page = room_page(
        browser,
        asgi_server,
        live_show.slug,
        make_user("Lena"),
        locale=language,
        extra_http_headers={"Accept-Language": language},
    )
    try:
        assert page.get_attribute("html", "lang") == language
        page.wait_for_selector("#room-claim .claim-hint", timeout=15000)
        with translation.override(language):
            hint = template_gettext(
                "Type %(keyword)s in the chat to claim one: %(product)s"
            )
            line = template_gettext("%(name)s claimed one: %(product)s")
            held = template_gettext("Held for you for %(time)s")
        if language != "en":
            assert hint != "Type %(keyword)s in the chat to claim one: %(product)s"
        assert page.inner_text("#room-claim .claim-hint") == hint % {
            "keyword": "SOLD",
            "product": "Desk Mic",
        }
        say_in_chat(page, "Sold")
        page.wait_for_selector("#room-claim .claim-open", timeout=15000)
        page.wait_for_selector("#room-chat .claim-line", timeout=15000)
        # The hint gives way to the card of the one held.
        assert page.locator("#room-claim .claim-hint").count() == 0
        assert page.inner_text("#room-chat .claim-line .room-text") == line % {
            "name": "Lena",
            "product": "Desk Mic",
        }
        assert page.inner_text("#room-claim .claim-left").startswith(
            held.split("%(time)s")[0]
        )
        assert page.inner_text("#room-claim .claim-open").endswith(amount)
        assert axe_problems(page, axe_script, f"claim {language}") == []
    finally:
        page.context.close()
