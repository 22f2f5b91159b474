"""The home, search and brand pages in Chromium: axe-clean in every language,
in light and dark, at phone and desktop width; the upcoming cards count
down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from shows import services
from tests.frontend.test_a11y import axe_problems, axe_script

__all__ = ["axe_script"]  # the fixture, used by name

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def shelves(live_show: Any, brand: Any, products: list[Any]) -> Any:
    """A live show, two upcoming ones and a replay, with products."""
    for hours in (3, 50):
        services.show_create(
            brand=brand,
            slug=f"next-{hours}",
            title=f"Headphone clinic {hours}",
            scheduled_at=timezone.now() + timedelta(hours=hours),
            products=products[:1],
        )
    done = services.show_create(
        brand=brand,
        slug="last-week",
        title="Last week's headphones",
        scheduled_at=timezone.now(),
        products=products[:1],
    )
    services.show_start(show=done)
    services.show_end(show=done)
    done.recording_file = "last-week.webm"
    done.save(update_fields=["recording_file"])
    return live_show


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
def test_home_search_and_brand_pages_have_no_serious_axe_violations(
    asgi_server, page, axe_script, shelves, language
):
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": asgi_server}]
    )
    problems: list[str] = []
    for path, where in (
        ("/", "home"),
        ("/search/?q=headphone", "search"),
        ("/search/?q=headphone&in=upcoming", "search, one group"),
        ("/search/?q=zzzz", "search, nothing found"),
        (f"/brands/{shelves.brand.slug}/", "brand page"),
    ):
        page.goto(asgi_server + path)
        assert page.locator("html").get_attribute("lang") == language
        if where == "home":
            page.locator(".card-countdown .countdown-left").first.wait_for()
        problems += axe_problems(page, axe_script, f"{where} ({language})")
        page.set_viewport_size({"width": 1280, "height": 800})
        problems += axe_problems(page, axe_script, f"{where}, desktop ({language})")
        page.set_viewport_size({"width": 390, "height": 844})
    assert not problems, "\n".join(problems)


def test_the_header_search_box_finds_a_show_and_keeps_the_words(
    asgi_server, page, shelves
):
    page.goto(asgi_server + "/")
    box = page.get_by_role("searchbox")
    box.fill("clinic")
    box.press("Enter")
    page.wait_for_url("**/search/?q=clinic")
    assert page.get_by_role("searchbox").input_value() == "clinic"
    assert page.get_by_role("link", name="Headphone clinic 3").count() == 1
