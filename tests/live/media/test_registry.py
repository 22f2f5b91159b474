"""Two media nodes (two Daphne processes with their own node ids) against the
real Redis: one publisher per show whichever node it reaches, viewers sent on
to the show's origin, and a dead node's shows free for another node once its
lock has expired."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from live.media.clients import StampedVideoTrack, play, publish
from live.media.registry import NodeReport
from tests.live.media.nodes import (
    LOCK_OUTLIVES_NODE,
    LOCK_SECONDS,
    Poster,
    media_nodes,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def test_one_publisher_per_show_across_nodes_and_viewers_follow_the_origin(
    show, redis_client, media_settings, tmp_path
):
    """A publisher on node A holds the show: a second publisher on node B gets
    ``409 publisher_elsewhere`` (naming no node); a viewer POSTing WHEP to B
    is redirected (307) to A's WHEP URL and plays. Both nodes report their
    load. Once A is killed, B still refuses until A's lock expires, then
    accepts a publisher."""
    from django.conf import settings

    prefix = settings.REDIS_PREFIX
    async with aiohttp.ClientSession() as session:
        post = Poster(session)
        # Routing by viewers only: the origin's CPU on a busy machine could
        # pass routing's limit and send the viewer to an edge instead.
        with media_nodes(
            ["media-a", "media-b"], tmp_path, SHOWFLOOR_MEDIA_ROUTE_CPU=100.0
        ) as (a, b):
            first = await publish(
                post, f"{a.base}/live/{show.slug}/whip", show.stream_key,
                video=StampedVideoTrack(320, 240),
            )  # fmt: skip
            publishers = [first]
            player = None
            try:
                assert first.status == 201, first.body
                second = await publish(
                    post, f"{b.base}/live/{show.slug}/whip", show.stream_key
                )
                publishers.append(second)
                assert second.status == 409
                problem = json.loads(second.body)
                assert problem["code"] == "publisher_elsewhere"
                assert "media-a" not in second.body
                assert a.base not in second.body

                player = await play(post, f"{b.base}/live/{show.slug}/whep")
                assert player.status == 201, player.body
                assert post.redirects == [
                    (307, f"{a.base}/live/{show.slug}/whep?node=media-a")
                ]
                assert player.location.startswith(f"/live/{show.slug}/whep/")
                assert await wait_until(lambda: player.frames >= 10, 15)

                def report(name: str) -> NodeReport | None:
                    raw = redis_client.get(f"{prefix}:media:node:{name}")
                    return NodeReport.parse(raw) if raw else None

                # Reports come every second: wait for one after the player.
                assert await wait_until(
                    lambda: (
                        (r := report("media-a")) is not None
                        and (r.broadcasts, r.viewers) == (1, 1)
                    ),
                    5,
                )
                a_report, b_report = report("media-a"), report("media-b")
                assert a_report is not None
                assert b_report is not None
                assert (a_report.url, b_report.url) == (a.base, b.base)
                assert (b_report.broadcasts, b_report.viewers) == (0, 0)
                assert a_report.cpu > 0

                a.process.kill()
                a.process.join(timeout=10)
                killed_at = time.monotonic()
                early = await publish(
                    post, f"{b.base}/live/{show.slug}/whip", show.stream_key
                )
                publishers.append(early)
                assert early.status == 409
                assert time.monotonic() - killed_at < LOCK_OUTLIVES_NODE

                taken = None
                while time.monotonic() - killed_at < LOCK_SECONDS + 10:
                    await asyncio.sleep(0.5)
                    taken = await publish(
                        post,
                        f"{b.base}/live/{show.slug}/whip",
                        show.stream_key,
                        video=StampedVideoTrack(320, 240),
                    )
                    publishers.append(taken)
                    if taken.status != 409:
                        break
                assert taken is not None
                assert taken.status == 201, taken.body
                assert time.monotonic() - killed_at >= LOCK_OUTLIVES_NODE
                lock = redis_client.get(f"{prefix}:media:publisher:{show.slug}")
                assert lock == b"media-b"
            finally:
                if player is not None:
                    await player.close()
                for publisher in publishers:
                    await publisher.close()


async def test_a_node_whose_lock_another_node_took_closes_its_copy_not_the_show(
    node, http, show, redis_client
):
    """A node cut off from Redis for longer than the TTL may find its show's
    lock held by another node: its heartbeat closes the local broadcast and
    leaves the show live and the other node's lock alone."""
    from asgiref.sync import sync_to_async
    from django.conf import settings

    from shows.models import Show

    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    try:
        assert publisher.status == 201, publisher.body
        lock = f"{settings.REDIS_PREFIX}:media:publisher:{show.slug}"
        assert redis_client.get(lock) == settings.SHOWFLOOR_MEDIA_NODE.encode()
        await node.heartbeat.beat()
        assert node.get(show.slug) is not None

        redis_client.set(lock, b"media-elsewhere")
        await node.heartbeat.beat()
        assert node.get(show.slug) is None
        assert redis_client.get(lock) == b"media-elsewhere"
        await sync_to_async(show.refresh_from_db)()
        assert show.status == Show.Status.LIVE
    finally:
        await publisher.close()


async def test_ending_the_broadcast_frees_the_show_for_any_node(
    node, http, show, host, redis_client
):
    """The host's End show closes the broadcast and releases its lock."""
    from django.conf import settings

    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    try:
        assert publisher.status == 201, publisher.body
        lock = f"{settings.REDIS_PREFIX}:media:publisher:{show.slug}"
        assert redis_client.get(lock) is not None
        ended = await http.end_show(show.slug, host)
        assert ended.status_code == 200
        assert redis_client.get(lock) is None
    finally:
        await publisher.close()
