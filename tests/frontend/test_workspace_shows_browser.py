"""Scheduling a show from the workspace in Chromium: a host fills the form on a
phone, orders the line-up with the keyboard, reads the OBS details and opens
the studio from there; the pages (shows, orders, settings, audit) pass axe
and break no part of the Content-Security-Policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from shows import services
from shows.models import LineupItem, Show
from tests.frontend.test_a11y import axe_problems, axe_script  # noqa: F401
from tests.frontend.test_workspace_browser import new_page, policy_problems

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_a_host_schedules_a_show_orders_its_line_up_and_opens_the_studio(
    asgi_server,
    browser,
    axe_script,  # noqa: F811
    brand,
    host,
    make_user,
    products,
):
    owner = make_user("Olga Owner")
    services.membership_set(brand=brand, user=owner, role="owner")
    page, problems = new_page(browser, asgi_server, axe_script, host)
    base = f"{asgi_server}/brand/{brand.slug}"
    page.goto(f"{base}/")
    page.get_by_role("link", name="Schedule a show").click()
    page.get_by_label("Title").fill("Friday deals")
    day = (timezone.now() + timedelta(days=3)).date()
    page.get_by_label("Day").fill(day.isoformat())
    page.get_by_label("Time").fill("18:00")
    page.get_by_label("Desk Mic").check()
    page.get_by_label("Studio Headphones").check()
    problems += axe_problems(page, axe_script, "schedule a show")
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_selector("#obs-title")
    show = Show.objects.get(title="Friday deals")
    assert show.status == "scheduled"
    assert page.input_value("#whip-url").endswith(f"/live/{show.slug}/whip")
    problems += axe_problems(page, axe_script, "a show")
    # The line-up's order with the keyboard: focus "Down" on the first, Enter.
    first = list(
        LineupItem.objects.filter(show=show)
        .order_by("position")
        .values_list("product_id", flat=True)
    )
    page.locator(".ws-lineup button", has_text="Down: Desk Mic").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Line-up order saved.")
    assert list(
        LineupItem.objects.filter(show=show)
        .order_by("position")
        .values_list("product_id", flat=True)
    ) == list(reversed(first))
    page.get_by_role("link", name="Open the studio").click()
    page.wait_for_url(f"**/shows/{show.slug}/studio/")
    assert "Friday deals" in page.inner_text("h1")
    page.context.close()

    page, owner_problems = new_page(browser, asgi_server, axe_script, owner)
    for path, where in (
        ("/orders/", "orders"),
        ("/settings/", "settings"),
        ("/audit/", "audit"),
    ):
        page.goto(f"{base}{path}")
        owner_problems += axe_problems(page, axe_script, where)
    assert "show.schedule" in page.inner_text("main")
    problems += owner_problems + policy_problems(page)
    page.context.close()
    assert problems == []
