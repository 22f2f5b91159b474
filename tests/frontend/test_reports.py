"""The reports (live/reports.py, frontend/workspace_reports.py): a scripted
show played through the counting API and the real checkout, rolled up into
PostgreSQL, gives exactly the figures it should on the page, in the report
and in the CSV files, once however often the rollup runs; who may read
them; formula-safe CSV; the brand's overview and best time to go live."""

from __future__ import annotations

import contextlib
import csv
import io
import time
import types
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from checkout import services as checkout
from live import reports
from realtime import counting
from realtime.models import ShowMinuteCount, ShowTotalCount
from shows import services
from shows.models import Brand, Pin, Show
from shows.services import room
from shows.services.workspace import NotAMember

pytestmark = pytest.mark.django_db(transaction=True)

# Monday 2 November 2026, 18:00 UTC: 19:00 in Berlin.
T0 = datetime(2026, 11, 2, 18, 0, tzinfo=UTC).timestamp()
# The Monday before, same hour (an earlier show), and a Wednesday at 11:00
# Berlin time (a show nobody watched).
EARLIER = T0 - 7 * 86400
QUIET = datetime(2026, 10, 28, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> dict[str, float]:
    """The time the counts see (``clock["now"]``)."""
    return {"now": T0}


@pytest.fixture
def counter(
    clock: dict[str, float],
    redis_url: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A counter of this test's own on Redis keys of its own (removed
    afterwards), and a clock the test sets: counts made without ``at=`` (the
    checkout's) land in the minute the test says."""
    settings.REDIS_PREFIX = f"{settings.REDIS_PREFIX}:reports"
    fresh = counting.Counter()
    monkeypatch.setattr(counting, "_counter", fresh)
    monkeypatch.setattr(counting, "_memory_store", counting.MemoryStore())
    fake_time = types.SimpleNamespace(
        time=lambda: clock["now"], monotonic=time.monotonic
    )
    monkeypatch.setattr(counting, "time", fake_time)
    yield fresh
    fresh.stop()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        with contextlib.suppress(redis.ConnectionError):
            keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


@pytest.fixture
def berlin(brand):
    Brand.objects.filter(pk=brand.pk).update(time_zone="Europe/Berlin")
    brand.refresh_from_db()
    return brand


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, tz=UTC)


def _new_show(brand, slug: str, products: list[Any]) -> Show:
    return services.show_create(
        brand=brand,
        slug=slug,
        title=slug.replace("-", " ").title(),
        scheduled_at=_at(T0 + 86400 * 30),
        products=products,
    )


def _start(show: Show, at: float) -> Show:
    services.show_start(show=show)
    Show.objects.filter(pk=show.pk).update(started_at=_at(at))
    show.refresh_from_db()
    return show


def _end(show: Show, at: float) -> Show:
    services.show_end(show=show)
    Show.objects.filter(pk=show.pk).update(ended_at=_at(at))
    show.refresh_from_db()
    return show


def _pin(show: Show, host, product, at: float) -> None:
    pin = room.product_pin(show=show, actor=host, product_id=product.pk)
    Pin.objects.filter(pk=pin.pk).update(pinned_at=_at(at))


def _buy(clock, show, at: float, buyer, product, quantity: int, *, pay: bool):
    clock["now"] = at
    order = checkout.order_create(
        show=show,
        buyer=buyer,
        variant_id=product.variants.get().pk,
        quantity=quantity,
        idempotency_key=uuid.uuid4().hex,
    ).order
    # The lead's checkout counts the people who reserved; counting them here
    # too (with the same identity) changes nothing, as a unique count.
    who = f"user:{buyer.user.pk}" if buyer.user else f"email:{buyer.email.lower()}"
    counting.unique(show.pk, "reserved", who, at=at)
    if pay:
        checkout.order_pay(order=order, buyer=buyer, method="test")
    order.refresh_from_db()
    return order


def _guest(email: str) -> checkout.Buyer:
    return checkout.Buyer(user=None, session_key=uuid.uuid4().hex, email=email)


def _account(user) -> checkout.Buyer:
    return checkout.Buyer(user=user, session_key="", email=user.email)


@pytest.fixture
def scripted(counter, clock, stripe_settings, berlin, products, host, make_user):
    """Three ended shows of the brand, all played through:

    - the earlier show (Monday a week before, 19:00 Berlin): Olga and the
      guest Dora (``Dora@Example.test``) watch and buy a mic each;
    - a quiet show (Wednesday 11:00 Berlin) nobody watched;
    - the show (Monday 19:00 Berlin, 18:00:15 to 18:04:10 UTC), minute by
      minute below: five people watch (A Vera, B Olga, C the guest Cleo,
      D the guest Dora now as ``dora@example.TEST``, E a guest who only
      watches); Vera buys two mics and is refunded €50.00 in part, Olga and
      Dora a pair of headphones each, Cleo's mic is reserved and never paid.
    """
    headphones, mic = products[0], products[1]
    vera, olga = make_user("Vera"), make_user("Olga")

    earlier = _start(_new_show(berlin, "spring-sale", [mic]), EARLIER + 5)
    _pin(earlier, host, mic, EARLIER + 10)
    for who in (f"user:{olga.pk}", "email:dora@example.test"):
        counting.unique(earlier.pk, "viewers", who, at=EARLIER + 20)
    counting.peak(earlier.pk, "viewers", 2, at=EARLIER + 20)
    _buy(clock, earlier, EARLIER + 30, _account(olga), mic, 1, pay=True)
    _buy(clock, earlier, EARLIER + 40, _guest("Dora@Example.test"), mic, 1, pay=True)
    _end(earlier, EARLIER + 100)

    quiet = _end(_start(_new_show(berlin, "quiet-hour", [mic]), QUIET), QUIET + 600)

    show = _start(_new_show(berlin, "winter-launch", [headphones, mic]), T0 + 15)
    m = [T0 + 60 * i for i in range(5)]
    people = {
        "A": f"user:{vera.pk}",
        "B": f"user:{olga.pk}",
        "C": "session:cleo",
        "D": "email:dora@example.test",
        "E": "session:eve",
    }
    present = {0: "AB", 1: "ABC", 2: "ABCD", 3: "ADE", 4: "A"}
    watch = {0: 120, 1: 180, 2: 200, 3: 150, 4: 10}
    for minute, who in present.items():
        for person in who:
            counting.unique(show.pk, "viewers", people[person], at=m[minute] + 1)
        counting.peak(show.pk, "viewers", len(who), at=m[minute] + 2)
        counting.add(show.pk, "watch_seconds", watch[minute], at=m[minute] + 59)
    for person in "ABCD":
        counting.unique(show.pk, "saw_card", people[person], at=m[2] + 6)
        counting.unique(show.pk, "tapped_buy", people[person], at=m[2] + 7)
    counting.add(show.pk, "chat", 2, at=m[0] + 30)
    counting.add(show.pk, "chat", 1, at=m[2] + 30)
    counting.add(show.pk, "reactions", 5, at=m[1] + 40)
    counting.add(show.pk, "questions", 1, at=m[1] + 45)
    _pin(show, host, mic, m[1] + 5)
    counting.add(show.pk, "impressions", 3, products={mic.pk: 3}, at=m[1] + 5)
    for at, product in ((m[1] + 20, mic), (m[1] + 25, mic), (m[2] + 30, mic)):
        counting.add(show.pk, "buy_taps", products={product.pk: 1}, at=at)
    counting.add(show.pk, "sheet_opens", products={mic.pk: 1}, at=m[1] + 21)
    _pin(show, host, headphones, m[2] + 5)
    counting.add(show.pk, "impressions", 4, products={headphones.pk: 4}, at=m[2] + 5)
    counting.add(show.pk, "buy_taps", products={headphones.pk: 1}, at=m[2] + 40)
    counting.add(show.pk, "sheet_opens", products={headphones.pk: 1}, at=m[2] + 41)

    vera_order = _buy(clock, show, m[1] + 30, _account(vera), mic, 2, pay=True)
    _buy(clock, show, m[2] + 20, _account(olga), headphones, 1, pay=True)
    _buy(clock, show, m[2] + 50, _guest("cleo@example.test"), mic, 1, pay=False)
    _buy(clock, show, m[3] + 10, _guest("dora@example.TEST"), headphones, 1, pay=True)
    clock["now"] = m[3] + 40
    checkout.order_refund(order=vera_order, amount_minor=5000)
    show = _end(show, m[4] + 10)

    clock["now"] = m[4] + 300
    counter.flush()
    assert counting.rollup(now=m[4] + 300) > 0
    return types.SimpleNamespace(
        show=show, earlier=earlier, quiet=quiet, mic=mic, headphones=headphones
    )


def _csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_a_scripted_show_gives_exact_figures_once_however_often_rolled_up(
    client, scripted, owner, brand
):
    """Every figure of the report, the funnel with its drop-offs, retention
    per minute, products, new and returning buyers and the CSV files; a
    second rollup writes the same rows and changes nothing."""
    show, mic, headphones = scripted.show, scripted.mic, scripted.headphones

    def read() -> reports.ShowReport:
        return reports.show_report(user=owner, brand=brand, slug=show.slug)

    report = read()
    fig = report.figures
    assert report.live is False
    assert report.duration_seconds == 4 * 60 - 5
    assert fig == reports.Figures(
        unique_viewers=5,
        peak_viewers=4,
        watch_seconds=660,
        average_watch_seconds=132,
        chat=3,
        reactions=5,
        questions=1,
        buy_taps=4,
        sheet_opens=2,
        holds=4,
        orders_paid=3,
        buyers=3,
        refunds=1,
        revenue={"EUR": 2 * 8900 + 2 * 14900},
        refunded={"EUR": 5000},
        net_revenue={"EUR": 2 * 8900 + 2 * 14900 - 5000},
        conversion=3 / 5,
    )
    assert [(s.metric, s.count, s.dropped) for s in report.funnel] == [
        ("u.viewers", 5, None),
        ("u.saw_card", 4, 1),
        ("u.tapped_buy", 4, 0),
        ("u.reserved", 4, 0),
        ("u.buyers", 3, 1),
    ]
    assert [s.share for s in report.funnel] == [1.0, 0.8, 0.8, 0.8, 0.6]
    assert [s.dropped_share for s in report.funnel] == [None, 0.2, 0.0, 0.0, 0.25]
    assert [
        (m.at.strftime("%H:%M"), m.viewers, m.present, m.retention, m.orders_paid)
        for m in report.minutes
    ] == [
        ("18:00", 2, 2, 0.4, 0),
        ("18:01", 3, 3, 0.6, 1),
        ("18:02", 4, 4, 0.8, 1),
        ("18:03", 3, 3, 0.6, 1),
        ("18:04", 1, 1, 0.2, 0),
    ]
    assert [(at.strftime("%H:%M:%S"), name) for at, name in report.pins] == [
        ("18:01:05", "Desk Mic"),
        ("18:02:05", "Studio Headphones"),
    ]
    assert report.products == [
        reports.ProductRow(
            headphones.pk, "Studio Headphones", 4, 1, 2, 2, {"EUR": 29800}
        ),
        reports.ProductRow(mic.pk, "Desk Mic", 3, 3, 2, 2, {"EUR": 17800}),
    ]
    # Olga bought in the earlier show, Dora too (as Dora@Example.test).
    assert (report.buyers_new, report.buyers_returning) == (1, 2)

    client.force_login(owner)
    page = client.get(f"/brand/{brand.slug}/shows/{show.slug}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in (
        "<dt>Unique viewers</dt><dd>5</dd>",
        "<dt>Peak viewers</dt><dd>4</dd>",
        "<dt>Total watch time</dt><dd>11:00</dd>",
        "<dt>Average watch time</dt><dd>2:12</dd>",
        "<dt>Duration</dt><dd>3:55</dd>",
        "<dt>Revenue</dt><dd>€476.00</dd>",
        "<dt>Refunded</dt><dd>€50.00</dd>",
        "<dt>Revenue net of refunds</dt><dd>€426.00</dd>",
        "<dt>Conversion (buyers per unique viewer)</dt><dd>60.0%</dd>",
        "<dt>New buyers</dt><dd>1</dd>",
        "<dt>Returning buyers</dt><dd>2</dd>",
        '<td class="num">80.0%</td>',
        "people present in the minute ÷ unique viewers of the whole show",
    ):
        assert text in html, text

    base = f"/brand/{brand.slug}/shows/{show.slug}/report/"
    minutes_csv = _csv_rows(client.get(base + "minutes.csv"))
    assert minutes_csv == [
        reports.MINUTE_COLUMNS,
        ["2026-11-02T18:00:00+00:00", "2", "2", "0.4000", "0"],
        ["2026-11-02T18:01:00+00:00", "3", "3", "0.6000", "1"],
        ["2026-11-02T18:02:00+00:00", "4", "4", "0.8000", "1"],
        ["2026-11-02T18:03:00+00:00", "3", "3", "0.6000", "1"],
        ["2026-11-02T18:04:00+00:00", "1", "1", "0.2000", "0"],
    ]
    assert _csv_rows(client.get(base + "funnel.csv")) == [
        reports.FUNNEL_COLUMNS,
        ["1", "u.viewers", "5", "1.0000", "", ""],
        ["2", "u.saw_card", "4", "0.8000", "1", "0.2000"],
        ["3", "u.tapped_buy", "4", "0.8000", "0", "0.0000"],
        ["4", "u.reserved", "4", "0.8000", "0", "0.0000"],
        ["5", "u.buyers", "3", "0.6000", "1", "0.2500"],
    ]
    assert _csv_rows(client.get(base + "products.csv")) == [
        reports.PRODUCT_COLUMNS,
        [str(headphones.pk), "Studio Headphones", "4", "1", "2", "2", "EUR", "29800"],
        [str(mic.pk), "Desk Mic", "3", "3", "2", "2", "EUR", "17800"],
    ]
    assert client.get(base + "nothing.csv").status_code == 404

    rows = ShowMinuteCount.objects.count(), ShowTotalCount.objects.count()
    assert counting.rollup(now=T0 + 600) == 0  # nothing new to write
    for minute in range(5):  # every minute claimed again: the same rows
        counting.get_store().unclaim(show.pk, counting.minute_of(T0) + minute)
    assert counting.rollup(now=T0 + 600) == 5
    assert (ShowMinuteCount.objects.count(), ShowTotalCount.objects.count()) == rows
    assert read() == report


def test_the_brand_overview_and_the_best_time_to_go_live(
    client, scripted, owner, brand
):
    """One row per ended show, newest first, in the brand's time zone; the
    grid of weekday and hour averages per show and says how many shows each
    cell rests on; the CSV has the same rows."""
    overview = reports.brand_report(user=owner, brand=brand)
    assert overview.time_zone == "Europe/Berlin"
    assert [
        (
            r.show.slug,
            r.local_start.strftime("%a %H:%M") if r.local_start else None,
            r.duration_seconds,
            r.unique_viewers,
            r.peak_viewers,
            r.orders_paid,
            r.revenue,
            r.conversion,
        )
        for r in overview.rows
    ] == [
        ("winter-launch", "Mon 19:00", 235, 5, 4, 3, {"EUR": 47600}, 0.6),
        ("quiet-hour", "Wed 11:00", 600, 0, 0, 0, {}, None),
        ("spring-sale", "Mon 19:00", 95, 2, 2, 2, {"EUR": 17800}, 1.0),
    ]
    assert overview.hours == list(range(11, 20))
    monday_evening = overview.heatmap[-1][0]
    assert (monday_evening.shows, monday_evening.average_viewers) == (2, 3.5)
    assert monday_evening.average_conversion == pytest.approx(0.8)
    wednesday_morning = overview.heatmap[0][2]
    assert (wednesday_morning.shows, wednesday_morning.average_viewers) == (1, 0.0)
    assert wednesday_morning.average_conversion is None
    assert sum(c.shows for row in overview.heatmap for c in row) == 3

    client.force_login(owner)
    html = client.get(f"/brand/{brand.slug}/reports/").content.decode()
    assert "3.5 viewers" in html
    assert "80.0% conversion" in html
    assert "2 shows" in html
    assert html.count("No show") == 9 * 7 - 2
    assert f'href="/brand/{brand.slug}/shows/winter-launch/report/"' in html
    assert _csv_rows(client.get(f"/brand/{brand.slug}/reports/shows.csv")) == [
        reports.SHOW_COLUMNS,
        [
            "winter-launch",
            "Winter Launch",
            "2026-11-02T19:00:15+01:00",
            "Europe/Berlin",
            "235",
            "5",
            "4",
            "3",
            "3",
            "0.6000",
            "EUR",
            "47600",
        ],
        [
            "quiet-hour",
            "Quiet Hour",
            "2026-10-28T11:00:00+01:00",
            "Europe/Berlin",
            "600",
            "0",
            "0",
            "0",
            "0",
            "",
            "",
            "0",
        ],
        [
            "spring-sale",
            "Spring Sale",
            "2026-10-26T19:00:05+01:00",
            "Europe/Berlin",
            "95",
            "2",
            "2",
            "2",
            "2",
            "1.0000",
            "EUR",
            "17800",
        ],
    ]
    home = client.get(f"/brand/{brand.slug}/").content.decode()
    assert f'href="/brand/{brand.slug}/reports/"' in home
    assert f'href="/brand/{brand.slug}/shows/spring-sale/report/"' in home


# --- Who may read -------------------------------------------------------------


@pytest.fixture
def ended_show(brand, products):
    show = _new_show(brand, "autumn-drop", products[:1])
    return _end(_start(show, T0), T0 + 600)


def test_owners_hosts_and_moderators_read_reports_and_nobody_else(
    client, ended_show, brand, owner, host, moderator, make_user
):
    """The brand's staff get the pages and files; a viewer and another
    brand's owner get the workspace's 404; signed out, the login page."""
    urls = [
        f"/brand/{brand.slug}/reports/",
        f"/brand/{brand.slug}/reports/shows.csv",
        f"/brand/{brand.slug}/shows/{ended_show.slug}/report/",
        f"/brand/{brand.slug}/shows/{ended_show.slug}/report/minutes.csv",
        f"/brand/{brand.slug}/shows/{ended_show.slug}/report/funnel.csv",
        f"/brand/{brand.slug}/shows/{ended_show.slug}/report/products.csv",
    ]
    for url in urls:
        assert client.get(url).status_code == 302
    for staff in (owner, host, moderator):
        client.force_login(staff)
        for url in urls:
            assert client.get(url).status_code == 200, (staff, url)
    other = services.brand_create(name="Other Co", slug="other-co")
    other_owner = make_user("Oscar Other")
    services.membership_set(brand=other, user=other_owner, role="owner")
    for outsider in (make_user("Vera Viewer"), other_owner):
        client.force_login(outsider)
        for url in urls:
            assert client.get(url).status_code == 404, url
    # Another brand's show through one's own brand: not found either.
    client.force_login(other_owner)
    assert (
        client.get(f"/brand/other-co/shows/{ended_show.slug}/report/").status_code
        == 404
    )
    with pytest.raises(NotAMember):
        reports.show_report(user=other_owner, brand=brand, slug=ended_show.slug)


def test_a_live_show_links_to_the_studio_and_shows_figures_so_far(
    client, counter, brand, host, products
):
    show = _start(_new_show(brand, "on-air", products[:1]), T0)
    counting.add(show.pk, "chat", 7, at=T0 + 10)
    counter.flush()
    counting.rollup(now=T0 + 120)
    client.force_login(host)
    html = client.get(f"/brand/{brand.slug}/shows/on-air/report/").content.decode()
    assert "This show is still live" in html
    assert 'href="/shows/on-air/studio/"' in html
    assert "<dt>Chat messages</dt><dd>7</dd>" in html


def test_the_csv_files_do_not_run_formulas(client, counter, brand, host):
    """A product or a show titled like a formula is written as text."""
    product = services.product_create(brand=brand, name='=HYPERLINK("http://x")')
    services.variant_create(
        product=product,
        sku="F-1",
        name="Standard",
        price_minor=100,
        currency="EUR",
        stock_available=1,
    )
    show = services.show_create(
        brand=brand,
        slug="formula",
        title="+SUM(A1:A9)",
        scheduled_at=_at(T0 + 86400 * 30),
        products=[product],
    )
    _end(_start(show, T0), T0 + 60)
    client.force_login(host)
    products_csv = _csv_rows(
        client.get(f"/brand/{brand.slug}/shows/formula/report/products.csv")
    )
    assert products_csv[1][1] == '\'=HYPERLINK("http://x")'
    shows_csv = _csv_rows(client.get(f"/brand/{brand.slug}/reports/shows.csv"))
    assert shows_csv[1][1] == "'+SUM(A1:A9)"


def test_reports_are_empty_but_fine_before_anything_was_counted(
    client, brand, owner, ended_show
):
    client.force_login(owner)
    html = client.get(f"/brand/{brand.slug}/shows/autumn-drop/report/").content.decode()
    assert "<dt>Conversion (buyers per unique viewer)</dt><dd>\u2013</dd>" in html
    report = reports.show_report(user=owner, brand=brand, slug="autumn-drop")
    assert [m.retention for m in report.minutes] == [None] * 11
    assert all(step.share is None for step in report.funnel)
    overview = client.get(f"/brand/{brand.slug}/reports/").content.decode()
    assert "Best time to go live" in overview


def test_a_step_counting_more_than_the_one_before_has_no_drop_off(
    brand, owner, ended_show
):
    """Buy taps need the viewer page's beacon: until it sends them, more
    people reserve than tapped Buy, and that step tells no drop-off."""
    for metric, value in (
        ("u.viewers", 3),
        ("u.saw_card", 2),
        ("u.tapped_buy", 0),
        ("u.reserved", 1),
        ("u.buyers", 1),
    ):
        ShowTotalCount.objects.create(show_id=ended_show.pk, metric=metric, value=value)
    report = reports.show_report(user=owner, brand=brand, slug=ended_show.slug)
    assert [(s.count, s.dropped, s.dropped_share) for s in report.funnel] == [
        (3, None, None),
        (2, 1, pytest.approx(1 / 3)),
        (0, 2, 1.0),
        (1, None, None),
        (1, 0, 0.0),
    ]


def test_a_late_payment_counts_in_the_figures_not_in_the_minutes(
    brand, owner, products
):
    show = _end(_start(_new_show(brand, "short", products[:1]), T0 + 5), T0 + 70)
    late = _at(T0 + 3 * 86400)
    ShowMinuteCount.objects.create(
        show_id=show.pk, minute=late, metric="orders_paid", value=1
    )
    report = reports.show_report(user=owner, brand=brand, slug="short")
    assert report.figures.orders_paid == 1
    assert [m.at for m in report.minutes] == [_at(T0), _at(T0 + 60)]


def test_the_workspace_without_ended_shows_says_so(client, brand, owner):
    client.force_login(owner)
    html = client.get(f"/brand/{brand.slug}/reports/").content.decode()
    assert "No show has ended yet" in html


def test_the_overview_counts_only_ended_shows(client, brand, owner, products):
    _start(_new_show(brand, "still-live", products[:1]), T0)
    overview = reports.brand_report(user=owner, brand=brand)
    assert overview.rows == []
    assert overview.heatmap == []


def test_the_report_says_where_the_audience_came_from(
    client, counter, brand, owner, host, products
):
    """Visits of the show page by source (a share link, a campaign, another
    site, direct) and the paid order that followed, in the report's table
    and its CSV file."""
    from django.test import Client

    from checkout.models import Order
    from shows.services import sharing

    show = _start(_new_show(brand, "sources-night", products), T0)
    link = sharing.share_link_get(show=show, user=host)
    visits = [
        f"?via={link.code}&ch=whatsapp",
        f"?via={link.code}&ch=whatsapp",
        "?utm_source=news&utm_medium=email&utm_campaign=launch",
        "",
    ]
    buyer = Client()
    for query in visits:
        assert buyer.get(f"/shows/{show.slug}/{query}").status_code == 200
    assert (
        Client()
        .get(f"/shows/{show.slug}/", HTTP_REFERER="https://blog.example.test/post")
        .status_code
        == 200
    )
    Order.objects.create(
        show=show,
        brand=brand,
        email="w@example.test",
        total_minor=8900,
        currency="EUR",
        idempotency_key="sources-1",
        source="share.whatsapp",
        share_link=link,
        status="paid",
        paid_at=_at(T0 + 60),
    )
    counting.flush()
    _end(show, T0 + 300)
    client.force_login(owner)
    base = f"/brand/{brand.slug}/shows/{show.slug}/report/"
    html = client.get(base).content.decode()
    assert "Where the audience came from" in html
    rows = [" ".join(row.split()) for row in html.split('<tr data-kind="')[1:]]
    # Most visits first, then most orders, then by key.
    assert [row.split('"')[0] for row in rows] == [
        "share",
        "direct",
        "referrer",
        "campaign",
    ]
    assert 'Shared on WhatsApp</th><td class="num">2</td>' in rows[0]
    assert "€89.00" in rows[0]
    assert _csv_rows(client.get(base + "sources.csv")) == [
        reports.SOURCE_COLUMNS,
        [
            "share.whatsapp",
            "share",
            "Shared on WhatsApp",
            "2",
            "0",
            "0",
            "1",
            "EUR",
            "8900",
        ],
        [
            "direct",
            "direct",
            "Direct (typed, bookmarked or unknown)",
            "1",
            "0",
            "0",
            "0",
            "",
            "0",
        ],
        [
            "ref.blog.example.test",
            "referrer",
            "Link on blog.example.test",
            "1",
            "0",
            "0",
            "0",
            "",
            "0",
        ],
        [
            "utm.news.email.launch",
            "campaign",
            "Campaign “launch” (news, email)",
            "1",
            "0",
            "0",
            "0",
            "",
            "0",
        ],
    ]
