"""A show's origin dies while an edge pulls it (docs/video.md, "Several media
nodes", "When the origin dies"): two Daphne nodes against the real Redis, the
origin killed with SIGKILL. The edge closes its viewers and its pull, players
asking again get ``409 not_live``, and once the dead node's lock has expired
the publisher's return to the edge makes that node the show's origin, where
viewers play again."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from live.media.clients import Player, Publisher, StampedVideoTrack, play, publish
from live.media.registry import NodeReport
from tests.live.media.nodes import (
    LOCK_OUTLIVES_NODE,
    LOCK_SECONDS,
    Poster,
    media_nodes,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The edge checks the show's lock every report period (1 s here): its viewers
# are closed within the lock's TTL and a period of the kill, with room for a
# busy machine. ICE's consent checks alone take 24 s or more (aioice: six
# failed checks 4 to 6 s apart), so this bound tells the two apart.
EDGE_CLOSES_WITHIN = LOCK_SECONDS + 5
# The publisher's retries on B are accepted from the lock's expiry on.
RESUMES_WITHIN = LOCK_SECONDS + 10


async def test_an_edge_closes_its_viewers_when_the_origin_dies_and_the_show_resumes(
    show, redis_client, media_settings, tmp_path
):
    """Publisher on A; a viewer pinned to B plays the show pulled from A.
    A is killed (SIGKILL); its lock outlives it. B closes the viewer's
    session (its connection is closed, B no longer knows the session), drops
    the pull (B reports no viewers, and a viewer pinned to B is refused
    rather than fed by a pull from the dead node); players asking B again
    get ``409 not_live``. Once A's lock has expired the publisher's WHIP
    ``POST`` to B is accepted, B holds the lock, the show (still live) names
    B as its node and a new recording, and a new viewer of B plays frames
    from B itself."""
    from django.conf import settings

    prefix = settings.REDIS_PREFIX
    lock_key = f"{prefix}:media:publisher:{show.slug}"

    def load(name: str) -> tuple[int, int, int] | None:
        """(viewers, links, broadcasts) in the node's last report."""
        raw = redis_client.get(f"{prefix}:media:node:{name}")
        parsed = NodeReport.parse(raw) if raw else None
        return (parsed.viewers, parsed.links, parsed.broadcasts) if parsed else None

    async with aiohttp.ClientSession() as session:
        post = Poster(session)
        # Routing by viewers only (a busy machine's CPU could pass routing's
        # limit); the edge keeps an unwatched pull for a minute, so only the
        # origin's loss can end it within this test.
        with media_nodes(
            ["media-a", "media-b"],
            tmp_path,
            SHOWFLOOR_MEDIA_ROUTE_CPU=100.0,
            SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS=60,
        ) as (a, b):
            publishers: list[Publisher] = []
            players: list[Player] = []
            try:
                publishers.append(
                    await publish(
                        post, f"{a.base}/live/{show.slug}/whip", show.stream_key,
                        video=StampedVideoTrack(320, 240),
                    )
                )  # fmt: skip
                assert publishers[0].status == 201, publishers[0].body
                await sync_to_async(_reload)(show)
                assert show.media_node == "media-a"
                first_recording = show.recording_file
                assert first_recording

                pinned_to_b = f"{b.base}/live/{show.slug}/whep?node=media-b"
                on_edge = await play(post, pinned_to_b, stamps=False)
                players.append(on_edge)
                assert on_edge.status == 201, on_edge.body
                assert await wait_until(lambda: on_edge.frames >= 10, 15)
                # B serves the viewer from one pull: a link of A's.
                assert await wait_until(
                    lambda: (
                        load("media-a") == (0, 1, 1) and load("media-b") == (1, 0, 0)
                    ),
                    5,
                ), (load("media-a"), load("media-b"))

                a.process.kill()
                a.process.join(timeout=10)
                killed_at = time.monotonic()
                # The dead node's lock outlives it: no second origin yet.
                early = await publish(
                    post, f"{b.base}/live/{show.slug}/whip", show.stream_key
                )
                publishers.append(early)
                assert early.status == 409, early.body
                assert json.loads(early.body)["code"] == "publisher_elsewhere"
                assert time.monotonic() - killed_at < LOCK_OUTLIVES_NODE

                # B closes its viewer: the viewer's connection ends ...
                assert await wait_until(
                    lambda: on_edge.pc.connectionState in ("closed", "failed"),
                    EDGE_CLOSES_WITHIN,
                ), on_edge.pc.connectionState
                viewer_closed_after = time.monotonic() - killed_at
                # ... and B no longer knows the session nor has a viewer.
                forgotten = await session.delete(f"{b.base}{on_edge.location}")
                assert forgotten.status == 404
                assert json.loads(await forgotten.text())["code"] == "unknown_session"
                assert await wait_until(
                    lambda: (r := load("media-b")) is not None and r[:2] == (0, 0), 3
                ), load("media-b")
                # The pull is gone: a viewer pinned to B is not fed from it
                # (B would start a new pull, and the dead origin refuses).
                again = await play(post, pinned_to_b, stamps=False)
                players.append(again)
                assert again.status == 409, again.body
                assert json.loads(again.body)["code"] == "not_live"
                # A player asking again as players do (B routes it): nobody
                # holds the show while A's report is stale.
                asked = await play(post, f"{b.base}/live/{show.slug}/whep")
                players.append(asked)
                assert asked.status == 409, asked.body
                assert post.redirects == []

                # The publisher's encoder retries on B until A's lock has
                # expired (refused with publisher_elsewhere until then).
                answers: list[int] = []
                taken = None
                while time.monotonic() - killed_at < RESUMES_WITHIN:
                    taken = await publish(
                        post, f"{b.base}/live/{show.slug}/whip", show.stream_key,
                        video=StampedVideoTrack(320, 240),
                    )  # fmt: skip
                    publishers.append(taken)
                    answers.append(taken.status)
                    if taken.status != 409:
                        break
                    assert json.loads(taken.body)["code"] == "publisher_elsewhere"
                    await asyncio.sleep(0.25)
                assert taken is not None
                assert taken.status == 201, (answers, taken.body)
                taken_after = time.monotonic() - killed_at
                assert redis_client.get(lock_key) == b"media-b"
                await sync_to_async(_reload)(show)
                assert (show.status, show.media_node) == ("live", "media-b")
                assert show.recording_file != first_recording

                resumed = await play(post, f"{b.base}/live/{show.slug}/whep")
                players.append(resumed)
                assert resumed.status == 201, resumed.body
                assert post.redirects == []
                assert await wait_until(lambda: resumed.frames >= 10, 15)
                playing_after = time.monotonic() - killed_at
                assert await wait_until(lambda: load("media-b") == (1, 0, 1), 3), load(
                    "media-b"
                )
                _measured(
                    viewer_closed=viewer_closed_after,
                    publisher_taken=taken_after,
                    playing_again=playing_after,
                )
            finally:
                for player in players:
                    await player.close()
                for publisher in publishers:
                    await publisher.close()


def _reload(show: Any) -> None:
    """Read ``show`` again in asgiref's thread and close that thread's
    connection, so the test database can be dropped afterwards."""
    from django.db import connections

    show.refresh_from_db()
    connections.close_all()


def _measured(**seconds: Any) -> None:
    """The phases' times after the kill, for docs/video.md (``pytest -s``)."""
    print("origin loss:", ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
