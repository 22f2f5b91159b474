"""In-page notices in Chromium: a signed-in viewer who follows a brand and
watches another show is told "<Brand> is live now" when the brand's show goes
live (shows/services/lifecycle.py → ``brand.live`` → live-notices.js)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from shows import services
from shows.services import audience, room
from tests.frontend.test_a11y import axe_problems, axe_script, open_live_room, signed_in

__all__ = ["axe_script"]  # the fixture, used by name

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def lamp_night(db: None) -> Any:
    nordlicht = services.brand_create(name="Nordlicht", slug="nordlicht")
    lamp = services.product_create(brand=nordlicht, name="Aurora lamp")
    return services.show_create(
        brand=nordlicht,
        slug="lamp-night",
        title="Lamp night",
        scheduled_at=timezone.now() + timedelta(minutes=10),
        products=[lamp],
    )


def test_a_follower_watching_another_show_is_told_the_brand_is_live(
    asgi_server, browser, page, live_show, lamp_night, make_user, brand, axe_script
):
    """The follower's page shows the notice in a polite live region, with a
    link to the show, keyboard-dismissible and axe-clean; a viewer who follows
    only the other brand, on the same show, sees nothing."""
    follower = make_user("Frida Follower")
    audience.follow_set(user=follower, brand=lamp_night.brand, following=True)
    bystander = make_user("Bo Bystander")
    audience.follow_set(user=bystander, brand=brand, following=True)

    signed_in(page, asgi_server, follower)
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    other = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    signed_in(other, asgi_server, bystander)
    open_live_room(other, f"{asgi_server}/shows/{live_show.slug}/")
    # The bystander's page has the notices script too (it follows a brand).
    assert other.locator("#live-notices").count() == 1

    loaded = "performance.getEntriesByType('resource').map((r) => r.name).join(' ')"
    assert "live-notices.js" in page.evaluate(loaded)
    # The notice itself and its stylesheet come only with the first notice.
    assert "live-notice.js" not in page.evaluate(loaded)
    assert "live-notices.css" not in page.evaluate(loaded)

    services.show_start(show=lamp_night)

    notice = page.locator(".live-notice")
    notice.wait_for(timeout=15_000)
    assert notice.locator("p").inner_text() == "Nordlicht is live now"
    link = notice.get_by_role("link", name="Watch Lamp night")
    assert link.get_attribute("href") == "/shows/lamp-night/"
    region = page.locator("[aria-live='polite']", has=notice)
    assert region.count() == 1
    assert "live-notice.js" in page.evaluate(loaded)
    problems = axe_problems(page, axe_script, "live notice")
    assert not problems, "\n".join(problems)

    # A later frame (a chat line) reached the bystander after the notice would
    # have: its page shows none.
    room.chat_send(show=live_show, user=follower, text="Off to the lamps")
    other.wait_for_function(
        "[...document.querySelectorAll('#room-chat li')]"
        ".some((li) => li.textContent.includes('Off to the lamps'))",
        timeout=15_000,
    )
    assert other.locator(".live-notice").count() == 0

    dismiss = notice.get_by_role("button", name="Dismiss")
    dismiss.focus()
    page.keyboard.press("Enter")
    notice.wait_for(state="detached")
    assert page.locator(".live-notice").count() == 0

    # A second go-live of a followed brand: Escape dismisses it too.
    second = services.show_create(
        brand=lamp_night.brand,
        slug="lamp-encore",
        title="Lamp encore",
        scheduled_at=timezone.now() + timedelta(minutes=20),
    )
    services.show_start(show=second)
    notice = page.locator(".live-notice")
    notice.wait_for(timeout=15_000)
    assert notice.get_by_role("link").inner_text() == "Watch Lamp encore"
    notice.get_by_role("link").focus()
    page.keyboard.press("Escape")
    notice.wait_for(state="detached")
    other.context.close()


def test_a_viewer_who_follows_nobody_gets_no_notice_script(
    asgi_server, page, live_show, make_user
):
    """The page weighs what it did for everybody who follows no brand."""
    signed_in(page, asgi_server, make_user("Nia Nobody"))
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    assert page.locator("#live-notices").count() == 0
    assert page.locator("script[src*='live-notices']").count() == 0
