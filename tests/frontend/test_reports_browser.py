"""The reports in Chromium, in every language of the site: the charts draw,
the tables beside them hold the same figures written the language's way,
and axe finds nothing (light and dark schemes)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest

from realtime import counting
from shows import services
from shows.models import Brand, Show
from tests.frontend.test_a11y import (  # noqa: F401
    AXE_TAGS,
    axe_problems,
    axe_script,
)
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

T0 = datetime(2026, 11, 2, 18, 0, tzinfo=UTC).timestamp()
LANGUAGES = ["en", "de", "fr", "fy"]
# Per minute: people present (all of them unique), the most at once, orders.
MINUTES = [(2, 2, 0), (3, 3, 1), (4, 4, 1), (3, 3, 0), (1, 1, 0)]
UNIQUE = 5
# How each language writes a share with one decimal (Babel's locale data).
PERCENT = {"en": "{}.0%", "de": "{},0\xa0%", "fr": "{},0\xa0%", "fy": "{},0%"}


@pytest.fixture
def counted(redis_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Counting on Redis keys of this test's own (removed afterwards)."""
    settings.REDIS_PREFIX = f"{settings.REDIS_PREFIX}:reports-browser"
    fresh = counting.Counter()
    monkeypatch.setattr(counting, "_counter", fresh)
    yield fresh
    fresh.stop()
    import redis

    client = redis.Redis.from_url(redis_url)
    with contextlib.suppress(redis.ConnectionError):
        keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def _ended(brand: Any, slug: str, start: float, end: float, products: list[Any]):
    show = services.show_create(
        brand=brand,
        slug=slug,
        title=slug.replace("-", " ").title(),
        scheduled_at=datetime.fromtimestamp(start + 86400 * 60, tz=UTC),
        products=products,
    )
    services.show_start(show=show)
    services.show_end(show=show)
    Show.objects.filter(pk=show.pk).update(
        started_at=datetime.fromtimestamp(start, tz=UTC),
        ended_at=datetime.fromtimestamp(end, tz=UTC),
    )
    show.refresh_from_db()
    return show


@pytest.fixture
def reported(counted, brand, owner, products):
    """Two ended shows of a Berlin brand, the second counted minute by minute
    and rolled up."""
    Brand.objects.filter(pk=brand.pk).update(time_zone="Europe/Berlin")
    _ended(brand, "autumn-drop", T0 - 7 * 86400, T0 - 7 * 86400 + 900, products)
    show = _ended(brand, "winter-launch", T0 + 15, T0 + 250, products)
    person = 0
    for index, (present, peak, orders) in enumerate(MINUTES):
        at = T0 + 60 * index + 1
        for _ in range(present):
            person = person % UNIQUE + 1
            counting.unique(show.pk, "viewers", f"user:{person}", at=at)
        counting.peak(show.pk, "viewers", peak, at=at)
        if orders:
            counting.add(show.pk, "orders_paid", orders, at=at)
            counting.unique(show.pk, "buyers", f"user:{index}", at=at)
    counting.flush()
    counting.rollup(now=T0 + 600)
    return show


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


def _open(browser: Any, base: str, user: Any, locale: str) -> Any:
    context = browser.new_context(
        locale=locale,
        timezone_id="Europe/Berlin",
        viewport={"width": 1280, "height": 900},
    )
    context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(user), "url": base}]
    )
    return context


def _drawn(page: Any, selector: str) -> bool:
    """Whether the chart's canvas has any painted pixel."""
    return bool(
        page.evaluate(
            """(selector) => {
              const canvas = document.querySelector(selector);
              if (!canvas || !canvas.width || !canvas.height) return false;
              const { width, height } = canvas;
              const ctx = canvas.getContext("2d");
              const data = ctx.getImageData(0, 0, width, height).data;
              for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
              return false;
            }""",
            selector,
        )
    )


# Every violation, whatever its impact (the shared helper keeps the serious
# and critical ones), in the scheme the page is in now.
ALL_VIOLATIONS = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => `${v.id} (${v.impact})`);
}"""


def _all_violations(page: Any) -> list[str]:
    return list(page.evaluate(ALL_VIOLATIONS, AXE_TAGS))


def _cells(page: Any, table: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{table} tbody tr",
        "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))",
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_show_report_draws_its_charts_beside_the_same_numbers(
    asgi_server,
    browser,
    reported,
    owner,
    brand,
    axe_script,  # noqa: F811
    language,
):
    # A viewer in Berlin: minute labels and the charts' axes in its time.
    share = [
        PERCENT[language].format(100 * present // UNIQUE)
        for present, _peak, _orders in MINUTES
    ]
    context = _open(browser, asgi_server, owner, language)
    try:
        context.add_cookies(
            [{"name": "showfloor_tz", "value": "Europe%2FBerlin", "url": asgi_server}]
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{asgi_server}/brand/{brand.slug}/shows/winter-launch/report/")
        assert page.get_attribute("html", "lang") == language
        page.locator("#report-minutes-chart canvas").wait_for(timeout=15_000)
        page.locator("#report-retention-chart canvas").wait_for(timeout=15_000)
        assert _drawn(page, "#report-minutes-chart canvas")
        assert _drawn(page, "#report-retention-chart canvas")
        labels = ["19:00", "19:01", "19:02", "19:03", "19:04"]
        assert _cells(page, "#report-minutes-table") == [
            [label, str(peak), str(orders)]
            for label, (_present, peak, orders) in zip(labels, MINUTES, strict=True)
        ]
        assert _cells(page, "#report-retention-table") == [
            [label, str(present), percent]
            for label, (present, _p, _o), percent in zip(
                labels, MINUTES, share, strict=True
            )
        ]
        assert axe_problems(page, axe_script, f"report [{language}]") == []
        assert _all_violations(page) == []
        assert errors == []
    finally:
        context.close()


def test_the_brand_overview_draws_its_trend_and_reads_without_colour(
    asgi_server,
    browser,
    reported,
    owner,
    brand,
    axe_script,  # noqa: F811
):
    context = _open(browser, asgi_server, owner, "en")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{asgi_server}/brand/{brand.slug}/reports/")
        page.locator("#reports-trend-chart canvas").wait_for(timeout=15_000)
        assert _drawn(page, "#reports-trend-chart canvas")
        heat = page.locator(".report-heatmap")
        assert heat.locator("thead th").all_inner_texts()[1:] == [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ]
        monday = heat.locator("tbody tr").first.locator("td").first
        assert monday.inner_text().split("\n") == [
            "2.5 viewers",
            "40.0% conversion",
            "2 shows",
        ]
        assert heat.locator("tbody tr").first.locator("td").nth(1).inner_text() == (
            "No show"
        )
        # The grid scrolls as one region a keyboard can reach.
        region = page.locator(".ws-table-wrap[role='region']")
        region.focus()
        assert page.evaluate("() => document.activeElement.getAttribute('role')") == (
            "region"
        )
        assert _cells(page, "#reports-shows")[0][3:6] == ["5", "4", "2"]
        assert axe_problems(page, axe_script, "reports") == []
        assert _all_violations(page) == []
        assert errors == []
    finally:
        context.close()
