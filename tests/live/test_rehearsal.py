"""Rehearsal (docs/video.md): the host streams for the brand's staff only, then
"Go live" makes the same stream public. Who may do it, what a viewer can reach
meanwhile (nothing), what is announced and when, and that the recording starts
at the go-live and not before."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import av
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient, Client
from django.utils import timezone

from live.media.clients import StampedVideoTrack, play, publish
from realtime import events
from shows import services
from shows.exceptions import InvalidTransition
from shows.models import Follow, NoticeBatch, Reminder, Show
from shows.services import lifecycle, stream
from shows.services.workspace import NotAllowed, NotAMember
from tests.live.media.conftest import http, media_settings, node  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner(make_user: Any, brand: Any) -> Any:
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event sent to a room or to the whole site, in order."""
    sent: list[dict[str, Any]] = []
    broadcast, broadcast_site = events.broadcast, events.broadcast_site

    def to_room(show_id: int, event: dict[str, Any]) -> int:
        sent.append({"to": "room", **event})
        return broadcast(show_id, event)

    def to_site(event: dict[str, Any], *, except_show: int) -> None:
        sent.append({"to": "site", **event})
        broadcast_site(event, except_show=except_show)

    monkeypatch.setattr(events, "broadcast", to_room)
    monkeypatch.setattr(events, "broadcast_site", to_site)
    return sent


@pytest.fixture
def audience(show: Any, make_user: Any) -> None:
    """A confirmed reminder and a follower: both would be told "live now"."""
    fan = make_user("Fay Fan")
    Reminder.objects.create(show=show, user=fan, confirmed_at=timezone.now())
    Follow.objects.create(brand=show.brand, user=make_user("Finn Follower"))


def _client(user: Any | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- Transitions and who may do them --------------------------------------


@pytest.mark.parametrize("role", ["owner", "host"])
def test_owners_and_hosts_rehearse_and_the_show_stays_scheduled(
    role, request, show, announced, audience
):
    user = request.getfixturevalue(role)
    lifecycle.show_rehearsal_start(show=show, user=user)
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED
    assert show.is_rehearsing
    assert show.started_at is None
    assert announced == []
    assert not NoticeBatch.objects.filter(show=show).exists()


def test_a_moderator_or_outsider_may_not_rehearse_or_go_live(
    show, host, moderator, make_user
):
    outsider = make_user("Otto Outside")
    with pytest.raises(NotAllowed):
        lifecycle.show_rehearsal_start(show=show, user=moderator)
    with pytest.raises(NotAMember):
        lifecycle.show_rehearsal_start(show=show, user=outsider)
    lifecycle.show_rehearsal_start(show=show, user=host)
    with pytest.raises(NotAllowed):
        lifecycle.show_go_live(show=show, user=moderator)
    with pytest.raises(NotAMember):
        lifecycle.show_go_live(show=show, user=None)
    show.refresh_from_db()
    assert show.is_rehearsing
    assert show.status == Show.Status.SCHEDULED


def test_rehearse_endpoint_answers_by_role(show, host, moderator, make_user):
    url = f"/live/{show.slug}/stream/rehearse"
    assert _client().post(url).status_code == 404
    assert _client(make_user("Otto")).post(url).status_code == 404
    refused = _client(moderator).post(url)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert _client(host).get(url).status_code == 405
    answer = _client(host).post(url)
    assert answer.status_code == 200
    assert answer.json()["status"] == "rehearsal"
    # The studio's view tells the rehearsal apart; the show is still scheduled.
    assert _client(host).get(f"/live/{show.slug}/stream").json()["status"] == (
        "rehearsal"
    )
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED


def test_go_live_needs_a_rehearsal_and_a_live_show_cannot_rehearse(
    show, host, announced, audience
):
    lifecycle.show_rehearsal_start(show=show, user=host)
    lifecycle.show_rehearsal_stop(show=show)
    with pytest.raises(InvalidTransition, match="rehearsal"):
        lifecycle.show_go_live(show=show, user=host)
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED
    assert show.started_at is None
    assert announced == []
    assert not NoticeBatch.objects.filter(show=show).exists()
    services.show_start(show=show)
    with pytest.raises(InvalidTransition):
        lifecycle.show_rehearsal_start(show=show, user=host)


def test_go_live_announces_once_and_sets_started_at(show, host, announced, audience):
    lifecycle.show_rehearsal_start(show=show, user=host)
    before = timezone.now()
    lifecycle.show_go_live(show=show, user=host)
    show.refresh_from_db()
    assert show.status == Show.Status.LIVE
    assert not show.is_rehearsing
    assert show.rehearsing_since is None
    assert show.started_at is not None
    assert show.started_at >= before
    assert [(e["to"], e["type"]) for e in announced] == [
        ("site", events.BRAND_LIVE),
        ("room", events.SHOW_STATUS),
    ]
    assert announced[1]["status"] == "live"
    batches = NoticeBatch.objects.filter(show=show)
    assert [b.kind for b in batches] == ["live_now"]
    with pytest.raises(InvalidTransition):
        lifecycle.show_go_live(show=show, user=host)
    assert NoticeBatch.objects.filter(show=show).count() == 1
    assert len(announced) == 2


def test_a_rehearsal_that_stops_leaves_the_show_scheduled(show, host):
    lifecycle.show_rehearsal_start(show=show, user=host)
    stream.stream_end(show=show, recording=None)
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED
    assert show.rehearsing_since is None
    assert show.ended_at is None


def test_viewer_pages_show_a_rehearsal_as_scheduled(show, host):
    lifecycle.show_rehearsal_start(show=show, user=host)
    page = _client().get(f"/shows/{show.slug}/").content.decode()
    assert "Rehearsal" not in page
    assert '"status": "scheduled"' in page
    preview = _client(host).get(f"/live/{show.slug}/preview")
    assert preview.status_code == 200
    assert '"status": "live"' in preview.content.decode()
    assert _client().get(f"/live/{show.slug}/preview").status_code == 404


# --- With the media node ---------------------------------------------------


class Poster:
    """WHIP/WHEP posts through Django as one (possibly signed-in) browser."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def post(self, url: str, sdp: str, token: str) -> tuple[int, dict, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            url, data=sdp, content_type="application/sdp", headers=headers
        )
        return (
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content.decode(),
        )


async def _until(predicate, timeout: float = 15.0) -> bool:
    """Whether ``predicate`` (sync or async) holds within ``timeout``."""

    async def holds() -> bool:
        result = predicate()
        return bool(await result if asyncio.iscoroutine(result) else result)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await holds():
            return True
        await asyncio.sleep(0.2)
    return await holds()


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [
            float(p.pts * p.time_base)
            for p in container.demux(stream)
            if p.pts is not None
        ]
    return max(times) - min(times)


@pytest.mark.slow
async def test_rehearsal_streams_to_staff_only_then_goes_public_on_the_same_session(
    node,  # noqa: F811
    http,  # noqa: F811
    show,
    host,
    announced,
):
    staff = AsyncClient()
    await staff.aforce_login(host)
    viewer = AsyncClient()
    assert (await staff.post(f"/live/{show.slug}/stream/rehearse")).status_code == 200

    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    players = []
    try:
        assert publisher.status == 201
        session_id = publisher.location.rsplit("/", 1)[-1]
        await sync_to_async(show.refresh_from_db)()
        assert show.status == Show.Status.SCHEDULED
        assert show.is_rehearsing
        assert show.started_at is None
        assert show.recording_file == ""

        # A viewer reaches nothing: no WebRTC, no HLS.
        refused = await play(Poster(viewer).post, f"/live/{show.slug}/whep")
        assert refused.status == 409
        staff_player = await play(Poster(staff).post, f"/live/{show.slug}/whep")
        players.append(staff_player)
        assert staff_player.status == 201
        assert await _until(lambda: staff_player.frames > 10)

        async def staff_playlist() -> bool:
            answer = await staff.get(f"/live/{show.slug}/hls/index.m3u8")
            return answer.status_code == 200 and (
                answer.content.decode().count("#EXTINF") >= 3
            )

        assert await _until(staff_playlist)
        hidden = await viewer.get(f"/live/{show.slug}/hls/index.m3u8")
        assert hidden.status_code == 404
        assert (await viewer.get(f"/live/{show.slug}/hls/init.mp4")).status_code == 404

        # Nothing recorded, nothing told to the room or the site.
        recordings = Path(settings.SHOWFLOOR_RECORDINGS_DIR)
        assert not recordings.exists() or not any(recordings.iterdir())
        assert node.get(show.slug).status()["recording"] is False
        # Not even the publisher's state: the room must not learn of it.
        assert announced == []

        switched = await staff.post(f"/live/{show.slug}/stream/go-live")
        assert switched.status_code == 200
        assert switched.json()["status"] == "live"
        went_live = time.monotonic()
        frames_at_switch = staff_player.frames
        await sync_to_async(show.refresh_from_db)()
        assert show.status == Show.Status.LIVE
        assert show.started_at is not None
        assert show.recording_file
        assert [e["type"] for e in announced if e["type"] != "stream.status"] == [
            events.BRAND_LIVE,
            events.SHOW_STATUS,
        ]

        # The same publisher session carries on; the staff's video never stopped.
        broadcast = node.get(show.slug)
        assert broadcast.publisher_id == session_id
        assert broadcast.status()["recording"] is True
        assert publisher.pc.connectionState == "connected"
        assert await _until(lambda: staff_player.frames > frames_at_switch + 30)

        public = await play(Poster(viewer).post, f"/live/{show.slug}/whep")
        players.append(public)
        assert public.status == 201
        assert await _until(lambda: public.frames > 10)
        assert (
            await viewer.get(f"/live/{show.slug}/hls/index.m3u8")
        ).status_code == 200
        await asyncio.sleep(1)
        assert publisher.pc.connectionState == "connected"
        assert node.get(show.slug).publisher_id == session_id

        assert (
            await http.delete(publisher.location, show.stream_key)
        ).status_code == 200
        streamed_public = time.monotonic() - went_live
        # The encoder stopped; the show ends when the host says so.
        assert (await staff.post(f"/live/{show.slug}/stream/end")).status_code == 200
    finally:
        for player in players:
            await player.close()
        await publisher.close()

    await sync_to_async(show.refresh_from_db)()
    assert show.status == Show.Status.ENDED
    recording = Path(settings.SHOWFLOOR_RECORDINGS_DIR) / show.recording_file
    assert recording.is_file()
    # The rehearsal lasted over three seconds (three HLS segments): a
    # recording from the first frame would be that much longer.
    duration = _duration(recording)
    assert 0.5 < duration <= streamed_public + 0.5, (duration, streamed_public)


@pytest.mark.slow
async def test_a_moderator_cannot_switch_a_rehearsal_live(
    node,  # noqa: F811
    http,  # noqa: F811
    show,
    host,
    moderator,
):
    await sync_to_async(lifecycle.show_rehearsal_start)(show=show, user=host)
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    try:
        assert publisher.status == 201
        mod = AsyncClient()
        await mod.aforce_login(moderator)
        answer = await mod.post(f"/live/{show.slug}/stream/go-live")
        assert answer.status_code == 403
        # Staff all the same: a moderator watches the rehearsal.
        watching = await play(Poster(mod).post, f"/live/{show.slug}/whep")
        assert watching.status == 201
        await watching.close()
        await sync_to_async(show.refresh_from_db)()
        assert show.status == Show.Status.SCHEDULED
        assert show.is_rehearsing
        assert node.get(show.slug).status()["recording"] is False
        # Stopping the stream ends the rehearsal, not the show.
        assert (
            await http.delete(publisher.location, show.stream_key)
        ).status_code == 200
        await sync_to_async(show.refresh_from_db)()
        assert show.status == Show.Status.SCHEDULED
        assert show.rehearsing_since is None
    finally:
        await publisher.close()
