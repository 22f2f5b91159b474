"""The live show page loads the buy sheet (checkout.js, checkout.css) on its
first use, through checkout-loader.js, in Chromium: what the room said before
(a flash sale, a stock change) is in the sheet the first tap opens."""

from __future__ import annotations

import re

import pytest

from tests.checkout.conftest import mic, pinned  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# Counts the sheet's opens (each sends the `sheet_open` beacon through the room).
COUNT_OPENS = """() => {
  window.opens = 0;
  const send = window.showfloorRoom.send;
  window.showfloorRoom.send = (message) => {
    if (message.event === "sheet_open") window.opens += 1;
    return send(message);
  };
}"""


def test_the_first_buy_tap_loads_the_sheet_with_the_sale_and_stock_it_missed(
    stripe_settings,
    asgi_server,
    browser,
    pinned,  # noqa: F811
    mic,  # noqa: F811
    host,
):
    """No checkout.js nor checkout.css until Buy; a sale started and a stock
    change made before it are in the sheet (sale price, limit, 3 left); a
    double tap before the module arrived opens one sheet, styled."""
    from checkout.services import sale_start
    from shows.services import variant_stock_adjust

    context = browser.new_context(viewport={"width": 390, "height": 844})
    loaded: list[str] = []  # the names of the buy sheet's files the page asked for
    context.on(
        "request",
        lambda request: (
            loaded.append(request.url.rsplit("/", 1)[1])
            if "/static/frontend/checkout" in request.url
            else None
        ),
    )
    try:
        page = context.new_page()
        page.goto(f"{asgi_server}/shows/{pinned.slug}/")
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        page.wait_for_selector(".room-pin .room-buy", timeout=10000)
        page.evaluate(COUNT_OPENS)

        sale_start(
            show=pinned,
            user=host,
            product_id=mic.product_id,
            price_minor=4900,
            duration_seconds=600,
            per_buyer_limit=2,
        )
        variant_stock_adjust(actor=None, variant=mic, seen=10, new=3)
        # The room has shown both: the page has had their events.
        page.wait_for_selector(".room-pin .sale-price", timeout=10000)
        page.wait_for_function(
            "document.querySelector('.room-pin .room-stock').textContent.includes('3')",
            timeout=10000,
        )
        page.wait_for_load_state("networkidle")
        assert loaded == ["checkout-loader.js"]
        assert page.is_hidden("#buy-sheet")
        # The module's clock comes from when the page was served, not from
        # when the module loaded: a tap seconds later shows less than the
        # sale's 10:00 (it once showed the wait on top).
        page.wait_for_timeout(2000)

        # Two taps before the module is here (no finger down first: no head start).
        page.evaluate(
            "() => { const b = document.querySelector('.room-pin .room-buy');"
            " b.click(); b.click(); }"
        )
        page.wait_for_selector("#buy-sheet[open]", timeout=10000)
        assert {"checkout.js", "checkout.css"} <= set(loaded)
        assert page.evaluate("window.opens") == 1
        assert page.locator("dialog[open]").count() == 1
        assert page.evaluate("document.activeElement.id") == "buy-primary"
        # checkout.css was applied before the sheet opened (3rem main action).
        assert (
            page.evaluate(
                "getComputedStyle(document.getElementById('buy-primary')).minHeight"
            )
            == "48px"
        )

        assert page.inner_text("#buy-product") == "Desk Mic"
        assert page.is_visible("#buy-sale")
        assert re.match(
            r"Flash sale: ends in 9:[45]\d · Up to 2 per buyer",
            page.inner_text("#buy-sale"),
        )
        assert page.inner_text("#buy-stock") == "3 left"
        assert page.get_attribute("#buy-qty", "max") == "2"
        page.wait_for_function(
            "document.getElementById('buy-total').textContent.includes('49.00')",
            timeout=10000,
        )
        page.keyboard.press("Escape")
        page.wait_for_selector("#buy-sheet:not([open])", state="attached")
        page.click(".room-pin .room-buy")  # now checkout.js listens itself
        page.wait_for_selector("#buy-sheet[open]")
        assert page.evaluate("window.opens") == 2
    finally:
        context.close()
