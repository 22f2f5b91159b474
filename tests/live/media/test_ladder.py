"""The rendition ladder: the policy that moves a WebRTC viewer between
renditions, a viewer moved to the lower one at its keyframe, and the HLS
master playlist that lists both."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from typing import Any

import av
import pytest

from live.media import ladder
from live.media.clients import StampedVideoTrack, play, publish
from live.media.ladder import LadderPolicy, RateMeter

RATES = [2_000_000, 500_000]


def _feed(policy: LadderPolicy, start: float, end: float, estimate: float) -> list:
    """Estimates every 100 ms from ``start`` to ``end``; the levels decided."""
    levels = []
    now = start
    while now < end:
        policy.on_estimate(now, estimate)
        levels.append((round(now, 1), policy.decide(now, RATES)))
        now += 0.1
    return levels


def test_policy_goes_down_when_the_estimate_stays_below_the_rendition():
    """A low estimate moves the viewer down after ``DOWN_HOLD`` seconds, not
    at the first one; a short dip does not."""
    policy = LadderPolicy(levels=2)
    _feed(policy, 0, 5, 3_000_000)
    assert policy.level == 0
    _feed(policy, 5, 5.5, 600_000)  # a dip of half a second
    _feed(policy, 5.5, 7, 3_000_000)
    assert policy.level == 0
    levels = _feed(policy, 7, 9, 600_000)
    moved = next(t for t, level in levels if level == 1)
    assert 7 + ladder.DOWN_HOLD <= moved <= 7 + ladder.DOWN_HOLD + 0.2
    assert policy.switches == 1


def test_policy_goes_down_on_sustained_loss_only():
    policy = LadderPolicy(levels=2)
    t = 0
    policy.on_loss(t, 0.3)
    assert policy.decide(t, RATES) == 0  # one lossy report
    policy.on_loss(t + 1, 0.01)
    policy.on_loss(t + 2, 0.3)
    assert policy.decide(t + 2, RATES) == 0
    policy.on_loss(t + 3, 0.12)
    assert policy.decide(t + 3, RATES) == 1
    policy.on_loss(t + 4, 0.5)
    policy.on_loss(t + 5, 0.5)
    assert policy.decide(t + 5, RATES) == 1  # no lower rendition


def test_policy_of_a_viewer_started_low_goes_up_like_any_other():
    """A viewer whose player asked to start low starts there, and goes up
    when its estimate allows, as any viewer would."""
    low = LadderPolicy(levels=2, level=1)
    levels = _feed(low, 0, 10, 3_000_000)
    assert levels[0][1] == 1
    assert levels[-1][1] == 0


def test_policy_goes_up_only_after_the_estimate_held_comfortably_above():
    """Up needs ``UP_HOLD`` seconds of an estimate ``UP_RATIO`` times the
    higher rendition's rate; an estimate just above it, or a loss, is not
    enough."""
    policy = LadderPolicy(levels=2)
    _feed(policy, 0, 2, 300_000)
    assert policy.level == 1
    _feed(policy, 2, 12, 2_100_000)  # above, but not comfortably
    assert policy.level == 1
    _feed(policy, 12, 15, 3_000_000)
    policy.on_loss(15, 0.05)  # a loss restarts the wait
    levels = _feed(policy, 15, 25, 3_000_000)
    moved = next(t for t, level in levels if level == 0)
    assert 15 + ladder.UP_HOLD <= moved <= 15 + ladder.UP_HOLD + 0.2


def test_policy_probes_up_rarely_and_backs_off_when_the_link_is_capped():
    """On a link capped below the high rendition the estimate never shows
    room (a receive-side estimator reports at most 1.5 times what it gets):
    the viewer tries the higher rendition after ``PROBE_FIRST`` calm seconds,
    falls back within a second or two, and waits twice as long each time."""
    policy = LadderPolicy(levels=2)
    capped = 550_000
    ups = []
    now = 0.0
    while now < 600:
        # On high the link is congested; on low it carries the stream.
        estimate = 0.85 * capped if policy.level == 0 else 1.5 * RATES[1]
        policy.on_estimate(now, estimate)
        before = policy.level
        if policy.decide(now, RATES) < before:
            ups.append(now)
        now += 0.1
    # Down at the start; up (and back down) at ~30, ~90, ~210, ~450 s.
    assert 7 <= policy.switches <= 10
    assert len(ups) <= 4
    assert ups[0] >= ladder.PROBE_FIRST
    gaps = [later - earlier for earlier, later in itertools.pairwise(ups)]
    assert all(b > a * 1.5 for a, b in itertools.pairwise(gaps)), gaps


def test_rate_meter_counts_the_last_window():
    meter = RateMeter(window=2.0)
    for index in range(60):  # 30 frames a second of 1,000 bytes
        meter.add(index / 30, 1000)
    assert meter.rate(59 / 30) == pytest.approx(240_000, rel=0.05)
    assert meter.rate(10) == 0


async def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


@pytest.fixture
def ladder_settings(media_settings: Any) -> Any:
    media_settings.SHOWFLOOR_VIDEO_LADDER = True
    media_settings.SHOWFLOOR_VIDEO_LOW_MAX_WIDTH = 160
    media_settings.SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT = 120
    media_settings.SHOWFLOOR_VIDEO_LOW_BITRATE = 100_000
    return media_settings


def _remb(sender: Any, bitrate: int) -> Any:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    return RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP,
        ssrc=1,
        media_ssrc=0,
        fci=pack_remb_fci(bitrate, [sender._ssrc]),
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_viewer_with_a_low_estimate_moves_to_the_low_rendition_at_a_keyframe(
    ladder_settings, node, http, show
):
    """A WHEP viewer (aiortc, whose receiver sends REMB) starts on 320x240;
    fed estimates far below that rendition's rate it moves to 160x120, and the
    first packet it gets from there is a keyframe, with pts still rising. HLS
    lists both renditions in ``master.m3u8``; the low one's segments are
    160x120."""
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    player = None
    try:
        assert publisher.status == 201, publisher.body
        broadcast = node.get(show.slug)
        assert await _wait(lambda: broadcast.counters.frames_encoded > 5)
        player = await play(http.post, f"/live/{show.slug}/whep", stamps=False)
        assert player.status == 201
        (viewer,) = broadcast.viewers.values()
        track = viewer.video
        received: list[av.Packet] = []
        recv = track.recv

        async def recording_recv() -> av.Packet:
            packet = await recv()
            received.append(packet)
            return packet

        track.recv = recording_recv  # what aiortc's sender packetizes
        assert await _wait(lambda: player.frames >= 10, 15)
        # aiortc's receiver estimates the bandwidth and says so (REMB).
        assert viewer.ladder is not None
        assert await _wait(lambda: viewer.ladder.estimate is not None, 10)
        assert track.rendition == 0

        # From here on the estimates are the test's: the client's stop.
        for receiver in player.pc.getReceivers():
            receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
        (sender,) = [s for s in viewer.pc.getSenders() if s.track is track]
        for _ in range(15):  # 1.5 s of an estimate of 10 kbit/s
            await sender._handle_rtcp_packet(_remb(sender, 10_000))
            await asyncio.sleep(0.1)
        assert await _wait(lambda: track.rendition == 1, 5)
        frames_then = player.frames
        assert await _wait(lambda: player.frames >= frames_then + 10, 10)

        decoder = av.CodecContext.create("h264", "r")
        sizes: list[tuple[int, int]] = []
        for packet in received:
            frames = decoder.decode(av.Packet(bytes(packet)))
            sizes.extend((f.width, f.height) for f in frames)
        switch = sizes.index((160, 120))
        assert set(sizes[:switch]) == {(320, 240)}
        assert set(sizes[switch:]) == {(160, 120)}
        assert received[switch].is_keyframe  # zerolatency: one packet a frame
        pts = [packet.pts or 0 for packet in received]
        assert all(a < b for a, b in itertools.pairwise(pts))

        master = await _get_text(http, f"/live/{show.slug}/hls/master.m3u8")
        streams = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
        assert [uri for _, uri in streams] == ["index.m3u8", "low-index.m3u8"]
        attribute = re.compile(r'([A-Z-]+)=("[^"]*"|[^,]*)')
        high, low = (dict(attribute.findall(a)) for a, _ in streams)
        assert high["RESOLUTION"] == "320x240"
        assert low["RESOLUTION"] == "160x120"
        assert int(high["BANDWIDTH"]) > int(low["BANDWIDTH"]) >= 100_000
        assert re.fullmatch(r'"avc1\.42[0-9a-f]{4},opus"', low["CODECS"])
        playlist = await _get_text(http, f"/live/{show.slug}/hls/low-index.m3u8")
        assert '#EXT-X-MAP:URI="low-init.mp4"' in playlist
        segment = re.findall(r"^(low-seg-\d+\.m4s)$", playlist, re.M)[-1]
        init = await http.get(f"/live/{show.slug}/hls/low-init.mp4")
        data = await http.get(f"/live/{show.slug}/hls/{segment}")
        assert init.status_code == data.status_code == 200
        assert data["Cache-Control"] == "public, max-age=60, immutable"
        assert _first_frame_size(init.content + data.content) == (160, 120)
    finally:
        if player is not None:
            await player.close()
        await publisher.close()


async def _get_text(http: Any, url: str, timeout: float = 10) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        response = await http.get(url)
        if response.status_code == 200:
            assert response["Cache-Control"] == "no-cache"
            text = response.content.decode()
            if "#EXT-X-STREAM-INF" in text or "#EXTINF" in text:
                return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never came")


def _first_frame_size(data: bytes) -> tuple[int, int]:
    import io

    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def _frames_into(track: Any, sizes: list[tuple[int, int]]) -> None:
    from aiortc.mediastreams import MediaStreamError

    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            sizes.append((frame.width, frame.height))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_an_edges_pull_gets_the_lower_rendition_only_while_it_asks(
    ladder_settings, node, http, show
):
    """An edge's pull (signed, one video m-line per rendition) gets the
    highest rendition at once and the lower one only between its ``PATCH``
    asking for it and the one giving it up, starting at a keyframe; a PATCH
    unsigned, badly signed, malformed or on a viewer's session changes
    nothing."""
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from django.test import AsyncClient

    from live.media.edge import EDGE_HEADER, edge_token
    from live.media.network import rtc_configuration

    client = AsyncClient()
    publisher = await publish(
        http.post, f"/live/{show.slug}/whip", show.stream_key,
        video=StampedVideoTrack(320, 240),
    )  # fmt: skip
    pc = RTCPeerConnection(configuration=rtc_configuration())
    viewer = None
    tasks: list[asyncio.Task[None]] = []
    try:
        assert publisher.status == 201, publisher.body
        transceivers = [
            pc.addTransceiver(kind, direction="recvonly")
            for kind in ("video", "audio", "video")
        ]
        await pc.setLocalDescription(await pc.createOffer())
        signed = {EDGE_HEADER: edge_token(show.slug, "media-test")}
        answer = await client.post(
            f"/live/{show.slug}/whep",
            data=pc.localDescription.sdp,
            content_type="application/sdp",
            headers=signed,
        )
        assert answer.status_code == 201, answer.content
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=answer.content.decode(), type="answer")
        )
        assert transceivers[2].currentDirection == "recvonly"
        high: list[tuple[int, int]] = []
        low: list[tuple[int, int]] = []
        tasks = [
            asyncio.ensure_future(_frames_into(transceivers[0].receiver.track, high)),
            asyncio.ensure_future(_frames_into(transceivers[2].receiver.track, low)),
        ]
        session = answer["Location"]
        broadcast = node.get(show.slug)
        (link,) = broadcast.viewers.values()

        async def patch(body: str, headers: dict[str, str] | None = None) -> Any:
            return await client.patch(
                session, data=body, content_type="application/json",
                headers=signed if headers is None else headers,
            )  # fmt: skip

        assert await _wait(lambda: len(high) >= 20, 15)
        assert set(high) == {(320, 240)}
        assert low == []  # nobody asked: the lower rendition is not sent

        assert (await patch('{"renditions": [1]}', headers={})).status_code == 405
        bad = {EDGE_HEADER: edge_token(show.slug + "-other", "media-test")}
        assert (await patch('{"renditions": [1]}', headers=bad)).status_code == 403
        for body in ("[1]", '{"renditions": "1"}', '{"renditions": [true]}', "{"):
            assert (await patch(body)).status_code == 400, body
        assert not link.lower[0].active

        player = await play(http.post, f"/live/{show.slug}/whep", stamps=False)
        viewer = player
        viewer_session = player.location
        refused = await client.patch(
            viewer_session, data='{"renditions": [1]}',
            content_type="application/json", headers=signed,
        )  # fmt: skip
        assert refused.status_code == 404

        assert (await patch('{"renditions": [1]}')).status_code == 204
        assert await _wait(lambda: len(low) >= 10, 10)
        assert set(low) == {(160, 120)}
        assert link.lower[0].first_keyframe is True  # decodable from its first

        assert (await patch('{"renditions": []}')).status_code == 204
        assert not link.lower[0].active
        low_then, high_then = len(low), len(high)
        assert await _wait(lambda: len(high) >= high_then + 20, 10)
        assert len(low) <= low_then + 2  # at most what was on its way
    finally:
        for task in tasks:
            task.cancel()
        await pc.close()
        if viewer is not None:
            await viewer.close()
        await publisher.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_viewer_whose_player_says_its_link_is_slow_starts_low(
    ladder_settings, node, http, show
):
    """``?start=low`` (the player's network is slow): the viewer's very first
    picture is the lower rendition's keyframe, with no second on the high
    one; the same POST unrouted by ``?node=`` keeps the hint."""
    from live.media.registry import NodeReport, routed_whep_url

    publisher = await publish(
        http.post, f"/live/{show.slug}/whip", show.stream_key,
        video=StampedVideoTrack(320, 240),
    )  # fmt: skip
    player = None
    try:
        assert publisher.status == 201, publisher.body
        broadcast = node.get(show.slug)
        assert await _wait(lambda: broadcast.counters.frames_encoded > 5)
        player = await play(http.post, f"/live/{show.slug}/whep?start=low")
        assert player.status == 201, player.body
        (viewer,) = broadcast.viewers.values()
        assert viewer.ladder is not None
        assert viewer.ladder.level == 1
        assert await _wait(lambda: player.frames >= 10, 15)
        assert set(player.sizes) == {(160, 120)}
        assert viewer.video.first_keyframe is True
    finally:
        if player is not None:
            await player.close()
        await publisher.close()
    report = NodeReport(node="b", url="http://b.test", viewers=0, broadcasts=0,
                        cpu=0.0, at=0)  # fmt: skip
    assert routed_whep_url(report, "s", start="low") == (
        "http://b.test/live/s/whep?start=low&node=b"
    )
