"""Counting on the floor (``realtime.counting``): the flush to Redis, the rollup
into PostgreSQL, privacy, outages, and the studio's live figures of a scripted
show."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from realtime import counting
from realtime import redis as rclient
from realtime.models import ShowMinuteCount, ShowTotalCount
from tests.live.conftest import ORIGIN, Socket, login_cookie

SHOW = 900_000_001
OTHER = 900_000_002


@pytest.fixture
def counter(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh counter of this test's own, its Redis keys under a prefix of
    their own (removed afterwards)."""
    settings.REDIS_PREFIX = f"{settings.REDIS_PREFIX}:counting"
    fresh = counting.Counter()
    monkeypatch.setattr(counting, "_counter", fresh)
    monkeypatch.setattr(counting, "_memory_store", counting.MemoryStore())
    yield fresh
    fresh.stop()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        with contextlib.suppress(redis.ConnectionError):  # a test's own, killed
            keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


def _minute_at(moment: float) -> datetime:
    return datetime.fromtimestamp(counting.minute_of(moment) * 60, tz=UTC)


def test_counts_are_flushed_to_redis_and_read_back(redis_url, counter):
    """Sums per show and product, HyperLogLog uniques (one person counted
    once), the peak and the value now all reach Redis in one flush."""
    counting.add(SHOW, "chat")
    counting.add(SHOW, "chat", 2)
    counting.add(SHOW, "holds", 1, products={7: 1})
    counting.add(SHOW, "impressions", 3, products={7: 3})
    for who in ("user:1", "user:2", "user:1", "session:abc"):
        counting.unique(SHOW, "viewers", who)
    counting.peak(SHOW, "viewers", 5)
    counting.peak(SHOW, "viewers", 2)
    counting.add(OTHER, "chat")
    assert counter.flush() > 0
    totals = counting.totals(SHOW)
    assert totals["chat"] == 3
    assert totals["holds"] == 1
    assert totals["p7.holds"] == 1
    assert totals["p7.impressions"] == 3
    assert totals["u.viewers"] == 3
    assert totals["max.viewers"] == 5
    assert totals["now.viewers"] == 2
    minute = counting.minute_counts(SHOW, counting.minute_of(time.time()))
    assert minute["chat"] == 3
    assert minute["u.viewers"] == 3
    assert counting.totals(OTHER)["chat"] == 1
    assert counter.flush() == 0  # nothing new


def test_nothing_personal_reaches_redis(redis_url, redis_client, counter, settings):
    """Only salted hashes reach the store, different in every show."""
    counting.unique(SHOW, "viewers", "user:42")
    counter.flush()
    assert counting.visitor_key(SHOW, "user:42") != counting.visitor_key(
        OTHER, "user:42"
    )
    dumped = b"".join(
        redis_client.dump(key) or b""
        for key in redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*")
    )
    assert b"user:42" not in dumped


@pytest.mark.django_db
def test_rollup_writes_closed_minutes_as_absolute_values_and_twice_is_once(
    redis_url, counter
):
    """The rollup upserts each closed minute's values: a second run counts
    nothing twice, late counts rewrite the minute whole, and an open minute
    waits."""
    now = time.time()
    earlier = now - 180
    counting.add(SHOW, "chat", 4, at=earlier)
    counting.add(SHOW, "revenue.EUR", 8900, at=earlier)
    counting.unique(SHOW, "viewers", "user:1", at=earlier)
    counting.unique(SHOW, "viewers", "user:2", at=earlier)
    counting.peak(SHOW, "viewers", 2, at=earlier)
    counting.add(SHOW, "chat", 1, at=now)  # the open minute
    counter.flush()

    assert counting.rollup(now=now) == 1
    assert counting.rollup(now=now) == 0
    rows = {
        r.metric: r.value
        for r in ShowMinuteCount.objects.filter(
            show_id=SHOW, minute=_minute_at(earlier)
        )
    }
    assert rows == {"chat": 4, "revenue.EUR": 8900, "u.viewers": 2, "max.viewers": 2}
    assert not ShowMinuteCount.objects.filter(
        show_id=SHOW, minute=_minute_at(now)
    ).exists()
    totals = {r.metric: r.value for r in ShowTotalCount.objects.filter(show_id=SHOW)}
    assert totals == {"u.viewers": 2, "max.viewers": 2}

    # A process that flushes late (after an outage) adds to the same minute.
    counting.add(SHOW, "chat", 2, at=earlier)
    counter.flush()
    counting.get_store().unclaim(SHOW, counting.minute_of(earlier))  # a rerun
    assert counting.rollup(now=now) == 1
    assert counting.rollup(now=now) == 0
    assert (
        ShowMinuteCount.objects.get(
            show_id=SHOW, minute=_minute_at(earlier), metric="chat"
        ).value
        == 6
    )
    assert ShowMinuteCount.objects.filter(show_id=SHOW).count() == 4


@pytest.mark.django_db
def test_without_redis_the_same_counts_live_in_this_process(settings, counter):
    """The embedded demo (no Redis) keeps the same meaning in memory, and the
    rollup reads it the same way."""
    settings.REDIS_URL = ""
    now = time.time()
    earlier = now - 120
    counting.add(SHOW, "reactions", 3, at=earlier)
    counting.unique(SHOW, "viewers", "user:1", at=earlier)
    counting.unique(SHOW, "viewers", "user:1", at=earlier)
    counting.peak(SHOW, "viewers", 1, at=earlier)
    counter.flush()
    totals = counting.totals(SHOW)
    assert totals["reactions"] == 3
    assert totals["u.viewers"] == 1
    assert totals["max.viewers"] == 1
    assert counting.rollup(now=now) == 1
    assert counting.rollup(now=now) == 0
    rows = {r.metric: r.value for r in ShowMinuteCount.objects.filter(show_id=SHOW)}
    assert rows == {"reactions": 3, "u.viewers": 1, "max.viewers": 1}


def test_counting_off_counts_nothing(settings, counter):
    settings.SHOWFLOOR_COUNTING = False
    counter.flush()  # reads the setting
    counting.add(SHOW, "chat")
    counting.unique(SHOW, "viewers", "user:1")
    assert counter.batch.size() == 0


def test_do_not_track_and_gpc_headers_are_recognised():
    assert counting.wants_privacy([(b"DNT", b"1")])
    assert counting.wants_privacy([(b"sec-gpc", b"1")])
    assert not counting.wants_privacy([(b"dnt", b"0"), (b"cookie", b"x")])


def test_counts_survive_a_redis_outage_and_are_written_later(
    own_redis, settings, counter
):
    """While Redis is down the flush keeps its counts (no exception, nothing
    lost) and writes them once Redis is back."""
    settings.REDIS_URL = own_redis.url
    counting.add(SHOW, "chat", 2)
    counter.flush()
    own_redis.kill()
    counting.add(SHOW, "chat", 3)
    counting.unique(SHOW, "viewers", "user:1")
    assert counter.flush() == 0
    counting.add(SHOW, "chat", 1)
    assert counter.flush() == 0
    assert counter.kept is not None
    own_redis.start()  # empty: the first 2 were lost with the crash
    rclient._down_until = 0.0
    assert counter.flush() > 0
    totals = counting.totals(SHOW)
    assert totals["chat"] == 4
    assert totals["u.viewers"] == 1


def test_what_an_outage_keeps_is_bounded_and_the_rest_is_dropped_and_logged(
    own_redis, settings, counter, monkeypatch, caplog
):
    monkeypatch.setattr(counting, "KEEP_MAX", 3)
    settings.REDIS_URL = own_redis.url
    own_redis.kill()
    for n in range(5):
        counting.add(SHOW, f"m{n}")
    counter.flush()
    assert counter.kept is None or counter.kept.size() <= 3
    assert counter.dropped == 5
    own_redis.start()
    rclient._down_until = 0.0
    counting.add(SHOW, "chat")
    with caplog.at_level(logging.WARNING, logger="realtime.counting"):
        counter.flush()
    assert "5 counts were dropped" in caplog.text
    assert counting.totals(SHOW) == {"chat": 1}


# --- Through the room --------------------------------------------------------


async def _open(show: Any, user: Any = None, *, private: bool = False) -> Socket:
    from config.asgi import application

    headers = [(b"origin", ORIGIN)]
    if user is not None:
        cookie = await database_sync_to_async(login_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    if private:
        headers.append((b"dnt", b"1"))
    socket = Socket(
        WebsocketCommunicator(application, f"/ws/shows/{show.slug}/", headers=headers)
    )
    connected, _code = await socket.comm.connect(timeout=5)
    assert connected
    await socket.read(timeout=5)
    return socket


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_asking_not_to_be_tracked_counts_per_connection(
    redis_url, counter, live_show, make_user
):
    """Two tabs of one person count once; two tabs of a person who sends
    DNT (or GPC) count twice: nothing ties their connections together."""
    from live.hub import get_hub

    tracked = await database_sync_to_async(make_user)("Tia")
    private = await database_sync_to_async(make_user)("Pia")
    sockets = [
        await _open(live_show, tracked),
        await _open(live_show, tracked),
        await _open(live_show, private, private=True),
        await _open(live_show, private, private=True),
    ]
    try:
        counter.flush()
        assert counting.totals(live_show.pk)["u.viewers"] == 3
    finally:
        for socket in sockets:
            await socket.comm.disconnect()
        await get_hub().stop()


@pytest.mark.django_db(transaction=True)
async def test_a_scripted_show_gives_exact_live_figures(
    redis_url,
    counter,
    stripe_settings,
    live_show,
    products,
    host,
    make_user,
    monkeypatch,
):
    """Three people watch (one of them in two tabs) and the host; they chat,
    react, ask, tap Buy; one buys two, another one, and the first is refunded
    in part. The studio's figures say exactly that."""
    from checkout import services as checkout
    from live.hub import core, get_hub

    # Watch time and peak are counted by the heartbeat: driven by hand here.
    monkeypatch.setattr(core, "HEARTBEAT_SECONDS", 3600)
    vera = await database_sync_to_async(make_user)("Vera")
    olga = await database_sync_to_async(make_user)("Olga")
    studio = await _open(live_show, host)
    vera_tab = await _open(live_show, vera)
    vera_tab2 = await _open(live_show, vera)
    olga_tab = await _open(live_show, olga)
    guest_tab = await _open(live_show)
    sockets = [studio, vera_tab, vera_tab2, olga_tab, guest_tab]
    try:
        mic = products[1]
        ref = await studio.send("product.pin", product_id=mic.pk)
        assert (await studio.reply(ref))["type"] == "ack"
        await guest_tab.wait_for("product.pinned")
        for socket, text in ((vera_tab, "hi"), (olga_tab, "hello"), (vera_tab, "wow")):
            ref = await socket.send("chat.send", text=text)
            assert (await socket.reply(ref))["type"] == "ack"
        ref = await olga_tab.send("question.ask", text="Does it fold?")
        assert (await olga_tab.reply(ref))["type"] == "ack"
        for socket in (vera_tab, guest_tab, guest_tab):
            await socket.send("reaction.send", emoji="🔥")
        await vera_tab.send("beacon.send", event="buy_tap", product_id=mic.pk)
        await olga_tab.send("beacon.send", event="buy_tap", product_id=mic.pk)
        await olga_tab.send("beacon.send", event="sheet_open", product_id=mic.pk)
        await olga_tab.send("beacon.send", event="buy_tap", product_id=999_999)
        await guest_tab.wait_for("reactions.burst")

        hub = get_hub()
        room = hub.rooms[live_show.pk]
        hub.count_room(room, total=3, audience=room.audience_size(), elapsed=60.0)

        def buy() -> None:
            variant = mic.variants.get()
            for user, quantity in ((vera, 2), (olga, 1)):
                buyer = checkout.Buyer(user=user, session_key="", email=user.email)
                order = checkout.order_create(
                    show=live_show,
                    buyer=buyer,
                    variant_id=variant.pk,
                    quantity=quantity,
                    idempotency_key=f"scripted-show-{user.pk}",
                ).order
                checkout.order_pay(order=order, buyer=buyer, method="test")
                if user == vera:
                    order.refresh_from_db()
                    checkout.order_refund(order=order, amount_minor=5000)

        await database_sync_to_async(buy)()
        # Joining while the mic is pinned is seeing its card; a staff member
        # joining is not counted.
        late = await _open(live_show)
        sockets.append(late)
        sockets.append(await _open(live_show, host))
        counter.flush()

        def figures() -> Any:
            client = Client()
            client.force_login(host)
            return client.get(f"/api/shows/{live_show.slug}/figures")

        response = await database_sync_to_async(figures)()
        assert response.status_code == 200
        data = json.loads(response.content)
        assert data["viewers_now"] == 3
        assert data["peak_viewers"] == 3
        assert data["unique_viewers"] == 4  # Vera, Olga, two guests; not the host
        assert data["watch_seconds"] == 180
        assert data["average_watch_seconds"] == 45  # 180 s over four people
        assert data["average_watch"] == "0:45"
        assert data["chat"] == 3
        assert data["questions"] == 1
        assert data["reactions"] == 3
        assert data["buy_taps"] == 2
        assert data["sheet_opens"] == 1
        assert data["holds"] == 2
        assert data["orders_paid"] == 2
        assert data["buyers"] == 2
        assert data["refunds"] == 1
        assert data["revenue"][0]["minor"] == 3 * 8900
        assert data["refunded"][0]["minor"] == 5000
        assert data["net_revenue"] == [
            {"currency": "EUR", "minor": 3 * 8900 - 5000, "formatted": "€217.00"}
        ]
        # The late guest is a fourth unique viewer (joined after the heartbeat
        # counted the peak), who saw the card in the snapshot.
        assert data["conversion"] == pytest.approx(2 / 4)
        assert data["conversion_formatted"] == "50.0%"
        # Watched: Vera, Olga, two guests. Saw the card: the three watching
        # when the pin went out and the late guest. Tapped Buy: Vera and Olga
        # (Olga's tap on a product outside the line-up is not counted).
        assert data["funnel"] == {
            "viewers": 4,
            "saw_card": 4,
            "tapped_buy": 2,
            "reserved": 2,
            "paid": 2,
        }
        [product] = data["products"]
        assert product["id"] == mic.pk
        assert product["pinned"] is True
        # The three people watching when the pin reached the room, and the
        # late guest's snapshot.
        assert product["impressions"] == 4
        assert product["buy_taps"] == 2
        assert product["holds"] == 2
        assert product["units"] == 3
        assert product["revenue"][0]["minor"] == 3 * 8900
        assert product["refunded"][0]["minor"] == 5000
        # The chart's series: every minute since the show started, this one
        # with its peak and the two paid orders; the pin marked.
        now_minute = counting.minute_of(time.time()) * 60
        assert data["minutes"][-1]["at"] in (now_minute, now_minute - 60)
        assert sum(m["orders_paid"] for m in data["minutes"]) == 2
        assert max(m["viewers"] for m in data["minutes"]) == 3
        assert [pin["name"] for pin in data["pins"]] == ["Desk Mic"]
    finally:
        for socket in sockets:
            await socket.comm.disconnect()
        await get_hub().stop()


# --- The studio endpoint -------------------------------------------------------


@pytest.mark.django_db
def test_the_figures_are_for_the_brands_staff_only(
    client, counter, live_show, make_user
):
    """Anonymous visitors, viewers and another brand's host get a 403."""
    from shows import services

    other = services.brand_create(name="Other Co", slug="other-co")
    other_brand_host = make_user("Oscar Other")
    services.membership_set(brand=other, user=other_brand_host, role="host")
    url = f"/api/shows/{live_show.slug}/figures"
    assert client.get(url).status_code == 403
    client.force_login(make_user("Vera Viewer"))
    refused = client.get(url)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    client.force_login(other_brand_host)
    assert client.get(url).status_code == 403
    assert client.get("/api/shows/no-such-show/figures").status_code == 404


@pytest.mark.django_db
def test_the_studio_sees_its_figures(client, counter, live_show, host, settings):
    settings.REDIS_URL = ""
    counting.add(live_show.pk, "chat", 2)
    counter.flush()
    client.force_login(host)
    data = client.get(f"/api/shows/{live_show.slug}/figures").json()
    assert data["chat"] == 2
    assert data["unique_viewers"] == 0
    assert data["conversion"] is None
    assert data["products"] == []
    assert data["minutes"][-1]["orders_paid"] == 0
    assert data["sales"] == []


@pytest.mark.django_db
def test_the_chart_marks_the_flash_sales_and_pins(
    client, counter, live_show, host, products, settings
):
    """A pin and the flash sale started on it are both marked at their time."""
    from checkout.services import sale_start
    from shows.services import room

    settings.REDIS_URL = ""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    sale = sale_start(
        show=live_show,
        user=host,
        product_id=products[1].pk,
        price_minor=4900,
        duration_seconds=60,
        per_buyer_limit=2,
    )
    client.force_login(host)
    data = client.get(f"/api/shows/{live_show.slug}/figures").json()
    assert data["sales"] == [
        {"at": int(sale.starts_at.timestamp()), "name": "Desk Mic"}
    ]
    assert [pin["name"] for pin in data["pins"]] == ["Desk Mic"]


@pytest.mark.django_db
def test_the_figures_answer_503_while_redis_is_down(
    client, counter, live_show, host, own_redis, settings
):
    settings.REDIS_URL = own_redis.url
    own_redis.kill()
    client.force_login(host)
    response = client.get(f"/api/shows/{live_show.slug}/figures")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("amount", "lines", "shares"),
    [
        (5000, [(7, 2, 8900)], {7: 5000}),
        (100, [(1, 1, 100), (2, 1, 100), (3, 1, 100)], {1: 34, 2: 33, 3: 33}),
        (-100, [(1, 1, 100), (2, 1, 100), (3, 1, 100)], {1: -34, 2: -33, 3: -33}),
        (999, [(1, 1, 900), (2, 1, 100), (1, 1, 0)], {1: 899, 2: 100}),
        (5000, [(1, 1, 1000)], {1: 1000}),
        (10, [], {}),
    ],
)
def test_a_refund_is_split_over_products_by_what_they_cost(amount, lines, shares):
    """Whole minor units, adding up to the refund (at most the order's value),
    the leftover unit to the largest remainder."""
    from checkout.counts import product_shares

    assert product_shares(amount, lines) == shares
