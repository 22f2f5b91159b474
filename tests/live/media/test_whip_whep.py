"""WHIP ingest and WHEP playback through the whole Django stack with aiortc
clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async

from live.media.clients import StampedVideoTrack, play, publish
from shows.models import Show

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def _status(show: Show) -> str:
    await sync_to_async(show.refresh_from_db)()
    return show.status


async def _wait(predicate, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_publish_and_play_moves_show_live_and_delivers_frames(
    node, http, show, host
):
    """A WHIP publisher makes the show live; two WHEP viewers get decoded frames,
    each starting at a keyframe. DELETE on the Location (OBS's "Stop
    streaming") ends the stream, not the show: the room hears ``stopped``, the
    next publisher carries on the same broadcast, and only the studio's "End
    show" ends the show."""
    url = f"/live/{show.slug}/whip"
    publisher = await publish(
        http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
    )
    again = None
    try:
        assert publisher.status == 201, publisher.body
        assert re.fullmatch(rf"/live/{show.slug}/whip/[\w-]+", publisher.location)
        assert await _status(show) == Show.Status.LIVE
        broadcast = node.get(show.slug)
        assert await _wait(lambda: broadcast.counters.frames_encoded > 5)

        players = [await play(http.post, f"/live/{show.slug}/whep") for _ in range(2)]
        assert [p.status for p in players] == [201, 201]
        assert all(p.location.startswith(f"/live/{show.slug}/whep/") for p in players)
        assert await _wait(lambda: all(p.frames >= 15 for p in players), 15)
        for viewer in broadcast.viewers.values():
            assert viewer.video.first_keyframe is True
        assert all(p.latencies_ms for p in players)
        assert max(max(p.latencies_ms) for p in players) < 5000
        for player in players:
            response = await http.delete(player.location)
            assert response.status_code == 200
            await player.close()
        assert broadcast.viewers == {}

        stopped = await http.delete(publisher.location, show.stream_key)
        assert stopped.status_code == 200
        assert await _status(show) == Show.Status.LIVE
        assert node.get(show.slug) is broadcast
        assert broadcast.publisher_state == "stopped"
        await sync_to_async(show.refresh_from_db)()
        assert show.publisher_gone_since is not None
        # The same session cannot be stopped twice.
        assert (
            await http.delete(publisher.location, show.stream_key)
        ).status_code == 404

        frames = broadcast.counters.frames_encoded
        again = await publish(
            http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
        )
        assert again.status == 201, again.body
        assert node.get(show.slug) is broadcast
        assert await _wait(lambda: broadcast.counters.frames_encoded > frames + 5)
        assert await _wait(lambda: broadcast.publisher_state == "connected")
        await sync_to_async(show.refresh_from_db)()
        assert show.publisher_gone_since is None

        ended = await http.end_show(show.slug, host)
        assert ended.status_code == 200
        assert await _status(show) == Show.Status.ENDED
        assert node.get(show.slug) is None
    finally:
        await publisher.close()
        if again is not None:
            await again.close()


async def test_whip_refuses_wrong_key_second_publisher_and_bad_offer(node, http, show):
    """A wrong key gets 401, a second publisher 409, a malformed offer 400 with a
    reason; none of them changes the show."""
    url = f"/live/{show.slug}/whip"
    wrong = await publish(
        http.post, url, "not-the-key", video=StampedVideoTrack(320, 240)
    )
    assert wrong.status == 401
    assert await _status(show) == Show.Status.SCHEDULED

    status, _headers, body = await http.post(
        url, "v=0\r\nthis is not sdp", show.stream_key
    )
    assert status == 400
    assert "offer" in body.lower()
    status, _headers, body = await http.post(url, "", show.stream_key)
    assert status == 400
    assert await _status(show) == Show.Status.SCHEDULED

    first = await publish(
        http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
    )
    try:
        assert first.status == 201
        second = await publish(
            http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
        )
        assert second.status == 409
        assert "already" in second.body
        assert await _status(show) == Show.Status.LIVE
    finally:
        await first.close()


async def test_whep_before_live_and_private_show_need(node, http, show):
    """WHEP on a show that is not live gets 409; a private show wants its code."""
    player = await play(http.post, f"/live/{show.slug}/whep")
    assert player.status == 409
    await sync_to_async(Show.objects.filter(pk=show.pk).update)(access_code="sesame")
    player = await play(http.post, f"/live/{show.slug}/whep")
    assert player.status == 401
    player = await play(http.post, f"/live/{show.slug}/whep", "sesame")
    assert player.status == 409  # right code, still not live


async def test_answers_offer_only_loopback_candidates(node, http, show):
    """Every ICE candidate the server offers (publisher and viewer answers) is on
    127.0.0.0/8, whatever interfaces the machine has."""
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    try:
        player = await play(http.post, f"/live/{show.slug}/whep")
        try:
            for answer in (publisher.body, player.body):
                candidates = re.findall(
                    r"a=candidate:\S+ \d+ \w+ \d+ (\S+) \d+", answer
                )
                assert candidates, answer
                assert all(address.startswith("127.") for address in candidates)
        finally:
            await player.close()
    finally:
        await publisher.close()
