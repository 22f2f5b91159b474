"""The media endpoints' HTTP contract apart from the media itself: studio
controls, authorization, methods and content types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from realtime import outbox
from shows.models import Show
from shows.services import stream
from shows.services.access import ACCESS_CODE_ATTEMPTS
from tests.shows.test_access import clear_access_limits

pytestmark = pytest.mark.django_db


@pytest.fixture
def access_limits_cleared() -> Iterator[None]:
    clear_access_limits()
    yield
    clear_access_limits()


@pytest.fixture
def host_client(client, host):
    client.force_login(host)
    return client


def test_host_rotates_stream_key_and_old_key_stops_working(host_client, show):
    """Rotate gives a new key; WHIP with the old one is refused with 401."""
    old = show.stream_key
    response = host_client.post(f"/live/{show.slug}/stream/key")
    assert response.status_code == 200
    show.refresh_from_db()
    assert response.json()["stream_key"] == show.stream_key != old
    refused = host_client.post(
        f"/live/{show.slug}/whip",
        data="v=0\r\n",
        content_type="application/sdp",
        headers={"Authorization": f"Bearer {old}"},
    )
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")


def test_stream_controls_are_for_the_brands_staff_only(client, make_user, show):
    """A viewer (or anonymous visitor) cannot read the stream state, rotate the
    key or end the show: the show's studio routes answer 404."""
    key = show.stream_key
    assert client.get(f"/live/{show.slug}/stream").status_code == 404
    client.force_login(make_user("Vera Viewer"))
    assert client.post(f"/live/{show.slug}/stream/key").status_code == 404
    assert client.post(f"/live/{show.slug}/stream/end").status_code == 404
    show.refresh_from_db()
    assert show.stream_key == key
    assert show.status == Show.Status.SCHEDULED


def test_host_ends_a_live_show_from_the_studio(host_client, live_show):
    """End show ends a live show even with nobody publishing, and the status
    endpoint says so."""
    response = host_client.post(f"/live/{live_show.slug}/stream/end")
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.ENDED
    state = host_client.get(f"/live/{live_show.slug}/stream").json()
    assert state["status"] == "ended"
    assert state["publisher"] == "none"


def test_whip_methods_and_content_type(client, show):
    """OPTIONS advertises SDP, GET is refused, a non-SDP body is a 400 with a
    reason, trickle PATCH is 405 and an unknown session is 404."""
    options = client.options(f"/live/{show.slug}/whip")
    assert options.status_code == 204
    assert options["Accept-Post"] == "application/sdp"
    assert client.get(f"/live/{show.slug}/whip").status_code == 405
    wrong_type = client.post(
        f"/live/{show.slug}/whip",
        data={"sdp": "v=0"},
        headers={"Authorization": f"Bearer {show.stream_key}"},
    )
    assert wrong_type.status_code == 400
    assert "application/sdp" in wrong_type.json()["message"]
    session = f"/live/{show.slug}/whip/nope"
    assert client.patch(session).status_code == 405
    gone = client.delete(
        session, headers={"Authorization": f"Bearer {show.stream_key}"}
    )
    assert gone.status_code == 404
    assert client.delete(session).status_code == 401
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED


def test_whip_on_an_ended_show_is_refused(client, live_show):
    """An ended show cannot go live again."""
    from shows import services

    services.show_end(show=live_show)
    response = client.post(
        f"/live/{live_show.slug}/whip",
        data="v=0\r\n",
        content_type="application/sdp",
        headers={"Authorization": f"Bearer {live_show.stream_key}"},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "show_ended"


def test_private_show_hls_and_recording_need_the_code(client, show):
    """The HLS files and the recording of a private show need its access code;
    names outside the playlist's pattern are 404."""
    Show.objects.filter(pk=show.pk).update(access_code="sesame")
    assert client.get(f"/live/{show.slug}/hls/index.m3u8").status_code == 401
    assert client.get(f"/live/{show.slug}/recording.mp4").status_code == 401
    with_code = client.get(
        f"/live/{show.slug}/hls/index.m3u8", headers={"Authorization": "Bearer sesame"}
    )
    assert with_code.status_code == 404  # right code, nothing written yet
    assert client.get(f"/live/{show.slug}/hls/settings.py").status_code == 404


def test_wrong_codes_on_the_page_whep_and_hls_share_one_limit(
    client, show, access_limits_cleared
):
    """Wrong codes sent to the show page, WHEP and HLS count against one limit
    per address; past it the right code gets 429 with Retry-After everywhere."""
    Show.objects.filter(pk=show.pk).update(access_code="sesame")
    page = reverse("show_detail", args=[show.slug])
    hls = f"/live/{show.slug}/hls/index.m3u8"
    whep = f"/live/{show.slug}/whep"

    def whep_with(code: str):
        return client.post(
            whep,
            data="v=0\r\n",
            content_type="application/sdp",
            headers={"Authorization": f"Bearer {code}"},
        )

    for _ in range(4):
        assert client.post(page, {"code": "guess"}).status_code == 403
    for _ in range(3):
        assert whep_with("guess").status_code == 401
    for _ in range(ACCESS_CODE_ATTEMPTS - 7):
        wrong = client.get(hls, headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401
    for locked in (
        client.get(hls, headers={"Authorization": "Bearer sesame"}),
        whep_with("sesame"),
        client.get(
            f"/live/{show.slug}/recording.mp4",
            headers={"Authorization": "Bearer sesame"},
        ),
    ):
        assert locked.status_code == 429
        assert locked.json()["code"] == "too_many_attempts"
        assert 0 < int(locked["Retry-After"]) <= 15 * 60
    refused = client.post(page, {"code": "sesame"})
    assert refused.status_code == 429
    assert "Too many wrong codes" in refused.content.decode()


def test_right_bearer_code_does_not_use_up_the_limit(
    client, show, access_limits_cleared
):
    """A player fetching many HLS files with the right code is never locked out."""
    Show.objects.filter(pk=show.pk).update(access_code="sesame")
    for _ in range(ACCESS_CODE_ATTEMPTS * 2):
        response = client.get(
            f"/live/{show.slug}/hls/index.m3u8",
            headers={"Authorization": "Bearer sesame"},
        )
        assert response.status_code == 404  # allowed; nothing written yet


def _write_hls(root: Path, slug: str) -> None:
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text("#EXTM3U\n")
    (folder / "seg-00001.m4s").write_bytes(b"segment")
    (folder / "init.mp4").write_bytes(b"init")


def test_private_hls_and_recording_stay_out_of_shared_caches(
    client, show, settings, tmp_path, access_limits_cleared
):
    """A private show's playlist, segments and recording are sent
    ``private, no-store``; a public show's keep their caching."""
    settings.SHOWFLOOR_HLS_DIR = tmp_path / "hls"
    settings.SHOWFLOOR_RECORDINGS_DIR = tmp_path / "recordings"
    _write_hls(tmp_path / "hls", show.slug)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "show.mp4").write_bytes(b"\0" * 64)
    Show.objects.filter(pk=show.pk).update(recording_file="show.mp4")

    def headers(name: str, **extra: str) -> str:
        response = client.get(f"/live/{show.slug}/{name}", headers=extra)
        assert response.status_code in (200, 206), response.content
        return str(response.get("Cache-Control", ""))

    assert headers("hls/index.m3u8") == "no-cache"
    assert headers("hls/seg-00001.m4s") == "public, max-age=60, immutable"
    assert headers("hls/init.mp4") == "public, max-age=60, immutable"
    assert "no-store" not in headers("recording.mp4")

    Show.objects.filter(pk=show.pk).update(access_code="sesame")
    bearer = {"Authorization": "Bearer sesame"}
    for name in ("hls/index.m3u8", "hls/seg-00001.m4s", "hls/init.mp4"):
        assert headers(name, **bearer) == "private, no-store"
    assert headers("recording.mp4", **bearer) == "private, no-store"
    assert headers("recording.mp4", Range="bytes=0-9", **bearer) == (
        "private, no-store"
    )


def test_show_page_renders_player_config_and_studio_the_publisher(host_client, show):
    """The show page carries the player's endpoints (no stream key); the studio
    carries the stream key and the WHIP URL for OBS."""
    page = host_client.get(f"/shows/{show.slug}/").content.decode()
    assert 'id="player-config"' in page
    assert f"/live/{show.slug}/whep" in page
    assert show.stream_key not in page
    studio = host_client.get(f"/shows/{show.slug}/studio/").content.decode()
    assert show.stream_key in studio
    assert f"http://testserver/live/{show.slug}/whip" in studio
    assert 'id="publish-i18n"' in studio


def test_a_live_show_nobody_streams_to_is_ended_by_the_sweeper_and_says_why(
    host_client, live_show, settings
):
    """Once the encoder stopped (or was lost), the studio's status says when
    the show will end by itself; the sweeper ends it once
    ``SHOWFLOOR_ABANDONED_SHOW_SECONDS`` passed (not before), once, with
    ``reason: abandoned`` in the room's ``show.status``. A publisher coming
    back in time keeps it live."""
    settings.SHOWFLOOR_ABANDONED_SHOW_SECONDS = 600
    stream.stream_publisher_state(show_id=live_show.pk, state="stopped")
    live_show.refresh_from_db()
    gone = live_show.publisher_gone_since
    assert gone is not None
    # Later reports while still gone keep the first moment.
    stream.stream_publisher_state(show_id=live_show.pk, state="lost")
    live_show.refresh_from_db()
    assert live_show.publisher_gone_since == gone
    state = host_client.get(f"/live/{live_show.slug}/stream").json()
    assert state["auto_end_at"] == int(
        (gone + timedelta(seconds=600)).timestamp() * 1000
    )

    assert stream.stream_abandoned_end_due(now=gone + timedelta(seconds=599)) == 0
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.LIVE

    seq = outbox.current_seq(live_show.pk)
    assert stream.stream_abandoned_end_due(now=gone + timedelta(seconds=601)) == 1
    assert stream.stream_abandoned_end_due(now=gone + timedelta(seconds=700)) == 0
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.ENDED
    assert live_show.publisher_gone_since is None
    events = [json.loads(e) for _s, e in outbox.events_between(live_show.pk, seq)]
    assert [(e["type"], e.get("status"), e.get("reason")) for e in events] == [
        ("show.status", "ended", "abandoned")
    ]
    assert (
        host_client.get(f"/live/{live_show.slug}/stream").json()["auto_end_at"] is None
    )


def test_a_publisher_back_in_time_keeps_the_show_live(live_show, settings):
    """``connected`` clears the moment the stream went away: the sweeper then
    leaves the show alone however long ago that was."""
    settings.SHOWFLOOR_ABANDONED_SHOW_SECONDS = 60
    stream.stream_publisher_state(show_id=live_show.pk, state="reconnecting")
    stream.stream_publisher_state(show_id=live_show.pk, state="connected")
    live_show.refresh_from_db()
    assert live_show.publisher_gone_since is None
    later = timezone.now() + timedelta(hours=5)
    assert stream.stream_abandoned_end_due(now=later) == 0
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.LIVE
