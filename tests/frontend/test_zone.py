"""Times in the viewer's time zone (frontend/zone.py, zone.js): remembered in a
cookie the browser sets, then written by the server in that zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from shows.models import Show

pytestmark = pytest.mark.django_db


def set_start(show, when: datetime) -> None:
    Show.objects.filter(pk=show.pk).update(scheduled_at=when)


def test_the_server_writes_times_in_the_zone_the_cookie_names(show):
    set_start(show, datetime(2026, 12, 24, 17, 0, tzinfo=UTC))
    client = Client()
    plain = client.get("/").content.decode()
    assert "5:00\u202fPM UTC" in plain or "5:00 PM UTC" in plain
    client.cookies["showfloor_tz"] = "Europe/Berlin"
    berlin = client.get("/")
    assert "6:00" in berlin.content.decode()
    assert "+0100" in berlin.content.decode()
    assert "Cookie" in berlin["Vary"]
    client.cookies["showfloor_tz"] = "Mars/Olympus_Mons"
    assert "UTC" in client.get("/").content.decode()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_browser_tells_its_zone_once_and_then_the_page_is_in_it(
    asgi_server, browser, show
):
    set_start(show, datetime(2026, 12, 24, 17, 0, tzinfo=UTC))
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{asgi_server}/")
        page.wait_for_function(
            "document.cookie.includes('showfloor_tz=America%2FNew_York')"
        )
        first = page.inner_text(".show-card time")
        assert "12:00" in first, first  # rewritten in the page at once
        page.reload()
        second = page.inner_text(".show-card time")
        assert "12:00" in second, second
        assert "UTC" not in second, second  # now written by the server
        assert "EST" in second, second
    finally:
        context.close()
