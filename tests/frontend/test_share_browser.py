"""The share button in Chromium: the phone's share sheet where there is one,
else the link copied with a visible confirmation; the copied link, opened in
another browser, leads to a purchase attributed to the sharer's link; the
Content-Security-Policy is kept throughout."""

from __future__ import annotations

import pytest

from checkout.models import Order
from shows.models import ShareLink
from shows.services import room
from tests.frontend.test_csp import VIOLATIONS
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# A phone's share sheet: records what the page hands it.
SHARE_SHEET = """
window.__shared = [];
Object.defineProperty(navigator, "share", {
  configurable: true,
  value: (data) => { window.__shared.push(data); return Promise.resolve(); },
});
"""
# A desktop without the Web Share API (whatever this Chromium has).
NO_SHARE_SHEET = """
Object.defineProperty(Navigator.prototype, "share", { value: undefined });
"""


def _context(browser, base, *init_scripts, permissions=()):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=False
    )
    if permissions:
        context.grant_permissions(list(permissions), origin=base)
    for script in (VIOLATIONS, *init_scripts):
        context.add_init_script(script)
    return context


def _until(page, expression, timeout=15.0):
    """Poll ``expression`` from here: the pages keep their strict CSP (no
    ``unsafe-eval``), which refuses the string predicate Playwright's own
    ``wait_for_function`` evaluates in the page once it has to poll."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(100)


def _watch(page, problems):
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))


def test_a_copied_share_link_brings_a_purchase_attributed_to_the_sharer(
    stripe_settings, asgi_server, browser, live_show, products, host, make_user
):
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    sharer = make_user("Sam Sharer")
    problems: list[str] = []

    # A phone: the share sheet gets the link for the "app" channel.
    phone = _context(browser, asgi_server, SHARE_SHEET)
    phone.add_cookies(
        [{"name": "sessionid", "value": login_cookie(sharer), "url": asgi_server}]
    )
    try:
        page = phone.new_page()
        _watch(page, problems)
        page.goto(f"{asgi_server}/shows/{live_show.slug}/")
        page.click("[data-share-button]")
        _until(page, "window.__shared.length === 1")
        shared = page.evaluate("window.__shared[0]")
        code = ShareLink.objects.get(show=live_show, sharer=sharer).code
        assert shared["url"].endswith(f"/shows/{live_show.slug}/?via={code}&ch=app")
        assert shared["title"] == "Launch night · Acme Audio"
        # The share sheet says nothing on the page; it was the phone's to show.
        assert page.inner_text("[data-share-status]") == ""
        problems.extend(page.evaluate("window.__csp"))
    finally:
        phone.close()

    # A desktop: the link is copied and the page says so.
    desktop = _context(
        browser,
        asgi_server,
        NO_SHARE_SHEET,
        permissions=("clipboard-read", "clipboard-write"),
    )
    desktop.add_cookies(
        [{"name": "sessionid", "value": login_cookie(sharer), "url": asgi_server}]
    )
    try:
        page = desktop.new_page()
        _watch(page, problems)
        page.goto(f"{asgi_server}/shows/{live_show.slug}/")
        button = page.locator("[data-share-button]")
        assert button.is_visible()
        button.click()
        _until(page, "document.querySelector('[data-share-status]').textContent !== ''")
        assert page.inner_text("[data-share-status]") == "Link copied"
        assert page.get_attribute("[data-share-status]", "role") == "status"
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.endswith(f"/shows/{live_show.slug}/?via={code}&ch=copy")
        problems.extend(page.evaluate("window.__csp"))
    finally:
        desktop.close()

    # Somebody else opens the copied link and buys.
    friend = _context(browser, asgi_server)
    try:
        page = friend.new_page()
        _watch(page, problems)
        page.goto(copied)
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        page.wait_for_selector(".room-pin .room-buy", timeout=10000)
        page.click(".room-pin .room-buy")
        page.wait_for_selector("#buy-sheet[open]")
        page.fill("#buy-email", "friend@example.test")
        page.click("#buy-primary")
        page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
        page.click("#buy-primary")
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        problems.extend(page.evaluate("window.__csp"))
    finally:
        friend.close()

    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert order.source == "share.copy"
    assert order.share_link == ShareLink.objects.get(code=code)
    assert problems == []
