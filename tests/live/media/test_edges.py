"""Edges and routing viewers by load (docs/video.md, "Several media nodes"):
the routing rule as a pure function, the WHEP view's redirect from it, the
edge's signed pull, and two real nodes where one pulls a show from the other
once for all its viewers and stops when they have left."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict
from typing import Any

import aiohttp
import pytest

from live.media.clients import StampedVideoTrack, play, publish
from live.media.edge import edge_token, edge_token_valid
from live.media.registry import (
    NodeReport,
    RouteLimits,
    node_load,
    route_viewer,
    with_pending,
)
from tests.live.media.nodes import Poster, media_nodes, wait_until

LIMITS = RouteLimits(max_viewers=100, max_cpu=0.8, stale_ms=10_000)
NOW = 1_000_000_000


def report(node: str, viewers: int = 0, cpu: float = 0.1, **kw: int) -> NodeReport:
    return NodeReport(
        node=node,
        url=f"http://{node}.test",
        viewers=viewers,
        broadcasts=kw.get("broadcasts", 0),
        cpu=cpu,
        at=kw.get("at", NOW - 1000),
        links=kw.get("links", 0),
    )


def chosen(origin: str, *reports: NodeReport) -> str | None:
    picked = route_viewer(origin=origin, reports=reports, now_ms=NOW, limits=LIMITS)
    return picked.node if picked else None


def test_the_origin_serves_until_it_nears_a_limit_then_the_least_loaded_node():
    """The origin keeps its viewers below 80 % of its viewer limit and of its
    CPU limit; at either, the least loaded node (viewers and edge links
    against the viewer limit, or CPU, whichever is fuller) takes the next."""
    others = (report("b", viewers=30), report("c", viewers=10, cpu=0.5))
    assert chosen("a", report("a", viewers=79, cpu=0.63), *others) == "a"
    assert chosen("a", report("a", viewers=80), *others) == "b"
    assert chosen("a", report("a", viewers=70, links=10), *others) == "b"
    assert chosen("a", report("a", viewers=5, cpu=0.66), *others) == "b"
    # c has fewer viewers but more CPU: 0.5 / 0.8 beats 30 / 100.
    assert node_load(others[1], LIMITS) > node_load(others[0], LIMITS)
    # Everybody full: the least full still, the origin on a tie.
    assert chosen("a", report("a", viewers=90), report("b", viewers=95)) == "a"
    assert chosen("a", report("a", viewers=90), report("b", viewers=90)) == "a"


def test_a_node_whose_report_is_stale_is_never_chosen():
    """A node that stopped reporting (dead, or cut off) is skipped however
    idle it looked; without the origin's report no node serves the show."""
    origin = report("a", viewers=90)
    stale = report("b", viewers=0, at=NOW - LIMITS.stale_ms - 1)
    assert chosen("a", origin, stale, report("c", viewers=50)) == "c"
    assert chosen("a", origin, stale) == "a"
    assert chosen("a", report("a", at=NOW - LIMITS.stale_ms - 1), report("b")) is None
    assert chosen("a", report("b")) is None


def test_viewers_sent_since_a_report_count_so_a_burst_is_spread():
    """Between two reports the routing node counts whom it sent where: 40
    viewers arriving at once past a full origin go half to each edge."""
    origin = report("a", viewers=80)
    edges = {"b": report("b"), "c": report("c")}
    sent = {"a": 0, "b": 0, "c": 0}
    for _ in range(40):
        picked = route_viewer(
            origin="a",
            reports=[origin, *(with_pending(r, sent[n]) for n, r in edges.items())],
            now_ms=NOW,
            limits=LIMITS,
        )
        assert picked is not None
        sent[picked.node] += 1
    assert sent == {"a": 0, "b": 20, "c": 20}


def test_an_edge_token_is_for_one_show_and_a_minute():
    token = edge_token("launch-night", "media-2", now=NOW)
    assert edge_token_valid(token, "launch-night", now=NOW + 30)
    assert not edge_token_valid(token, "other-show", now=NOW)
    assert not edge_token_valid(token, "launch-night", now=NOW + 61)
    node, expires, signature = token.split(":")
    forged = f"{node}:{int(expires) + 3600}:{signature}"
    assert not edge_token_valid(forged, "launch-night", now=NOW + 3000)
    assert not edge_token_valid("", "launch-night", now=NOW)


@pytest.mark.django_db(transaction=True)
async def test_whep_redirects_past_a_full_origin_to_a_live_node_only(
    node, http, show, redis_client, media_settings
):
    """With the origin (this process) at its limit, a viewer is sent (307,
    ``?node=``) to the idle node that reports; once that node's report is
    stale the origin serves the viewer itself."""
    settings = media_settings
    settings.SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS = 1
    settings.SHOWFLOOR_MEDIA_ROUTE_CPU = 100.0
    publisher = await publish(
        http.post,
        f"/live/{show.slug}/whip",
        show.stream_key,
        video=StampedVideoTrack(320, 240),
    )
    players = []
    try:
        assert publisher.status == 201, publisher.body
        whep = f"/live/{show.slug}/whep"
        players.append(await play(http.post, whep, stamps=False))
        assert players[-1].status == 201, players[-1].body

        other = report("media-x", cpu=0.0, at=int(time.time() * 1000))
        key = f"{settings.REDIS_PREFIX}:media:node:media-x"
        redis_client.set(key, json.dumps(asdict(other)))
        redis_client.zadd(f"{settings.REDIS_PREFIX}:media:nodes", {"media-x": 1})
        answers: list[tuple[int, str]] = []

        async def post(url: str, sdp: str, token: str) -> Any:
            status, headers, body = await http.post(url, sdp, token)
            answers.append((status, headers.get("location", "")))
            return status, headers, body

        players.append(await play(post, whep, stamps=False))
        assert answers == [
            (307, f"http://media-x.test/live/{show.slug}/whep?node=media-x")
        ]

        stale = report("media-x", cpu=0.0, at=int(time.time() * 1000) - 60_000)
        redis_client.set(key, json.dumps(asdict(stale)))
        players.append(await play(http.post, whep, stamps=False))
        assert players[-1].status == 201, players[-1].body
        assert len(node.get(show.slug).viewers) == 2
    finally:
        for player in players:
            await player.close()
        await publisher.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_an_edge_pulls_the_show_once_for_its_viewers_and_stops_after_them(
    show, redis_client, media_settings, tmp_path
):
    """Publisher on A (limit one viewer per node). A's first viewer plays on
    A; the second is routed to B, which pulls the show from A and serves it;
    a third asks B directly. B's viewers decode frames; A counts one viewer
    and exactly one edge link; a second after B's last viewer left, B's pull
    is gone from A."""
    from django.conf import settings

    prefix = settings.REDIS_PREFIX

    def load(name: str) -> tuple[int, int] | None:
        raw = redis_client.get(f"{prefix}:media:node:{name}")
        parsed = NodeReport.parse(raw) if raw else None
        return (parsed.viewers, parsed.links) if parsed else None

    async with aiohttp.ClientSession() as session:
        post = Poster(session)
        with media_nodes(
            ["media-a", "media-b"],
            tmp_path,
            SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS=1,
            SHOWFLOOR_MEDIA_ROUTE_CPU=100.0,
            SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS=1,
        ) as (a, b):
            publisher = await publish(
                post, f"{a.base}/live/{show.slug}/whip", show.stream_key,
                video=StampedVideoTrack(320, 240),
            )  # fmt: skip
            players = []
            try:
                assert publisher.status == 201, publisher.body
                on_a = await play(post, f"{a.base}/live/{show.slug}/whep")
                players.append(on_a)
                assert on_a.status == 201, on_a.body
                assert post.redirects == []

                routed = await play(post, f"{a.base}/live/{show.slug}/whep")
                players.append(routed)
                assert routed.status == 201, routed.body
                edge_url = f"{b.base}/live/{show.slug}/whep?node=media-b"
                assert post.redirects == [(307, edge_url)]
                pinned = await play(post, edge_url)
                players.append(pinned)
                assert pinned.status == 201, pinned.body
                assert post.redirects == []

                assert await wait_until(
                    lambda: all(p.frames >= 10 for p in players), 15
                ), [p.frames for p in players]
                # B's viewers decode whole pictures: the capture stamp drawn
                # in each reads back, seconds fresh, in most frames.
                for player in (routed, pinned):
                    readable = player.latencies_ms
                    assert len(readable) >= 0.8 * player.frames, (
                        len(readable),
                        player.frames,
                    )
                    assert 0 <= statistics.median(readable) < 1000
                assert await wait_until(
                    lambda: load("media-a") == (1, 1) and load("media-b") == (2, 0),
                    5,
                ), (load("media-a"), load("media-b"))

                for player in (routed, pinned):
                    deleted = await session.delete(f"{b.base}{player.location}")
                    assert deleted.status == 200
                    await player.close()
                assert await wait_until(
                    lambda: load("media-a") == (1, 0) and load("media-b") == (0, 0),
                    6,
                ), (load("media-a"), load("media-b"))
            finally:
                for player in players:
                    await player.close()
                await publisher.close()


async def _estimate_for(player: Any, bitrate: int, seconds: float) -> None:
    """The player's receiver says ``bitrate`` (REMB) every 100 ms for
    ``seconds``, in place of its own estimator."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    (receiver,) = [r for r in player.pc.getReceivers() if r.track.kind == "video"]
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
    ssrcs = [s.source for s in receiver.getSynchronizationSources()]
    assert ssrcs
    for _ in range(int(seconds * 10)):
        await receiver._send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP,
                ssrc=receiver._RTCRtpReceiver__rtcp_ssrc,  # type: ignore[attr-defined]
                media_ssrc=0,
                fci=pack_remb_fci(bitrate, ssrcs),
            )
        )
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_viewer_of_an_edge_moves_to_the_lower_rendition_at_a_keyframe(
    show, media_settings, tmp_path
):
    """Ladder on. A viewer of B (the edge of A's show) starts on 320x240;
    its receiver reporting 10 kbit/s, B asks A for the lower rendition and
    moves the viewer to it at its keyframe: from its first 160x120 picture on
    the viewer decodes nothing else, and pictures keep coming. On C, a viewer
    asking to start low gets only 160x120 from its first picture."""
    async with aiohttp.ClientSession() as session:
        post = Poster(session)
        with media_nodes(
            ["media-a", "media-b", "media-c"],
            tmp_path,
            SHOWFLOOR_VIDEO_LADDER=True,
            SHOWFLOOR_VIDEO_LOW_MAX_WIDTH=160,
            SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT=120,
            SHOWFLOOR_VIDEO_LOW_BITRATE=100_000,
        ) as (a, b, c):
            publisher = await publish(
                post, f"{a.base}/live/{show.slug}/whip", show.stream_key,
                video=StampedVideoTrack(320, 240),
            )  # fmt: skip
            player = None
            players: list[Any] = []
            try:
                assert publisher.status == 201, publisher.body
                player = await play(
                    post, f"{b.base}/live/{show.slug}/whep?node=media-b"
                )
                players.append(player)
                assert player.status == 201, player.body
                assert await wait_until(lambda: player.frames >= 15, 15)
                assert set(player.sizes) == {(320, 240)}

                await _estimate_for(player, 10_000, 1.5)
                assert await wait_until(lambda: (160, 120) in player.sizes, 5)
                switch = player.sizes.index((160, 120))
                assert await wait_until(lambda: len(player.sizes) >= switch + 15, 10)
                assert set(player.sizes[:switch]) == {(320, 240)}
                assert set(player.sizes[switch:]) == {(160, 120)}
                # Whole pictures: the capture stamp reads back after the move.
                assert len(player.latencies_ms) >= 0.8 * player.frames

                # On C, which pulls only rendition 0 so far, a viewer whose
                # player says its link is slow starts low.
                players.append(
                    await play(
                        post, f"{c.base}/live/{show.slug}/whep?node=media-c&start=low"
                    )
                )
                assert players[-1].status == 201, players[-1].body
                assert await wait_until(lambda: players[-1].frames >= 10, 10)
                assert set(players[-1].sizes) == {(160, 120)}
            finally:
                for each in players:
                    await each.close()
                await publisher.close()
