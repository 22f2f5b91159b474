"""The publisher's connection over time, and that every media resource is
released on every exit path."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest
from aiortc import RTCPeerConnection
from asgiref.sync import sync_to_async

from live.media.clients import StampedVideoTrack, play, publish
from shows.models import Show
from shows.services import stream

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def _wait(predicate, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_publisher_drop_is_reported_after_grace_and_show_stays_live(
    node, http, show, media_settings, monkeypatch
):
    """A publisher that vanishes without DELETE is reported as reconnecting, then
    lost after the grace period; the show stays live and a new WHIP session
    takes over."""
    media_settings.SHOWFLOOR_PUBLISHER_GRACE_SECONDS = 1
    reported: list[str] = []
    original = stream.stream_publisher_state

    def record(*, show_id: int, state: str) -> None:
        reported.append(state)
        original(show_id=show_id, state=state)

    monkeypatch.setattr(stream, "stream_publisher_state", record)
    url = f"/live/{show.slug}/whip"
    first = await publish(
        http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
    )
    assert first.status == 201
    assert await _wait(lambda: "connected" in reported)
    await first.close()
    assert await _wait(lambda: "lost" in reported, 8)
    assert reported[-2:] == ["reconnecting", "lost"]
    await sync_to_async(show.refresh_from_db)()
    assert show.status == Show.Status.LIVE

    again = await publish(
        http.post, url, show.stream_key, video=StampedVideoTrack(320, 240)
    )
    try:
        assert again.status == 201
        assert await _wait(lambda: reported[-1] == "connected")
    finally:
        await again.close()


def _peer_connections() -> int:
    gc.collect()
    # type(), not isinstance(): isinstance asks an object for its __class__,
    # which makes a lazy object left by an earlier request evaluate itself
    # (django-csp's nonce raises once its header is written).
    return sum(1 for o in gc.get_objects() if issubclass(type(o), RTCPeerConnection))


def _threads() -> list[str]:
    # Pool workers (asyncio's default executor, asgiref's) are created lazily
    # up to a fixed maximum and reused; every other thread must be gone.
    return [
        t.name
        for t in threading.enumerate()
        if not t.name.startswith(("asyncio_", "ThreadPoolExecutor-"))
    ]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_open_close_cycles_leave_nothing_behind(node, http, show, host):
    """100 viewer sessions and 5 whole broadcasts opened, stopped by the
    encoder (DELETE) and ended by the host leave no peer connection, thread or
    file descriptor behind."""

    async def broadcast_cycle() -> None:
        await sync_to_async(Show.objects.filter(pk=show.pk).update)(
            status=Show.Status.SCHEDULED
        )
        publisher = await publish(
            http.post,
            f"/live/{show.slug}/whip",
            show.stream_key,
            video=StampedVideoTrack(160, 120),
        )
        assert publisher.status == 201
        broadcast = node.get(show.slug)
        assert await _wait(lambda: broadcast.counters.keyframes > 0)
        await http.delete(publisher.location, show.stream_key)
        await publisher.close()
        assert (await http.end_show(show.slug, host)).status_code == 200

    async def viewer_cycle(index: int) -> None:
        player = await play(http.post, f"/live/{show.slug}/whep", stamps=False)
        assert player.status == 201
        if index % 10 == 0:
            assert await _wait(lambda: player.frames > 0)
        else:
            assert await _wait(lambda: player.pc.connectionState == "connected")
        assert (await http.delete(player.location)).status_code == 200
        await player.close()

    await broadcast_cycle()  # warm up lazily created executors
    await asyncio.sleep(0.5)
    threads, fds, pcs = _threads(), _fds(), _peer_connections()

    for _ in range(5):
        await broadcast_cycle()
    await sync_to_async(Show.objects.filter(pk=show.pk).update)(
        status=Show.Status.SCHEDULED
    )
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(160, 120),
    )
    for index in range(100):
        await viewer_cycle(index)
    assert node.get(show.slug).viewers == {}
    await http.delete(publisher.location, show.stream_key)
    await publisher.close()
    del publisher
    assert (await http.end_show(show.slug, host)).status_code == 200

    assert await _wait(lambda: len(_threads()) <= len(threads), 5), _threads()
    assert await _wait(lambda: _fds() <= fds, 5)
    assert _peer_connections() <= pcs


async def test_show_ended_elsewhere_closes_its_broadcast(node, http, show, monkeypatch):
    """A show ended outside the media node (admin, sweeper) has its broadcast
    closed within the watch interval, and its recording kept."""
    from live.media import node as node_module
    from shows import services

    monkeypatch.setattr(node_module, "WATCH_SECONDS", 0.2)
    camera = StampedVideoTrack(160, 120)
    url = f"/live/{show.slug}/whip"
    publisher = await publish(http.post, url, show.stream_key, video=camera)
    try:
        assert publisher.status == 201
        broadcast = node.get(show.slug)
        assert await _wait(lambda: broadcast.counters.keyframes > 1)
        await sync_to_async(services.show_end)(show=show)
        assert await _wait(lambda: node.get(show.slug) is None, 5)
        assert broadcast.closed
        assert publisher.pc.connectionState in ("closed", "failed", "connected")
        # The recording is handed over right after the broadcast closed.
        for _ in range(50):
            await sync_to_async(show.refresh_from_db)()
            if show.media_node == "":
                break
            await asyncio.sleep(0.1)
    finally:
        await publisher.close()
    assert show.status == Show.Status.ENDED
    assert show.media_node == ""
    assert stream.stream_recording_path(show=show) is not None
