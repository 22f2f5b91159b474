"""The pages in Chromium, served by Daphne with the whole ASGI application."""

from __future__ import annotations

import pytest

from frontend import demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_home_and_demo_show_page_render_in_a_browser(asgi_server, page):
    """The seeded demo show is listed on the home page and its page shows the
    brand, status, a running countdown and the line-up with formatted prices."""
    data = demo.seed_demo()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(asgi_server + "/")
    upcoming = page.locator("section", has=page.locator("#upcoming"))
    upcoming.get_by_text(data.show.title).wait_for()
    assert page.get_by_role("heading", name="Live now").is_visible()
    assert "VIP preview" not in page.content()

    upcoming.get_by_text(data.show.title).click()
    page.wait_for_url(f"**/shows/{data.show.slug}/")
    assert page.get_by_role("heading", name=data.show.title).is_visible()
    assert page.get_by_text("Nordlicht Audio").first.is_visible()
    assert page.locator(".badge-scheduled").first.inner_text().lower() == "scheduled"
    countdown = page.locator(".countdown-left")
    countdown.wait_for(state="visible")
    assert countdown.inner_text().startswith("Starts in")
    lineup = page.locator(".lineup")
    assert lineup.get_by_text("Aurora wireless headphones").is_visible()
    assert lineup.get_by_text("€149.00").first.is_visible()
    # The stylesheet is served (static files through the ASGI stack).
    assert page.evaluate(
        "getComputedStyle(document.querySelector('.badge')).borderRadius"
    ) not in ("", "0px")
    assert not [e for e in errors if "countdown" in e], errors


def test_private_show_code_form_in_a_browser(asgi_server, page):
    """A viewer types the access code and gets into the private show."""
    data = demo.seed_demo()
    page.goto(f"{asgi_server}/shows/{data.private_show.slug}/")
    page.get_by_label("Access code").fill("wrong")
    page.get_by_role("button", name="Enter the show").click()
    assert page.get_by_text("That code does not open this show").is_visible()
    page.get_by_label("Access code").fill(demo.PRIVATE_SHOW_CODE)
    page.get_by_role("button", name="Enter the show").click()
    page.get_by_role("heading", name="In this show").wait_for()
    assert page.get_by_text("Aurora wireless headphones").first.is_visible()


def test_status_badge_follows_the_show_going_live_and_ending(asgi_server, page):
    """An open show page turns its badge to Live (and hides the countdown) when
    the host goes live, then to Ended, without a reload."""
    from shows import services

    data = demo.seed_demo()
    page.goto(f"{asgi_server}/shows/{data.show.slug}/")
    page.locator(".countdown-left").wait_for(state="visible")
    page.locator("[data-state='live']").first.wait_for()  # the room socket is open

    services.show_start(show=data.show)
    page.locator("[data-show-status].badge-live").wait_for(timeout=10_000)
    assert page.locator("[data-show-status]").inner_text().lower() == "live"
    assert page.locator("[data-countdown]").is_hidden()

    services.show_end(show=data.show)
    page.locator("[data-show-status].badge-ended").wait_for(timeout=10_000)
    assert page.locator("[data-show-status]").inner_text().lower() == "ended"
