"""Share links and attribution (shows/attribution.py): a visit's source by
kind, the cookie's last touch, the bound on a show's source keys, a reminder,
a sign-up and an order attributed, the brand's traffic sources exact, forged
codes and cookies ignored."""

from __future__ import annotations

import contextlib
import html
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from checkout.models import Order
from checkout.traffic import traffic_sources
from realtime import counting
from realtime.models import ShowMinuteCount
from shows import attribution
from shows.models import Reminder, ShareLink
from shows.services import room, sharing

pytestmark = pytest.mark.django_db


@pytest.fixture
def counter(settings: Any, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Any:
    """A fresh counter, its Redis keys (and the bound's sets) under a prefix
    of this test's own, removed afterwards."""
    settings.REDIS_PREFIX = f"{settings.REDIS_PREFIX}:share:{secrets.token_hex(4)}"
    fresh = counting.Counter()
    monkeypatch.setattr(counting, "_counter", fresh)
    monkeypatch.setattr(attribution, "_known", attribution._Known())
    yield fresh
    fresh.stop()
    import redis

    client = redis.Redis.from_url(redis_url)
    with contextlib.suppress(redis.ConnectionError):
        keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def totals(show_id: int) -> dict[str, int]:
    counting.flush()
    return counting.totals(show_id)


def sources(show_id: int) -> dict[str, int]:
    return {
        metric.removeprefix("src."): value
        for metric, value in totals(show_id).items()
        if metric.startswith("src.")
    }


def cookie(client: Client, show_id: int) -> str | None:
    morsel = client.cookies.get(f"{attribution.COOKIE_PREFIX}{show_id}")
    return morsel.value if morsel is not None else None


def page(client: Client, show: Any, query: str = "", **headers: str) -> Any:
    answer = client.get(f"/shows/{show.slug}/{query}", **headers)
    assert answer.status_code == 200
    return answer


def test_a_share_link_visit_counts_under_its_channel_and_keeps_the_code(counter, show):
    """``?via=<code>&ch=whatsapp`` counts a visit under ``share.whatsapp``;
    the cookie keeps the key and code, signed, HttpOnly, SameSite=Lax, 7 days."""
    link = sharing.share_link_get(show=show, user=None)
    client = Client()
    answer = page(client, show, f"?via={link.code}&ch=whatsapp")
    assert sources(show.pk) == {"share.whatsapp": 1}
    assert totals(show.pk)["visits"] == 1
    morsel = answer.cookies[f"{attribution.COOKIE_PREFIX}{show.pk}"]
    assert morsel.value.startswith(f"share.whatsapp|{link.code}:")
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"
    assert morsel["max-age"] == 7 * 86400


@pytest.mark.parametrize(
    ("query", "headers", "key"),
    [
        (
            "?utm_source=Newsletter&utm_medium=e-mail&utm_campaign=Spring Sale!",
            {},
            "utm.newsletter.e-mail.spring-sale",
        ),
        ("?utm_campaign=launch", {}, "utm.-.-.launch"),
        ("", {"HTTP_REFERER": "https://www.Example.org/post?id=1"}, "ref.example.org"),
        ("", {"HTTP_REFERER": "http://testserver/"}, "direct"),
        ("", {}, "direct"),
        ("?via=forged-code&ch=whatsapp", {}, "direct"),
        ("?ch=whatsapp", {}, "direct"),
    ],
)
def test_each_kind_of_visit_gets_its_source_key(counter, show, query, headers, key):
    """Campaign parameters, another site's link, our own pages, nothing, and a
    share code that is not this show's (forged) each count as they should."""
    page(Client(), show, query, **headers)
    assert sources(show.pk) == {key: 1}


def test_an_embedded_visit_is_counted_for_its_host(counter, show, rf):
    """A request the embed marked (``embed_host``) counts under
    ``embed.<host>``, whatever its Referer, and later steps take it first."""
    from django.http import HttpResponse

    request = rf.get(f"/shows/{show.slug}/", HTTP_REFERER="https://elsewhere.test/")
    request.embed_host = "shop.brand.test:8443"
    response = HttpResponse()
    attribution.note_visit(request, response, show)
    assert sources(show.pk) == {"embed.shop.brand.test": 1}
    assert attribution.source_for(request, show) == "embed.shop.brand.test"


def test_the_last_non_direct_touch_wins(counter, show):
    """A campaign visit, then a direct one (the cookie stays), then a link on
    another site (it replaces the campaign)."""
    client = Client()
    page(client, show, "?utm_source=ig&utm_medium=social&utm_campaign=teaser")
    page(client, show)
    assert cookie(client, show.pk).startswith("utm.ig.social.teaser:")
    page(client, show, HTTP_REFERER="https://news.example.com/a")
    assert cookie(client, show.pk).startswith("ref.news.example.com:")
    assert sources(show.pk) == {
        "utm.ig.social.teaser": 1,
        "direct": 1,
        "ref.news.example.com": 1,
    }


def test_do_not_track_is_counted_but_gets_no_cookie(counter, show):
    client = Client()
    page(client, show, "?utm_source=ig", HTTP_SEC_GPC="1")
    assert cookie(client, show.pk) is None
    assert sources(show.pk) == {"utm.ig.-.-": 1}


def test_a_flood_of_referrers_adds_at_most_the_bound_of_keys(
    counter, show, monkeypatch
):
    """Past ``SOURCES_PER_SHOW`` distinct keys, new ones count as ``other``;
    known ones and share channels still count under their own key."""
    monkeypatch.setattr(attribution, "SOURCES_PER_SHOW", 3)
    link = sharing.share_link_get(show=show, user=None)
    client = Client()
    for n in range(6):
        page(client, show, HTTP_REFERER=f"https://spam{n}.test/")
    page(client, show, HTTP_REFERER="https://spam1.test/again")
    page(client, show, f"?via={link.code}&ch=email")
    # A second process (nothing known locally) sees the same bound.
    monkeypatch.setattr(attribution, "_known", attribution._Known())
    page(client, show, HTTP_REFERER="https://spam9.test/")
    page(client, show, HTTP_REFERER="https://spam2.test/")
    assert sources(show.pk) == {
        "ref.spam0.test": 1,
        "ref.spam1.test": 2,
        "ref.spam2.test": 2,
        "other": 4,
        "share.email": 1,
    }


def test_source_keys_are_safe_and_short(counter, show):
    """Odd characters become ``-``; a long domain keeps its end; every metric
    fits the store's 64 characters."""
    long_host = "a" * 80 + ".example.com"
    key = attribution.referrer_key(long_host)
    assert attribution.valid_key(key)
    assert key.endswith(".example.com")
    assert len(f"signups.{key}") <= 64
    key = attribution.campaign_key("x" * 99, "<script>", "é" * 40)
    assert attribution.valid_key(key)
    assert key.startswith("utm." + "x" * 16 + ".script.")


def test_a_forged_or_altered_cookie_is_ignored(counter, show):
    client = Client()
    page(client, show, "?utm_source=ig")
    value = cookie(client, show.pk)
    assert value
    name = f"{attribution.COOKIE_PREFIX}{show.pk}"
    client.cookies[name] = value.replace("utm.ig", "utm.fb", 1)
    request = client.get(f"/shows/{show.slug}/").wsgi_request
    assert attribution.source_for(request, show) == "direct"
    # Nor does a good cookie of another show count here.
    client.cookies[f"{attribution.COOKIE_PREFIX}{show.pk + 1}"] = value
    del client.cookies[name]
    request = client.get(f"/shows/{show.slug}/").wsgi_request
    assert attribution.source_for(request, show) == "direct"


def test_the_share_button_links_carry_the_viewers_own_code(client, show, make_user):
    """A signed-in viewer gets their own link (one per show, however often
    they open it); guests share the show's one link; nobody's name or id is
    in it."""
    viewer = make_user("Sam Sharer")
    client.force_login(viewer)
    first = page(client, show).content.decode()
    page(client, show)
    mine = ShareLink.objects.get(show=show, sharer=viewer)
    assert f"via={mine.code}&amp;ch=copy" in first
    assert "wa.me/?text=" in first
    # 11 random URL-safe characters; the link has nothing else of the viewer.
    assert len(mine.code) == 11
    copied = re.search(r'data-url-copy="([^"]+)"', first)
    assert copied is not None
    query = parse_qs(urlsplit(html.unescape(copied.group(1))).query)
    assert query == {"via": [mine.code], "ch": ["copy"]}
    assert mine.code != sharing.share_link_get(show=show, user=make_user()).code
    assert ShareLink.objects.filter(show=show, sharer=viewer).count() == 1
    guest = page(Client(), show).content.decode()
    guests = ShareLink.objects.get(show=show, sharer=None)
    assert f"via={guests.code}" in guest
    assert mine.code not in guest


def test_a_reminder_keeps_its_source(counter, show, make_user):
    viewer = make_user()
    client = Client()
    client.force_login(viewer)
    link = sharing.share_link_get(show=show, user=None)
    page(client, show, f"?via={link.code}&ch=telegram")
    answer = client.post(f"/shows/{show.slug}/remind/")
    assert answer.status_code == 302
    assert Reminder.objects.get(show=show, user=viewer).source == "share.telegram"


def test_a_sign_up_counts_for_the_source_of_each_show_visited(counter, show, brand):
    from shows import services

    other = services.show_create(
        brand=brand, slug="other", title="Other", scheduled_at=timezone.now()
    )
    client = Client()
    page(client, show, "?utm_source=ig")
    page(client, other, HTTP_REFERER="https://blog.test/")
    answer = client.post(
        "/signup/",
        {
            "email": "new@example.test",
            "display_name": "New",
            "password": "a-long-password-42",
        },
    )
    assert answer.status_code == 302, answer.content
    assert totals(show.pk)["signups.utm.ig.-.-"] == 1
    assert totals(other.pk)["signups.ref.blog.test"] == 1


def _buy(client: Client, show: Any, variant: Any) -> Order:
    token = secrets.token_hex(16)
    client.cookies["csrftoken"] = token
    answer = client.post(
        f"/api/shows/{show.slug}/orders",
        data=json.dumps(
            {"variant_id": variant.pk, "quantity": 1, "email": "g@example.test"}
        ),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_IDEMPOTENCY_KEY=secrets.token_hex(16),
    )
    assert answer.status_code == 201, answer.content
    return Order.objects.get(public_id=answer.json()["id"])


@pytest.mark.django_db(transaction=True)
def test_an_order_through_a_share_link_is_attributed_to_it(
    counter, stripe_settings, live_show, host, products, make_user, settings
):
    """A guest who came through a viewer's WhatsApp link buys: the order keeps
    ``share.whatsapp`` and the link; another guest's order is ``direct``."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    mic = products[1].variants.get()
    link = sharing.share_link_get(show=live_show, user=make_user())
    client = Client(enforce_csrf_checks=True)
    page(client, live_show, f"?via={link.code}&ch=whatsapp")
    order = _buy(client, live_show, mic)
    assert (order.source, order.share_link_id) == ("share.whatsapp", link.pk)
    order = _buy(Client(enforce_csrf_checks=True), live_show, mic)
    assert (order.source, order.share_link_id) == ("direct", None)


def _order(show: Any, source: str, total: int, currency: str, paid: bool) -> None:
    Order.objects.create(
        show=show,
        email="x@example.test",
        total_minor=total,
        currency=currency,
        idempotency_key=secrets.token_hex(8),
        source=source,
        status="paid" if paid else "reserved",
        paid_at=timezone.now() if paid else None,
    )


def test_traffic_sources_add_up_exactly(counter, show, make_user):
    """Visits and sign-ups from the counts; confirmed reminders, paid orders
    and their revenue per currency from the database; most visits first."""
    link = sharing.share_link_get(show=show, user=None)
    for _n in range(3):
        page(Client(), show, f"?via={link.code}&ch=copy")
    page(Client(), show, "?utm_source=ig&utm_medium=social&utm_campaign=x")
    page(Client(), show)
    page(Client(), show)
    counting.add(show.pk, "signups.share.copy")
    Reminder.objects.create(
        show=show, user=make_user(), source="share.copy", confirmed_at=timezone.now()
    )
    Reminder.objects.create(show=show, email="u@example.test", source="share.copy")
    Reminder.objects.create(show=show, user=make_user(), confirmed_at=timezone.now())
    _order(show, "share.copy", 1000, "EUR", paid=True)
    _order(show, "share.copy", 250, "EUR", paid=True)
    _order(show, "share.copy", 700, "GBP", paid=True)
    _order(show, "share.copy", 9999, "EUR", paid=False)
    _order(show, "ref.gone.test", 500, "EUR", paid=True)
    counting.flush()
    found = traffic_sources(show)
    assert [(s.key, s.kind) for s in found] == [
        ("share.copy", "share"),
        ("direct", "direct"),
        ("utm.ig.social.x", "campaign"),
        ("ref.gone.test", "referrer"),
    ]
    share, direct, campaign, gone = found
    assert (share.visits, share.signups, share.reminders, share.orders) == (3, 1, 1, 3)
    assert share.revenue == {"EUR": 1250, "GBP": 700}
    assert (direct.visits, direct.reminders, direct.orders) == (2, 1, 0)
    assert (campaign.visits, campaign.orders, campaign.revenue) == (1, 0, {})
    assert (gone.visits, gone.orders, gone.revenue) == (0, 1, {"EUR": 500})
    assert share.label == "Shared link (copied)"
    assert gone.label == "Link on gone.test"


def test_an_ended_shows_sources_are_read_from_the_rolled_up_minutes(counter, live_show):
    """Once the show ended and its minutes are in PostgreSQL, the visits are
    their sum (the store may have expired)."""
    from shows import services

    services.show_end(show=live_show)
    live_show.refresh_from_db()
    for minute, value in ((1, 4), (2, 3)):
        ShowMinuteCount.objects.create(
            show_id=live_show.pk,
            minute=datetime(2026, 1, 1, 10, minute, tzinfo=UTC),
            metric="src.ref.blog.test",
            value=value,
        )
    found = traffic_sources(live_show)
    assert [(s.key, s.visits) for s in found] == [("ref.blog.test", 7)]


@pytest.mark.django_db(transaction=True)
def test_a_bag_checked_out_after_a_campaign_visit_keeps_the_campaign(
    counter, stripe_settings, live_show, products, settings
):
    """The bag's order takes the source at checkout (the last touch by then)."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    client = Client(enforce_csrf_checks=True)
    token = secrets.token_hex(16)
    client.cookies["csrftoken"] = token
    page(client, live_show, "?utm_source=mail&utm_medium=email&utm_campaign=vip")
    phones = products[0].variants.get()
    added = client.put(
        f"/api/shows/{live_show.slug}/bag/lines/{phones.pk}",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert added.status_code == 200, added.content
    placed = client.post(
        f"/api/shows/{live_show.slug}/bag/checkout",
        data=json.dumps({"email": "bag@example.test"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert placed.status_code == 201, placed.content
    order = Order.objects.get(public_id=placed.json()["id"])
    assert (order.source, order.share_link_id) == ("utm.mail.email.vip", None)


def test_a_guests_reminder_keeps_its_source(counter, show, settings):
    """A guest's reminder, asked for by email, keeps where they came from."""
    client = Client()
    page(client, show, HTTP_REFERER="https://forum.test/thread/9")
    answer = client.post(
        f"/shows/{show.slug}/remind/", {"email": f"{secrets.token_hex(4)}@ex.test"}
    )
    assert answer.status_code == 302
    assert Reminder.objects.get(show=show).source == "ref.forum.test"


def test_without_an_answer_from_redis_new_keys_count_as_other(
    counter, show, monkeypatch
):
    """The page is still served; a key not known here counts as ``other``,
    one this process already knows keeps its name."""
    from realtime import redis as rclient

    page(Client(), show, HTTP_REFERER="https://known.test/")
    with monkeypatch.context() as patched:
        patched.setattr(rclient, "is_down", lambda: True)
        page(Client(), show, HTTP_REFERER="https://known.test/")
        page(Client(), show, HTTP_REFERER="https://new.test/")
    assert sources(show.pk) == {"ref.known.test": 2, "other": 1}


def test_without_redis_the_bound_is_kept_in_this_process(
    counter, show, monkeypatch, settings
):
    """The embedded demo (no Redis) bounds a show's keys the same way."""
    settings.REDIS_URL = ""
    monkeypatch.setattr(counting, "_memory_store", counting.MemoryStore())
    monkeypatch.setattr(attribution, "SOURCES_PER_SHOW", 2)
    for n in (1, 2, 3, 1):
        page(Client(), show, HTTP_REFERER=f"https://site{n}.test/")
    assert sources(show.pk) == {"ref.site1.test": 2, "ref.site2.test": 1, "other": 1}


@pytest.mark.parametrize(
    "agent",
    [
        "WhatsApp/2.23.20.0 A",
        "TelegramBot (like TwitterBot)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ],
)
def test_a_link_preview_or_crawler_is_not_a_visit(counter, show, agent):
    """The messenger fetching a shared link to draw its card counts nothing
    and gets no cookie; a browser's visit after it counts."""
    link = sharing.share_link_get(show=show, user=None)
    client = Client(HTTP_USER_AGENT=agent)
    page(client, show, f"?via={link.code}&ch=whatsapp")
    assert cookie(client, show.pk) is None
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Chrome/131")
    page(browser, show, f"?via={link.code}&ch=whatsapp")
    assert sources(show.pk) == {"share.whatsapp": 1}
    assert totals(show.pk)["visits"] == 1


def test_visits_are_the_store_while_it_is_ahead_and_the_minutes_once_it_expired(
    counter, show, monkeypatch
):
    """A show to come, shared early: the minutes rolled up (4 visits); the
    store's total, while it lives, is ahead (6); once it expired and counts
    again from zero (1), the minutes win."""
    at = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    ShowMinuteCount.objects.create(
        show_id=show.pk, minute=at, metric="src.ref.blog.test", value=4
    )
    counting.add(show.pk, "src.ref.blog.test", 6)
    counting.flush()
    assert [(s.key, s.visits) for s in traffic_sources(show)] == [("ref.blog.test", 6)]
    monkeypatch.setattr(counting, "totals", lambda _show: {"src.ref.blog.test": 1})
    assert [(s.key, s.visits) for s in traffic_sources(show)] == [("ref.blog.test", 4)]
