"""Discovery: the home page (live shows with their viewers now, upcoming ones
counting down, replays) and the search over shows, brands and products
(shows/discovery.py, frontend/search.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from frontend import search as search_view
from realtime import counting, limiter
from realtime import redis as rclient
from shows import discovery, services
from shows.models import Show
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def search_limits_cleared() -> Iterator[None]:
    """Each test starts with a full bucket of searches for the test client."""

    def clear() -> None:
        limiter._memory.buckets.clear()
        if settings.REDIS_URL:
            client = rclient.sync_client()
            keys = list(client.scan_iter(rclient.key("search:*")))
            if keys:
                client.delete(*keys)

    clear()
    yield
    clear()


def scheduled(brand: Any, slug: str, *, title: str = "", hours: float = 24, **kw: Any):
    return services.show_create(
        brand=brand,
        slug=slug,
        title=title or slug.replace("-", " ").title(),
        scheduled_at=timezone.now() + timedelta(hours=hours),
        **kw,
    )


def live(brand: Any, slug: str, **kw: Any) -> Show:
    return services.show_start(show=scheduled(brand, slug, hours=0, **kw))


def replay(brand: Any, slug: str, *, recorded: bool = True, **kw: Any) -> Show:
    show = services.show_end(show=live(brand, slug, **kw))
    if recorded:
        show.recording_file = f"{slug}.webm"
        show.save(update_fields=["recording_file"])
    return show


# --- Home ------------------------------------------------------------------


def test_home_puts_live_shows_first_then_upcoming_soonest_then_replays(client, brand):
    """Sections in order; upcoming soonest first; an ended show without a
    recording is no replay; private shows appear nowhere."""
    later = scheduled(brand, "later", hours=48)
    sooner = scheduled(brand, "sooner", hours=2)
    on_air = live(brand, "on-air")
    watched = replay(brand, "watched")
    replay(brand, "unrecorded", recorded=False)
    live(brand, "members-live", title="Members live", access_code="x1")
    replay(brand, "members-replay", title="Members replay", access_code="x2")
    scheduled(brand, "members-next", title="Members next", access_code="x3")

    response = client.get(reverse("home"))
    shows = response.context["shows"]
    assert shows.live == [on_air]
    assert shows.upcoming == [sooner, later]
    assert shows.replays == [watched]
    html = response.content.decode()
    assert html.index("On Air") < html.index("Sooner") < html.index("Later")
    assert html.index("Later") < html.index("Watched")
    # A recorded show's card says it can be watched again.
    watched_card = html[html.index("Watched") - 400 : html.index("Watched")]
    assert '<span class="badge badge-ended">Replay</span>' in watched_card
    assert "Unrecorded" not in html
    assert "Members" not in html


def test_home_cards_count_down_to_upcoming_shows(client, brand):
    """Each upcoming card carries the countdown (countdown.js and its strings
    come with it) and its start written for the viewer's zone."""
    soon = scheduled(brand, "soon", hours=3)
    html = client.get(reverse("home")).content.decode()
    assert f'data-starts-at="{int(soon.scheduled_at.timestamp())}"' in html
    assert "frontend/countdown.js" in html
    assert 'id="countdown-i18n"' in html
    assert "data-zoned" in html


def test_home_without_upcoming_shows_loads_no_countdown(client, brand):
    live(brand, "on-air")
    html = client.get(reverse("home")).content.decode()
    assert "countdown.js" not in html


def test_home_shows_how_many_watch_a_live_show_now(client, brand, redis_url):
    """The figure the hub reports (``now.viewers``) is on the live card."""
    on_air = live(brand, "on-air")
    counting.peak(on_air.pk, "viewers", 37)
    counting.flush()
    response = client.get(reverse("home"))
    assert response.context["shows"].viewers == {on_air.pk: 37}
    assert "37 watching" in response.content.decode()


def test_home_leaves_the_count_off_when_redis_does_not_answer(client, brand, settings):
    """A stopped Redis: the page still loads, fast, only without counts; and
    after the first failure no other show is tried."""
    for n in range(3):
        live(brand, f"on-air-{n}")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    response = client.get(reverse("home"))
    assert time.monotonic() - started < 1.5
    assert response.status_code == 200
    assert len(response.context["shows"].live) == 3
    assert response.context["shows"].viewers == {}
    assert "watching" not in response.content.decode()
    assert rclient.is_down()


def test_home_reads_the_count_of_at_most_the_shows_it_lists(monkeypatch, brand):
    """One store read per live show on the page, capped at ``LIVE_LIMIT``."""
    read: list[int] = []
    monkeypatch.setattr(discovery, "LIVE_LIMIT", 2)

    def totals(pk: int) -> dict[str, int]:
        read.append(pk)
        return {}

    monkeypatch.setattr(counting, "totals", totals)
    for n in range(4):
        live(brand, f"on-air-{n}")
    found = discovery.home_shows()
    assert len(found.live) == 2
    assert sorted(read) == sorted(show.pk for show in found.live)


def test_home_costs_the_same_few_queries_with_many_shows(
    client, brand, make_user, django_assert_num_queries
):
    """Three queries (live, upcoming, replays, each with its brand), whatever
    the number of shows and brands."""
    for n in range(4):
        other = services.brand_create(name=f"Brand {n}", slug=f"brand-{n}")
        for k in range(4):
            live(other, f"live-{n}-{k}")
            scheduled(other, f"next-{n}-{k}", hours=5 + k)
            replay(other, f"replay-{n}-{k}")
    with django_assert_num_queries(3):
        response = client.get(reverse("home"))
    shows = response.context["shows"]
    assert len(shows.live) == len(shows.upcoming) == len(shows.replays) == 12


# --- Search ----------------------------------------------------------------


@pytest.fixture(params=["full_text", "substring"])
def backend(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of matching: PostgreSQL's full-text search (needs the real
    PostgreSQL), and the plain case-insensitive match SQLite gets (forced
    here, on whichever database the suite runs)."""
    if request.param == "full_text":
        request.getfixturevalue("postgres")
    else:
        monkeypatch.setattr(discovery, "full_text_available", lambda: False)
    return str(request.param)


@pytest.fixture
def catalogue(brand, products, make_user):
    """Acme Audio's shows (live, upcoming, replay, private) and a second
    brand, Nordlicht, with a lamp in an upcoming show."""
    on_air = live(brand, "headphone-hour", title="Headphone hour", products=products)
    upcoming = scheduled(
        brand, "mic-check", title="Mic check", hours=30, products=products[1:2]
    )
    past = replay(brand, "cable-classics", title="Cable classics")
    live(brand, "vip-headphones", title="VIP headphones", access_code="vip")
    nordlicht = services.brand_create(name="Nordlicht", slug="nordlicht")
    nordlicht.description = "Lamps from Friesland"
    nordlicht.save(update_fields=["description"])
    lamp = services.product_create(brand=nordlicht, name="Aurora lamp")
    lamp_show = scheduled(
        nordlicht, "lamp-night", title="Lamp night", hours=5, products=[lamp]
    )
    secret_lamp = services.product_create(brand=nordlicht, name="Secret lamp")
    scheduled(
        nordlicht, "lamp-vip", title="Lamp VIP", products=[secret_lamp], access_code="v"
    )
    return {
        "on_air": on_air,
        "upcoming": upcoming,
        "past": past,
        "nordlicht": nordlicht,
        "lamp": lamp,
        "lamp_show": lamp_show,
        "products": products,
    }


def groups(response: Any) -> dict[str, list[Any]]:
    return {g["name"]: g["rows"] for g in response.context["groups"]}


def test_search_groups_shows_brands_and_products(client, backend, catalogue):
    """Shows by status, the brand by its name, products with their brand and
    the next show they are in (live first)."""
    found = groups(client.get(reverse("search"), {"q": "headphone"}))
    assert found["live"] == [catalogue["on_air"]]
    assert found["products"] == [catalogue["products"][0]]
    assert found["products"][0].next_show == catalogue["on_air"]

    response = client.get(reverse("search"), {"q": "LAMP"})
    found = groups(response)
    assert found["upcoming"] == [catalogue["lamp_show"]]
    assert found["brands"] == [catalogue["nordlicht"]]
    assert found["products"] == [catalogue["lamp"]]
    html = response.content.decode()
    assert "Nordlicht" in html
    assert "/brands/nordlicht/" in html
    assert "/shows/lamp-night/" in html

    found = groups(client.get(reverse("search"), {"q": "cable"}))
    assert found["replays"] == [catalogue["past"]]


def test_search_finds_a_word_by_its_beginning(client, backend, catalogue):
    found = groups(client.get(reverse("search"), {"q": "nord"}))
    assert found["brands"] == [catalogue["nordlicht"]]


def test_search_ignores_case_beyond_ascii(client, backend, brand):
    """ "ÄPFEL" finds "Äpfel" (SQLite's own LIKE folds ASCII only)."""
    apples = scheduled(brand, "apfel", title="Äpfel und Birnen")
    found = groups(client.get(reverse("search"), {"q": "ÄPFEL"}))
    assert found["upcoming"] == [apples]
    found = groups(client.get(reverse("search"), {"q": "birnen 100%"}))
    assert found["upcoming"] == []


def test_full_text_search_matches_other_forms_of_a_word(client, postgres, catalogue):
    """PostgreSQL's English stemmer: "lamps" finds the "Aurora lamp"."""
    found = groups(client.get(reverse("search"), {"q": "lamps"}))
    assert catalogue["lamp"] in found["products"]


def test_search_never_shows_private_shows_or_what_only_they_sell(
    client, backend, catalogue
):
    """Neither a private show nor a product only a private show has; a
    product's next show is a public one."""
    for query in ("VIP", "secret", "headphones"):
        response = client.get(reverse("search"), {"q": query})
        html = response.content.decode()
        assert "VIP headphones" not in html
        assert "Secret lamp" not in html
        assert "lamp-vip" not in html
        assert "vip-headphones" not in html
    rows = groups(client.get(reverse("search"), {"q": "VIP"}))
    assert not any(rows.values())


def test_search_escapes_the_query_and_keeps_it_in_the_box(client, backend, catalogue):
    query = '<script>alert("x")</script>'
    response = client.get(reverse("search"), {"q": query})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'name="q" value="&lt;script&gt;' in html
    assert "Nothing matches" in html


def test_search_escapes_what_it_found(client, backend, brand):
    scheduled(brand, "odd", title="<b>Bold</b> offers")
    html = client.get(reverse("search"), {"q": "bold"}).content.decode()
    assert "&lt;b&gt;Bold&lt;/b&gt; offers" in html
    assert "<b>Bold</b>" not in html


def test_search_pages_through_one_group(client, backend, brand):
    """The overview shows the first few of a group and links to the rest,
    which come a page at a time."""
    for n in range(search_view.PER_GROUP + 2):
        scheduled(brand, f"gadget-{n:02}", title=f"Gadget {n:02}", hours=1 + n)
    response = client.get(reverse("search"), {"q": "gadget"})
    assert len(groups(response)["upcoming"]) == search_view.PER_GROUP
    assert "in=upcoming" in response.content.decode()

    search_view.PER_PAGE = 5
    try:
        first = client.get(reverse("search"), {"q": "gadget", "in": "upcoming"})
        second = client.get(
            reverse("search"), {"q": "gadget", "in": "upcoming", "page": 2}
        )
    finally:
        search_view.PER_PAGE = 24
    assert [s.slug for s in first.context["page"]] == [
        f"gadget-{n:02}" for n in range(5)
    ]
    assert [s.slug for s in second.context["page"]] == [
        f"gadget-{n:02}" for n in range(5, search_view.PER_GROUP + 2)
    ]
    assert 'rel="next"' in first.content.decode()
    assert 'rel="prev"' in second.content.decode()


def test_search_overview_costs_a_query_per_group(
    client, backend, catalogue, django_assert_num_queries
):
    """Five groups and the products' next shows: six queries, however many
    products match."""
    with django_assert_num_queries(6):
        client.get(reverse("search"), {"q": "a"})


def test_an_empty_search_asks_for_words_and_costs_nothing(
    client, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = client.get(reverse("search"), {"q": "   "})
    assert response.status_code == 200
    assert "groups" not in response.context


def test_search_is_rate_limited_per_client(client, monkeypatch, brand):
    """Past the burst a client waits (429 with ``Retry-After``), another
    client does not."""
    monkeypatch.setattr(search_view, "SEARCH_BURST", 3)
    for _ in range(3):
        assert client.get(reverse("search"), {"q": "x"}).status_code == 200
    refused = client.get(reverse("search"), {"q": "x"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Too many searches" in refused.content.decode()
    other = client.get(reverse("search"), {"q": "x"}, REMOTE_ADDR="127.0.0.9")
    assert other.status_code == 200


def test_the_site_header_has_the_search_box(client):
    html = client.get(reverse("home")).content.decode()
    assert 'role="search"' in html
    assert f'action="{reverse("search")}"' in html
