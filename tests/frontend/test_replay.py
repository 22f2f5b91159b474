"""The shoppable replay (docs/replay.md): chapters and cards from the pin log
with the host's trim and hidden chapters, the chat and answers on the
replay's clock, buying from an ended show with a recording at list price,
what is counted, the host's trim form, and where replays are listed."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from checkout import services as checkout
from checkout.exceptions import ShowNotLive, SoldOut
from checkout.models import FlashSale, Order
from shows import attribution, replay, services
from shows.models import AuditEntry, ChatMessage, Pin, Question, Show, Variant
from shows.services import brand_shows

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recordings(settings: Any, tmp_path: Any) -> Any:
    settings.SHOWFLOOR_RECORDINGS_DIR = tmp_path / "recordings"
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    (tmp_path / "recordings").mkdir()
    return tmp_path / "recordings"


@pytest.fixture
def ended(show: Show, products: list[Any], host: Any, _recordings: Any) -> Show:
    """Launch night, ended an hour after it started, with a recording and
    pins at 1:00 (headphones, unpinned at 5:00), 10:00 (mic) and 50:00
    (headphones again)."""
    services.show_start(show=show)
    services.show_end(show=show)
    started = timezone.now() - timedelta(hours=2)
    (_recordings / "launch.mp4").write_bytes(b"not really a video")
    Show.objects.filter(pk=show.pk).update(
        started_at=started,
        ended_at=started + timedelta(hours=1),
        recording_file="launch.mp4",
    )
    show.refresh_from_db()
    headphones, mic = products[0], products[1]
    for product, at, until in [
        (headphones, 60, 300),
        (mic, 600, None),
        (headphones, 3000, None),
    ]:
        Pin.objects.create(
            show=show,
            product=product,
            pinned_at=started + timedelta(seconds=at),
            unpinned_at=None if until is None else started + timedelta(seconds=until),
            pinned_by=host,
        )
    return show


def at(show: Show, seconds: int) -> Any:
    assert show.started_at is not None
    return show.started_at + timedelta(seconds=seconds)


# --- Chapters, cards and the timeline -------------------------------------------


def test_chapters_follow_the_pin_log_with_the_trim_and_without_hidden_ones(ended):
    chapters = replay.chapters(ended)
    assert [(c.name, c.at) for c in chapters] == [
        ("Studio Headphones", 60),
        ("Desk Mic", 600),
        ("Studio Headphones", 3000),
    ]
    Show.objects.filter(pk=ended.pk).update(
        replay_start_seconds=120, replay_end_seconds=2400
    )
    Pin.objects.filter(show=ended, pinned_at=at(ended, 600)).update(
        hidden_in_replay=True
    )
    ended.refresh_from_db()
    # The first pin came before the trimmed start: it begins the replay; the
    # mic is hidden; the last came after the trimmed end.
    assert [(c.name, c.at) for c in replay.chapters(ended)] == [
        ("Studio Headphones", 0)
    ]
    assert [c.name for c in replay.chapters(ended, include_hidden=True)] == [
        "Studio Headphones",
        "Desk Mic",
    ]
    assert [
        c.at for c in replay.chapters(ended, include_hidden=True, untrimmed=True)
    ] == [60, 600, 3000]


def test_cards_are_up_while_their_pin_was(ended, products):
    Show.objects.filter(pk=ended.pk).update(replay_start_seconds=30)
    ended.refresh_from_db()
    assert replay.pin_spans(ended) == [
        {"product_id": products[0].pk, "from": 30.0, "to": 270.0},
        {"product_id": products[1].pk, "from": 570.0, "to": None},
        {"product_id": products[0].pk, "from": 2970.0, "to": None},
    ]


def test_the_timeline_has_visible_chat_and_answers_on_the_replays_clock(
    ended, make_user, host
):
    viewer = make_user("Vera Viewer")
    said = []
    for seconds, text, hidden, deleted in [
        (200, "second", False, False),
        (100, "first", False, False),
        (150, "blocked word", True, False),
        (160, "removed", False, True),
    ]:
        message = ChatMessage.objects.create(
            show=ended, author=viewer, text=text, hidden=hidden
        )
        ChatMessage.objects.filter(pk=message.pk).update(
            created_at=at(ended, seconds),
            deleted_at=timezone.now() if deleted else None,
        )
        said.append(message)
    answered = Question.objects.create(
        show=ended,
        author=viewer,
        text="Wireless?",
        status=Question.Status.ANSWERED,
        answer="Yes, Bluetooth 5.3.",
        answered_at=at(ended, 700),
        answered_by=host,
    )
    Question.objects.create(show=ended, author=viewer, text="Still open?")
    Show.objects.filter(pk=ended.pk).update(replay_start_seconds=50)
    ended.refresh_from_db()

    found = replay.timeline(ended)
    assert [(m["text"], m["at"]) for m in found["chat"]] == [
        ("first", 50.0),
        ("second", 150.0),
    ]
    assert found["chat"][0]["author"] == "Vera Viewer"
    assert found["answers"] == [
        {
            "id": answered.pk,
            "at": 650.0,
            "author": "Vera Viewer",
            "text": "Wireless?",
            "answer": "Yes, Bluetooth 5.3.",
        }
    ]


# --- The page -------------------------------------------------------------------


def test_the_show_page_of_an_ended_show_is_its_replay(client, ended, monkeypatch):
    counted: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        "frontend.replay.counting.add",
        lambda show_id, metric, n=1, **kw: counted.append((metric, show_id)),
    )
    monkeypatch.setattr(
        "frontend.replay.counting.unique",
        lambda show_id, metric, who, **kw: counted.append((metric, who)),
    )
    response = client.get(reverse("show_detail", args=[ended.slug]))
    assert response.status_code == 200
    assert response.templates[0].name == "frontend/replay/show.html"
    html = response.content.decode()
    assert "frontend/replay.js" in html
    assert "frontend/room.js" not in html  # no live room: no chat input, no "watching"
    assert 'id="room-chat-input"' not in html
    assert "watching" not in html
    assert "room-heart" not in html
    data = json.loads(
        html.split('id="replay-data" type="application/json">')[1].split("</script>")[0]
    )
    assert [c["at"] for c in data["chapters"]] == [60, 600, 3000]
    assert html.count('class="replay-chapter"') == 3
    assert ">1:00</span>" in html
    assert ">10:00</span>" in html
    assert ("replay.views", ended.pk) in counted
    assert any(metric == "replay_viewers" for metric, _who in counted)


def test_the_live_page_does_not_load_the_replay(client, live_show):
    html = client.get(reverse("show_detail", args=[live_show.slug])).content.decode()
    assert "replay.js" not in html


def test_an_ended_show_without_its_recording_file_has_no_replay(client, ended):
    Show.objects.filter(pk=ended.pk).update(recording_file="gone.mp4")
    response = client.get(reverse("show_detail", args=[ended.slug]))
    assert response.templates[0].name == "frontend/show.html"


def test_a_private_replay_asks_for_the_code(client, ended):
    Show.objects.filter(pk=ended.pk).update(access_code="Club-2026")
    response = client.get(reverse("show_detail", args=[ended.slug]))
    assert "replay-data" not in response.content.decode()


# --- Buying from the replay ---------------------------------------------------------


def buy(
    show: Show,
    variant: Variant,
    quantity: int = 1,
    access: bool = True,
    key: str = "",
    session: str = "",
) -> Any:
    return checkout.order_create(
        show=show,
        buyer=checkout.Buyer(
            user=None,
            session_key=session or uuid.uuid4().hex,
            email="guest@example.test",
        ),
        variant_id=variant.pk,
        quantity=quantity,
        idempotency_key=key or uuid.uuid4().hex,
        replay_access=access,
    )


def test_an_order_from_the_replay_is_at_list_price_with_stock_taken_once(
    stripe_settings, ended, products
):
    mic = products[1].variants.get()
    # A flash sale of the show: over with it.
    FlashSale.objects.create(
        show=ended,
        product=products[1],
        price_minor=100,
        currency="EUR",
        per_buyer_limit=1,
        starts_at=at(ended, 600),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    key, session = uuid.uuid4().hex, uuid.uuid4().hex
    placed = buy(ended, mic, quantity=2, key=key, session=session)
    order = placed.order
    assert order.source == "replay"
    assert order.sale_id is None
    assert order.lines.get().unit_price_minor == 8900
    mic.refresh_from_db()
    assert mic.stock_available == 8
    # The same Buy again (the same key) is the same order and takes nothing more.
    again = buy(ended, mic, quantity=2, key=key, session=session)
    mic.refresh_from_db()
    assert mic.stock_available == 8
    assert again.order.pk == order.pk
    assert not again.created


def test_the_replay_refuses_a_sold_out_option(stripe_settings, ended, products):
    cable = products[2].variants.get()
    with pytest.raises(SoldOut):
        buy(ended, cable)
    cable.refresh_from_db()
    assert cable.stock_available == 0


def test_no_replay_sale_without_a_recording_or_without_access(
    stripe_settings, ended, products, settings
):
    mic = products[1].variants.get()
    with pytest.raises(ShowNotLive):
        buy(ended, mic, access=False)
    (settings.SHOWFLOOR_RECORDINGS_DIR / "launch.mp4").unlink()
    with pytest.raises(ShowNotLive):
        buy(ended, mic)
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert not Order.objects.exists()


def test_the_api_sells_a_private_replay_only_to_who_may_watch_it(
    client, stripe_settings, ended, products
):
    Show.objects.filter(pk=ended.pk).update(access_code="Club-2026")
    mic = products[1].variants.get()
    body = {"variant_id": mic.pk, "quantity": 1, "email": "g@example.test"}
    url = f"/api/shows/{ended.slug}/orders"
    refused = client.post(
        url,
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "show_not_live"
    client.post(reverse("show_detail", args=[ended.slug]), {"code": "Club-2026"})
    placed = client.post(
        url,
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert placed.status_code == 201, placed.content
    assert Order.objects.get().source == "replay"


def test_the_bag_fills_from_the_replay_at_list_price_and_checks_out_as_replay(
    stripe_settings, ended, products
):
    mic = products[1].variants.get()
    FlashSale.objects.create(
        show=ended,
        product=products[1],
        price_minor=100,
        currency="EUR",
        per_buyer_limit=1,
        starts_at=at(ended, 600),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    buyer = checkout.Buyer(
        user=None, session_key=uuid.uuid4().hex, email="guest@example.test"
    )
    with pytest.raises(ShowNotLive):
        checkout.bag_set_line(show=ended, buyer=buyer, variant_id=mic.pk, quantity=1)
    bag, _buyer = checkout.bag_set_line(
        show=ended, buyer=buyer, variant_id=mic.pk, quantity=2, replay_access=True
    )
    assert bag is not None
    assert bag.lines.get().unit_price_minor == 8900
    mic.refresh_from_db()
    assert mic.stock_available == 8
    placed = checkout.bag_checkout(show=ended, buyer=buyer)
    assert placed.order.source == "replay"


@pytest.mark.django_db(transaction=True)
def test_a_paid_replay_order_is_counted_as_a_replay_sale(
    stripe_settings, ended, products, monkeypatch
):
    counted: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "checkout.counts.counting.add",
        lambda show_id, metric, n=1, **kw: counted.append((metric, n)),
    )
    order = buy(ended, products[1].variants.get()).order
    guest = checkout.Buyer(
        user=None, session_key=order.session_key, email="guest@example.test"
    )
    checkout.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert ("replay.orders_paid", 1) in counted
    assert ("replay.revenue.EUR", order.total_minor) in counted


def test_the_replay_is_a_traffic_source_of_its_own():
    assert attribution.kind_of("replay") == "replay"
    assert str(attribution.label_of("replay")) == "Replay"


def test_the_report_has_a_replay_section(client, ended, host, monkeypatch):
    from live import reports

    sums = {"replay.views": 7, "replay.orders_paid": 2, "replay.revenue.EUR": 17800}
    monkeypatch.setattr(reports, "_sums", lambda show_id: sums)
    monkeypatch.setattr(
        reports, "_totals", lambda ids: {ended.pk: {"u.replay_viewers": 5}}
    )
    client.force_login(host)
    response = client.get(f"/brand/{ended.brand.slug}/shows/{ended.slug}/report/")
    assert response.status_code == 200
    assert dict(response.context["replay_figures"]) == {
        "Replay views": "7",
        "Unique replay viewers": "5",
        "Orders paid from the replay": "2",
        "Revenue from the replay": "€178.00",
    }
    assert 'id="report-replay"' in response.content.decode()


# --- The host's trim and hidden chapters ---------------------------------------------


def workspace_url(show: Show) -> str:
    return f"/brand/{show.brand.slug}/shows/{show.slug}/"


def test_the_host_trims_the_replay_and_hides_a_chapter(client, ended, host):
    client.force_login(host)
    page = client.get(workspace_url(ended)).content.decode()
    assert 'name="replay-start"' in page
    mic_pin = Pin.objects.get(show=ended, product__name="Desk Mic")
    response = client.post(
        workspace_url(ended),
        {
            "action": "replay",
            "replay-start": "0:45",
            "replay-end": "3300",
            "replay-hidden": [str(mic_pin.pk)],
        },
    )
    assert response.status_code == 302
    ended.refresh_from_db()
    assert (ended.replay_start_seconds, ended.replay_end_seconds) == (45, 3300)
    assert [c.name for c in replay.chapters(ended)] == [
        "Studio Headphones",
        "Studio Headphones",
    ]
    entry = AuditEntry.objects.get(action="show.replay")
    assert entry.detail["after"] == {"start": 45, "end": 3300, "hidden": [mic_pin.pk]}


@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        ("1:xx", "", "start", "Write a time as minutes:seconds"),
        ("10:00", "5:00", "end", "The end must come after the start."),
        ("0:10", "1:75", "end", "Write a time as minutes:seconds"),
    ],
)
def test_the_trim_form_explains_a_wrong_time_next_to_its_field(
    client, ended, host, start, end, field, message
):
    client.force_login(host)
    response = client.post(
        workspace_url(ended),
        {"action": "replay", "replay-start": start, "replay-end": end},
    )
    assert response.status_code == 400
    form = response.context["replay_form"]
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert f'id="id_replay-{field}_error"' in html
    assert (
        f'aria-describedby="id_replay-{field}_helptext id_replay-{field}_error"' in html
    )
    ended.refresh_from_db()
    assert ended.replay_start_seconds == 0


def test_the_trim_stays_within_the_recording(ended, host):
    with pytest.raises(brand_shows.ShowInputError) as refused:
        brand_shows.show_replay_update(
            user=host,
            brand=ended.brand,
            show=ended,
            data=brand_shows.ReplayInput(start=0, end=4000),
            duration=3600,
        )
    assert set(refused.value.fields) == {"end"}


def test_only_owners_and_hosts_trim(client, ended, moderator):
    from shows.services.workspace import NotAllowed

    with pytest.raises(NotAllowed):
        brand_shows.show_replay_update(
            user=moderator,
            brand=ended.brand,
            show=ended,
            data=brand_shows.ReplayInput(start=10, end=None),
        )
    client.force_login(moderator)
    response = client.post(
        workspace_url(ended), {"action": "replay", "replay-start": "0:10"}
    )
    assert response.status_code in (403, 404)
    ended.refresh_from_db()
    assert ended.replay_start_seconds == 0


# --- Where replays are listed ------------------------------------------------


def test_replays_are_listed_on_the_brand_page_and_the_home_page(client, ended):
    brand_page = client.get(f"/brands/{ended.brand.slug}/")
    assert brand_page.context["replays"] == [ended]
    html = brand_page.content.decode()
    assert 'id="brand-replays"' in html
    assert reverse("show_detail", args=[ended.slug]) in html
    home = client.get(reverse("home"))
    assert home.context["shows"].replays == [ended]
    assert reverse("show_detail", args=[ended.slug]) in home.content.decode()


def test_the_recordings_length_is_read_from_its_header(ended, settings):
    from tests.frontend.test_replay_browser import SECONDS, make_recording

    assert replay.recording_duration(ended) is None  # not a video: unknown
    make_recording(settings.SHOWFLOOR_RECORDINGS_DIR / "launch.webm")
    Show.objects.filter(pk=ended.pk).update(recording_file="launch.webm")
    ended.refresh_from_db()
    assert replay.recording_duration(ended) in (SECONDS - 1, SECONDS)


def test_the_replays_cards_carry_the_products_ratings(client, ended, products):
    """Visible reviews rate the replay's cards, as the room's; hidden ones
    count nowhere."""
    from checkout.models import Order, Review

    order = Order.objects.create(
        show=ended,
        brand=ended.brand,
        email="r@example.test",
        total_minor=8900,
        currency="EUR",
        idempotency_key="replay-rated",
        status="paid",
    )
    for n, (rating, hidden) in enumerate(((5, False), (4, False), (1, True))):
        Review.objects.create(
            product=products[1],
            order=order,
            email=f"r{n}@example.test",
            author_name="Rita",
            rating=rating,
            hidden=hidden,
        )
    html = client.get(reverse("show_detail", args=[ended.slug])).content.decode()
    data = json.loads(
        html.split('id="replay-data" type="application/json">')[1].split("</script>")[0]
    )
    assert data["ratings"] == {str(products[1].pk): {"average": 4.5, "count": 2}}
