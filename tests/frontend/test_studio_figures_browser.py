"""The studio's live figures in Chromium: the panel fills from the endpoint,
the chart draws, and its table for screen readers holds the same minutes."""

from __future__ import annotations

import pytest

from realtime import counting
from shows.services import room
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_the_studio_shows_live_figures_and_a_chart(
    asgi_server, page, live_show, host, products, redis_client
):
    """A pinned product's impressions reach the table; the chart draws the
    last ten minutes at least, and the minute's row names the pin and the
    flash sale the chart marks. (Redis keys are removed afterwards.)"""
    from checkout.services import sale_start

    room.product_pin(show=live_show, actor=host, product_id=products[0].pk)
    sale_start(
        show=live_show,
        user=host,
        product_id=products[0].pk,
        price_minor=9900,
        duration_seconds=60,
        per_buyer_limit=1,
    )
    counting.add(live_show.pk, "chat", 4)
    counting.add(live_show.pk, "impressions", 2, products={products[0].pk: 2})
    counting.flush()
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(host), "url": asgi_server}]
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{asgi_server}/shows/{live_show.slug}/studio/")
    panel = page.locator("#studio-figures")
    panel.locator("#studio-figures-chart canvas").wait_for(timeout=15_000)
    row = panel.locator("#studio-figures-rows tr")
    assert row.locator("th").inner_text().startswith("Studio Headphones")
    assert row.locator("td").first.inner_text() == "2"
    minutes = panel.locator("#studio-figures-minutes tr")
    assert minutes.count() >= 10
    said = " ".join(minutes.all_inner_texts())
    assert said.count("Studio Headphones pinned") == 1
    assert said.count("Flash sale on Studio Headphones") == 1
    assert (
        panel.locator("[data-figure='conversion_formatted']").inner_text() == "\u2013"
    )
    assert errors == []
