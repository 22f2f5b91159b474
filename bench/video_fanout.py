"""Live video fan-out benchmark: one publisher, N WebRTC viewers, on loopback.

    python bench/video_fanout.py --viewers 40 --seconds 20

Starts Daphne (the embedded shape: SQLite, in-memory layer, media routes
in-process) on 127.0.0.1, publishes a synthetic 640x480 30 fps track over WHIP
whose frames carry their capture time, and plays it over WHEP with N aiortc
viewers spread over several load-generator processes (the machine has few
cores and one Python process cannot receive for 40 viewers):

- ``--decoders`` viewers (default 3, one process) decode every frame and read
  its stamp: glass-to-glass latency p50/p95.
- the others (``--viewers-per-process`` each, default 10) skip the final
  decode: aiortc's receive path (ICE, SRTP, RTP parsing) runs as usual, then a
  counter replaces its bitrate estimator, jitter buffer and decoder, and counts
  a frame when its last packet (RTP marker) arrives and none of its packets
  was missing (sequence numbers are contiguous on loopback).

Every viewer's frame rate is counted over the same steady window, which opens
``--settle`` seconds after the last viewer received its first frame. The server's
CPU is measured with only the publisher and over the window; the HLS watcher
(its own process) notes when each segment is listed and decodes the segment's
first frame, so the delay is measured from the capture of its last frame (its
first frame's stamp plus its duration), not only from the playlist's program
date time. The last line is one JSON object.

A real network: ``--loss PCT``, ``--jitter-ms MS`` (around a base one-way
delay, ``--delay-ms``, 30 ms), ``--rate-kbit K`` and ``--outage-at S`` (1 s of
nothing, S seconds into the window) put every viewer behind its own
``bench/netshim.py`` relay. Counting viewers then keep aiortc's receive path
(NACK, RTX, PLI, REMB) and count a frame when its jitter buffer has it
complete, retransmitted packets included. Every viewer then NACKs and gives
up on a frame as a browser does (``nack_like_a_browser``,
``browser_jitter_buffer``: aiortc's receiver does neither, and measured its
own shortcomings instead of the server's). The JSON adds ``freezes_over_500ms``
(gaps between complete frames, per viewer, summed), ``recovery_ms`` (from the
outage's end to the next complete frame, worst viewer) and the settings.

    python bench/video_fanout.py --viewers 20 --loss 2 --jitter-ms 10

``--nodes N`` (N > 1) starts N media nodes (Daphne processes sharing the
SQLite file and a Redis, ``--redis-url``, under a prefix of their own): the
publisher on the first, the origin; viewer ``i`` on node ``i % N``, asking
for it by name (``?node=``, as routing's redirect does), so the others serve
as edges, each pulling the show once from the origin. Before the viewers,
one throwaway viewer on the second node starts its pull, and the origin's CPU
is measured with it (``origin_cpu_edge_link``: the origin's cost of one edge),
after one throwaway viewer of the origin's own measured the same way
(``origin_cpu_one_viewer``), and beside the origin's CPU per viewer of its own
among many (``origin_cpu_per_viewer``). The JSON adds ``nodes``: per node its
viewers, fps_min, latency p95, CPU, and ``ended_on``, the picture sizes its
decoding viewers decoded last (which rendition they settled on: with
``--rate-kbit`` an edge's viewer too moves to the lower one).

    python bench/video_fanout.py --viewers 40 --nodes 2
    python bench/video_fanout.py --viewers 2 --nodes 2 --decoders 2 \\
        --rate-kbit 600 --noise-rows 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.netshim import HttpPost, Impairment, Relay, open_relay  # noqa: E402
from bench.support import free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT = re.compile(r"#EXTINF:([\d.]+),\n#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(\S+)")
READY_TIMEOUT = 40.0


def configure_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        # The live app's ready() restricts ICE gathering to the addresses
        # above (and checks the library versions), in these client processes too.
        settings.configure(
            INSTALLED_APPS=["live"],
            SHOWFLOOR_MEDIA_ADDRESSES=["127.0.0.1"],
            SHOWFLOOR_ICE_SERVERS="[]",
        )
        django.setup()


async def http_post(url: str, sdp: str, token: str) -> tuple[int, dict[str, str], str]:
    def call() -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 (loopback)
            url, data=sdp.encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return (
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, {}, exc.read().decode()

    return await asyncio.to_thread(call)


# --- Viewers (child processes) ---------------------------------------------


class FrameCounter:
    """Replaces a video receiver's ``_handle_rtp_packet``: a frame counts when
    its marker packet arrives and every packet since the last frame did."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.broken = 0
        self._ssrc: int | None = None
        self._next_seq: int | None = None
        self._intact = True

    async def handle(self, packet: Any, arrival_time_ms: int) -> None:
        if self._ssrc is None:
            self._ssrc = packet.ssrc
        elif packet.ssrc != self._ssrc:  # a retransmission stream
            return
        if self._next_seq is not None and packet.sequence_number != self._next_seq:
            self._intact = False
        self._next_seq = (packet.sequence_number + 1) & 0xFFFF
        if packet.marker:
            if self._intact:
                self.arrivals.append(time.monotonic())
            else:
                self.broken += 1
            self._intact = True


async def _ignore(packet: Any, arrival_time_ms: int) -> None:
    return None


# --- A real network between the viewers and the node (--loss, --jitter-ms,
# --rate-kbit, --outage-at): each viewer plays through its own relay
# (bench/netshim.py) in its own process.

OUTAGE_SECONDS = 1.0
# How often a viewer asks again for one missing packet (as Chrome does).
NACK_RETRIES = 10
# A viewer's jitter buffer holding packets but releasing no frame this long
# drops them and asks for a keyframe.
GIVE_UP_SECONDS = 0.4
FREEZE_SECONDS = 0.5


def impairment(args: argparse.Namespace) -> Impairment | None:
    """The shim's settings from the command line; None on a clean loopback.
    The base one-way delay (``--delay-ms``, 30 ms) applies whenever the shim
    is on; jitter, loss and the rate cap apply to the node-to-viewer
    direction, loss and jitter also to the viewer's RTCP (NACK, PLI, REMB)."""
    if not (
        args.loss or args.jitter_ms or args.rate_kbit or args.outage_at is not None
    ):
        return None
    return Impairment(
        loss=args.loss / 100,
        delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
        rate_kbit=args.rate_kbit,
    )


def browser_jitter_buffer(on_frame: Callable[[], None] | None = None) -> Any:
    """A jitter buffer for a viewer that gives up as a browser does. aiortc's
    waits for a missing packet until 512 packets have arrived behind it (at
    this stream's 40 packets a second, over ten seconds), then plays the
    frames it held, seconds late. This one (aiortc's, releasing each frame at
    its marker packet, ``FrameJitterBuffer``) drops what it holds when
    packets have kept arriving for ``GIVE_UP_SECONDS`` without a frame coming
    out (counted from the first such packet, so a stall of this process is
    not taken for loss), asks for a keyframe (PLI) and releases nothing until
    one is complete. ``on_frame``
    is called for every frame released; then the frame is not decoded."""
    from live.media.aiortc_patches import FrameJitterBuffer

    class BrowserJitterBuffer(FrameJitterBuffer):
        waiting_since: float | None = None
        need_keyframe = False
        gave_up = 0

        def add(self, packet: Any) -> tuple[bool, Any]:
            now = time.monotonic()
            pli_flag, frame = super().add(packet)
            if frame is None:
                if self.waiting_since is None:
                    self.waiting_since = now
                elif now - self.waiting_since > GIVE_UP_SECONDS:
                    # Start after this packet: a late retransmission of an
                    # older one must not become the head of the buffer.
                    self._packets = [None] * self.capacity
                    self._origin = (packet.sequence_number + 1) & 0xFFFF
                    self.waiting_since = None
                    self.need_keyframe = True
                    self.gave_up += 1
                    return True, None
                return pli_flag, None
            self.waiting_since = None
            if self.need_keyframe:
                if not h264_keyframe(frame.data):
                    return pli_flag, None
                self.need_keyframe = False
            if on_frame is None:
                return pli_flag, frame
            on_frame()
            # Counted, not decoded: every frame a retransmission completed
            # comes out now, as from a browser's buffer (aiortc's hands the
            # decoder one frame per packet received).
            while self._origin is not None and (
                self._complete_frame(self._origin) is not None
            ):
                on_frame()
            return pli_flag, None

    return BrowserJitterBuffer(capacity=512, is_video=True)


def h264_keyframe(data: bytes) -> bool:
    """An IDR slice or SPS in an Annex B frame (as aiortc depayloads H.264)."""
    return any(
        chunk and chunk[0] & 0x1F in (5, 7) for chunk in data.split(b"\x00\x00\x01")
    )


def use_browser_jitter_buffer(player: Any, counter: FrameCounter | None) -> Any:
    """Through a lossy network a frame is complete once its retransmitted
    packets are in: keep aiortc's receive path (NACKs, RTX, REMB, PLI) up to
    a browser-like jitter buffer, which assembles frames; a ``counter``
    counts each frame it releases instead of decoding it (its audio is
    ignored). (The clean-loopback counter above skips all of that, for the
    cost figures.)"""

    def arrived() -> None:
        if counter is not None:
            counter.arrivals.append(time.monotonic())

    buffer = browser_jitter_buffer(arrived if counter is not None else None)
    for transceiver in player.pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind == "video":
            receiver._RTCRtpReceiver__jitter_buffer = buffer
        elif counter is not None:
            receiver._handle_rtp_packet = _ignore  # type: ignore[method-assign]
    return buffer


def nack_like_a_browser(player: Any, every: float) -> asyncio.Task[None] | None:
    """Make the viewer's NACKs a browser's: each missing video packet is asked
    for once when its gap is seen, then again every ``every`` seconds (about
    a round trip) up to ``NACK_RETRIES`` times, as Chrome's NACK module does.
    aiortc's receiver instead lists every packet still missing (up to 128)
    each time it sees a new gap, and never again otherwise: behind a rate cap,
    where a gap comes with nearly every packet, that asked for the same
    packets hundreds of times a second (a retransmission storm that filled
    the capped link), and a lost retransmission held the jitter buffer until
    the next gap (a freeze of a second or more at 2 % loss). None, and
    aiortc's behaviour kept, if its receiver is not as expected."""
    receiver = next(
        (t.receiver for t in player.pc.getTransceivers() if t.kind == "video"), None
    )
    generator = getattr(receiver, "_RTCRtpReceiver__nack_generator", None)
    if receiver is None or generator is None:
        return None
    loop = asyncio.get_running_loop()
    media_ssrc: list[int] = []
    asked: dict[int, tuple[int, float]] = {}  # seq: (times asked, last time)
    pending: set[asyncio.Task[None]] = set()
    original_add = generator.add

    async def send(lost: list[int]) -> None:
        now = loop.time()
        for seq in lost:
            asked[seq] = (asked.get(seq, (0, 0.0))[0] + 1, now)
        with contextlib.suppress(ConnectionError):
            await receiver._send_rtcp_nack(media_ssrc[0], lost)

    def add(packet: Any) -> bool:
        if not media_ssrc:
            media_ssrc.append(packet.ssrc)  # after RTX is unwrapped
        original_add(packet)
        fresh = sorted(seq for seq in generator.missing if seq not in asked)
        if fresh:
            task = asyncio.ensure_future(send(fresh))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return False  # aiortc's own NACK of everything missing is not sent

    generator.add = add

    async def repeat() -> None:
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for seq in [seq for seq in asked if seq not in generator.missing]:
                del asked[seq]
            again = sorted(
                seq
                for seq, (times, last) in asked.items()
                if times < NACK_RETRIES and now - last >= every
            )
            if again and media_ssrc:
                await send(again)

    return asyncio.ensure_future(repeat())


def network_figures(
    arrivals: list[list[float]], start: float, end: float, outage_end: float | None
) -> dict[str, Any]:
    """Freezes (gaps over half a second between complete frames, the window's
    edges included) per viewer, summed; with an outage, the time from its end
    to each viewer's next complete frame (the worst viewer's), and the
    freezes other than the one the outage caused."""
    freezes = besides_outage = 0
    recoveries = []
    starts: list[float] = []
    for times in arrivals:
        edges = [start, *times, end]
        for before, after in itertools.pairwise(edges):
            if after - before > FREEZE_SECONDS:
                freezes += 1
                starts.append(round(before - start, 1))
                if outage_end is None or not before <= outage_end <= after:
                    besides_outage += 1
        if outage_end is not None:
            later = [t for t in times if t >= outage_end]
            recoveries.append((later[0] - outage_end) * 1000 if later else None)
    # When each freeze began (seconds into the window): many viewers at once
    # is the node or the machine stalling, one alone is that viewer's link.
    figures: dict[str, Any] = {
        "freezes_over_500ms": freezes,
        "freeze_starts_s": sorted(starts),
    }
    if outage_end is not None:
        figures["freezes_over_500ms_besides_outage"] = besides_outage
        figures["recovery_ms"] = (
            None if None in recoveries else round(max(recoveries), 1)  # type: ignore[type-var]
        )
        figures["viewers_not_recovered"] = recoveries.count(None)
    return figures


async def run_viewers(
    base: str,
    slug: str,
    count: int,
    decode: bool,
    net: argparse.Namespace | None = None,
) -> None:
    from live.media.clients import play

    players = []
    counters: list[FrameCounter] = []
    link = impairment(net) if net is not None else None
    relays: list[Relay] = []
    nack_tasks: list[asyncio.Task[None]] = []
    jitter_buffers: list[Any] = []
    # About one round trip through the shim (twice the base delay).
    nack_every = max(0.02, 2 * net.delay_ms / 1000) if net is not None else 0.0
    for index in range(count):
        post: HttpPost = http_post
        if link is not None and net is not None:
            # RTCP upstream is not rate-capped; each viewer its own seed.
            relay = await open_relay(
                link,
                Impairment(link.loss, link.delay_ms, link.jitter_ms),
                seed=net.seed * 100_000 + net.offset + index,
            )
            relays.append(relay)
            post = relay.wrap(http_post)
        whep = viewer_whep_url(net, base, slug, index)
        player = await play(post, whep, stamps=decode)
        players.append(player)
        if link is not None and (task := nack_like_a_browser(player, nack_every)):
            nack_tasks.append(task)
        if link is not None:
            counter = FrameCounter()
            if not decode:
                counters.append(counter)
            jitter_buffers.append(
                use_browser_jitter_buffer(player, None if decode else counter)
            )
        elif not decode:
            counter = FrameCounter()
            counters.append(counter)
            for transceiver in player.pc.getTransceivers():
                receiver = transceiver.receiver
                receiver._handle_rtp_packet = (  # type: ignore[method-assign]
                    counter.handle if transceiver.kind == "video" else _ignore
                )

    def frames(index: int) -> int:
        return len(counters[index].arrivals) if counters else players[index].frames

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not all(frames(i) for i in range(count)):
        await asyncio.sleep(0.1)
    print(
        json.dumps(
            {
                "ready": [p.status for p in players],
                "playing": sum(1 for i in range(count) if frames(i)),
            }
        ),
        flush=True,
    )
    # The orchestrator answers with the measuring window (monotonic clock,
    # shared by every process on the machine).
    start, end = map(float, (await asyncio.to_thread(sys.stdin.readline)).split())
    if net is not None and net.outage_at is not None:
        for relay in relays:
            relay.schedule_outage(start + net.outage_at, OUTAGE_SECONDS)
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    for player in players:
        player.latencies_ms.clear()
    await asyncio.sleep(max(0.0, end - time.monotonic() + 0.3))
    if counters:
        arrivals = [c.arrivals for c in counters]
    else:
        arrivals = [p.arrivals for p in players]
    result = {
        "arrivals": [[t for t in times if start <= t < end] for times in arrivals],
        "latencies_ms": [v for p in players for v in p.latencies_ms],
        "latencies_by_viewer": [p.latencies_ms for p in players],
        # The picture each viewer decoded last ("WxH"; None: not decoding).
        "sizes_by_viewer": [
            "x".join(map(str, p.sizes[-1])) if p.sizes else None for p in players
        ],
        "broken": sum(c.broken for c in counters),
        "shim": {
            name: sum(getattr(r.down.stats, name) for r in relays)
            for name in ("delivered", "lost", "queue_dropped", "outage_dropped")
        },
        "gave_up": sum(getattr(jb, "gave_up", 0) for jb in jitter_buffers),
    }
    for task in nack_tasks:
        task.cancel()
    for player in players:
        await player.close()
    for relay in relays:
        relay.close()
    print(json.dumps(result), flush=True)


# --- The HLS watcher (child process) ----------------------------------------


def segment_capture_ms(hls_dir: Path, name: str) -> int | None:
    """The capture stamp of a segment's first frame."""
    import av

    from live.media.clients import read_stamp

    try:
        data = (hls_dir / "init.mp4").read_bytes() + (hls_dir / name).read_bytes()
        with av.open(io.BytesIO(data), format="mp4") as container:
            for frame in container.decode(video=0):
                return read_stamp(frame)
    except (OSError, av.FFmpegError):
        return None
    return None


def watch_hls(playlist: Path, url: str, until: float) -> dict[str, list[float]]:
    """For each segment that appears while watching: ``listed`` (ms from its
    program date time plus duration to the moment it is listed),
    ``listed_after_capture`` (ms from the capture of its last frame, from the
    stamp of its first frame plus its duration) and ``pdt_minus_capture``.

    The moment a segment is listed is the playlist's modification time: the
    packager writes it whole and renames it into place, so that is when the
    server published it, whenever this process (sharing the two cores with
    the viewers) gets to look. ``seen_after_capture`` is the same from the
    moment this process saw it, for comparison (the file's time comes from the
    kernel's coarse clock, a few milliseconds at most behind).
    ``fetch_ms``: fetching the playlist over HTTP, sampled twice a second."""
    seen: set[str] = set()
    out: dict[str, list[float]] = {
        "listed": [],
        "listed_after_capture": [],
        "seen_after_capture": [],
        "pdt_minus_capture": [],
        "kbps": [],
        "fetch_ms": [],
    }
    primed = False
    next_fetch = 0.0
    while time.monotonic() < until:
        try:
            before = playlist.stat().st_mtime_ns
            text = playlist.read_text()
            written = playlist.stat().st_mtime_ns
        except OSError:
            time.sleep(0.005)
            continue
        seen_at = time.time()
        if before != written:
            # Replaced while we read it: look again.
            time.sleep(0.001)
            continue
        now = written / 1e9
        segments = SEGMENT.findall(text)
        fresh = [s for s in segments if s[2] not in seen] if primed else []
        # Segments listed before the first look cannot be timed.
        primed = primed or bool(segments)
        seen.update(name for _d, _p, name in segments)
        for duration, pdt, name in fresh:
            pdt_ms = datetime.strptime(pdt, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000
            out["listed"].append(now * 1000 - pdt_ms - float(duration) * 1000)
            with contextlib.suppress(OSError):
                size = (playlist.parent / name).stat().st_size
                out["kbps"].append(size * 8 / float(duration) / 1000)
            captured = segment_capture_ms(playlist.parent, name)
            if captured is not None and abs(captured - now * 1000) < 60_000:
                out["listed_after_capture"].append(
                    now * 1000 - captured - float(duration) * 1000
                )
                out["seen_after_capture"].append(
                    seen_at * 1000 - captured - float(duration) * 1000
                )
                out["pdt_minus_capture"].append(pdt_ms - captured)
        if time.monotonic() >= next_fetch:
            began = time.monotonic()
            if _get(url)[0] == 200:
                out["fetch_ms"].append((time.monotonic() - began) * 1000)
            next_fetch = time.monotonic() + 0.5
        time.sleep(0.005)
    return out


# --- The orchestrator -------------------------------------------------------


def server_env(workdir: Path, viewers: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "SHOWFLOOR_HLS_DIR": str(workdir / "hls"),
            "SHOWFLOOR_RECORDINGS_DIR": str(workdir / "recordings"),
            "SHOWFLOOR_MEDIA_ADDRESSES": "127.0.0.1",
            "SHOWFLOOR_ICE_SERVERS": "[]",
            "SHOWFLOOR_WEBRTC_MAX_VIEWERS": str(viewers + 10),
            "PYTHONPATH": str(ROOT),
            # The servers log to server*.log in the run's directory (kept).
            "LOG_LEVEL": os.environ.get("BENCH_SERVER_LOG_LEVEL", "WARNING"),
        }
    )
    return env


# --- Several media nodes (--nodes) -------------------------------------------


def node_name(index: int) -> str:
    return f"bench-{index}"


def node_env(
    env: dict[str, str], args: argparse.Namespace, index: int, port: int
) -> dict[str, str]:
    """``env`` for media node ``index`` of ``args.nodes`` (unchanged for one):
    the shared registry in Redis, this node's name and URL."""
    if args.nodes <= 1:
        return env
    return {
        **env,
        "REDIS_URL": args.redis_url,
        "SHOWFLOOR_REDIS_PREFIX": f"bench-fanout-{os.getpid()}",
        "SHOWFLOOR_MEDIA_NODE": node_name(index),
        "SHOWFLOOR_MEDIA_NODE_URL": f"http://127.0.0.1:{port}",
        "SHOWFLOOR_MEDIA_REPORT_SECONDS": "1",
        # The throwaway viewer's pull stays for the measured viewers.
        "SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS": "120",
    }


def viewer_whep_url(
    net: argparse.Namespace | None, base: str, slug: str, index: int
) -> str:
    """Viewer ``index`` of this process: on node ``(offset + index) % N`` of
    ``--node-urls`` when given, asked for by name as routing's redirect
    does; else ``base``."""
    bases = net.node_urls.split(",") if net is not None and net.node_urls else []
    if not bases:
        return f"{base}/live/{slug}/whep"
    node = (net.offset + index) % len(bases) if net is not None else 0
    return f"{bases[node]}/live/{slug}/whep?node={node_name(node)}"


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-e",
            f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
            "config.asgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def forget_registry(args: argparse.Namespace) -> None:
    """Remove this run's keys from the shared Redis."""
    import redis

    client = redis.Redis.from_url(args.redis_url)
    try:
        keys = list(client.scan_iter(f"bench-fanout-{os.getpid()}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()


def node_figures(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    cpu: list[float],
) -> list[dict[str, Any]]:
    """Per node: its viewers (viewer ``i`` is on node ``i % N``), their
    slowest frame rate and latency p95, and its CPU over the window."""
    arrivals = [times for result in results for times in result["arrivals"]]
    latencies = [v for result in results for v in result["latencies_by_viewer"]]
    sizes = [v for result in results for v in result.get("sizes_by_viewer", [])]
    figures = []
    for node in range(args.nodes):
        mine = range(node, len(arrivals), args.nodes)
        waits = [ms for i in mine if i < len(latencies) for ms in latencies[i]]
        figures.append(
            {
                "node": node_name(node),
                "role": "origin" if node == 0 else "edge",
                "viewers": len(mine),
                "fps_min": round(min(len(arrivals[i]) / args.seconds for i in mine), 1)
                if mine
                else None,
                "latency_p95_ms": round(percentile(waits, 0.95), 1) if waits else None,
                "latency_samples": len(waits),
                # The picture its decoding viewers ended on (the rendition).
                "ended_on": sorted(
                    {sizes[i] for i in mine if i < len(sizes) and sizes[i]}
                ),
                "cpu": round(cpu[node], 3),
            }
        )
    return figures


SEED = """
import json
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
from django.utils import timezone
from shows import services
call_command("migrate", verbosity=0)
brand = services.brand_create(name="Bench", slug="bench")
show = services.show_create(brand=brand, slug="bench-show", title="Bench",
                            scheduled_at=timezone.now() + timedelta(minutes=5))
host = services.user_signup(email="host@bench.test", display_name="Host",
                            password="a-long-bench-password")
services.membership_set(brand=brand, user=host, role="host")
from django.test import Client
client = Client()
client.force_login(host)
print(json.dumps({"slug": show.slug, "key": show.stream_key,
                  "session": client.cookies["sessionid"].value}))
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its running descendants (the
    server's HLS/recording packager is a child process)."""
    total = 0.0
    for process in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(process)
        except FileNotFoundError:  # a descendant that just ended
            if process == pid:
                raise
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            listed = children.read_text().split()
        except FileNotFoundError:  # the thread ended since the listing
            continue
        for child in map(int, listed):
            found += [child, *descendants(child)]
    return found


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _get(url: str, session: str = "") -> tuple[int, dict[str, str], str]:
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, {}, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {}, ""
    except OSError:
        return 0, {}, ""


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def _line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if not line:
        raise RuntimeError(f"a load-generator process exited ({process.args!r})")
    return dict(json.loads(line))


def _split(total: int, per_process: int) -> list[int]:
    """``total`` viewers in as few processes of at most ``per_process`` as
    possible, evenly."""
    processes = max(1, -(-total // max(1, per_process)))
    return [
        total // processes + (1 if i < total % processes else 0)
        for i in range(processes)
    ]


async def measure_edge_link(
    args: argparse.Namespace, origin_pid: int, edge_base: str, slug: str
) -> float:
    """The origin's CPU (cores, publisher included) while one edge pulls the
    show: a throwaway viewer on the edge starts the pull (which outlives it,
    for the measured viewers)."""
    url = f"{edge_base}/live/{slug}/whep?node={node_name(1)}"
    return await measure_one(args, origin_pid, url)


async def measure_one(args: argparse.Namespace, origin_pid: int, url: str) -> float:
    """The origin's CPU (cores, publisher included) while one throwaway viewer
    plays ``url``, measured over ``--base-seconds`` once it has frames."""
    from live.media.clients import play

    player = await play(http_post, url, stamps=False)
    try:
        if player.status != 201:
            raise RuntimeError(f"the edge refused a viewer: {player.body}")
        for _ in range(100):
            if player.frames:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        cpu0, t0 = tree_cpu_seconds(origin_pid), time.monotonic()
        await asyncio.sleep(args.base_seconds)
        return (tree_cpu_seconds(origin_pid) - cpu0) / (time.monotonic() - t0)
    finally:
        await player.close()


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    configure_django()
    from live.media.clients import EncodedTrack, StampedVideoTrack, publish

    workdir = Path(tempfile.mkdtemp(prefix="showfloor-bench-"))
    env = server_env(workdir, args.viewers)
    seeded = json.loads(
        subprocess.run(
            [sys.executable, "-c", SEED],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    slug, key = seeded["slug"], seeded["key"]
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"

    async def stream_stats() -> dict[str, Any]:
        url = f"{base}/live/{slug}/stream"
        status, _h, body = await asyncio.to_thread(_get, url, seeded["session"])
        return dict(json.loads(body)) if status == 200 else {}

    server = start_server(node_env(env, args, 0, port), port, workdir / "server.log")
    # --nodes: the other media nodes, edges of the show.
    edge_ports = [free_port() for _ in range(1, args.nodes)]
    edges = [
        start_server(node_env(env, args, i, p), p, workdir / f"server-{i}.log")
        for i, p in enumerate(edge_ports, start=1)
    ]
    bases = [base, *(f"http://127.0.0.1:{p}" for p in edge_ports)]
    link_cpu: float | None = None
    one_cpu: float | None = None
    children: list[subprocess.Popen[str]] = []
    publisher = None
    try:
        for node_base in bases:
            # Also starts each node's load reports (routing's, the edges').
            for _ in range(100):
                if _get(f"{node_base}/healthz")[0] == 200:
                    break
                await asyncio.sleep(0.2)
        camera = StampedVideoTrack(640, 480, 30, noise_rows=args.noise_rows)
        publisher = await publish(
            http_post,
            f"{base}/live/{slug}/whip",
            key,
            video=EncodedTrack(camera),
        )
        if publisher.status != 201:
            raise RuntimeError(f"WHIP failed: {publisher.status} {publisher.body}")
        await asyncio.sleep(3)
        cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.base_seconds)
        base_cpu = (tree_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        if edges:
            # One viewer of the origin's own, measured the same way first: the
            # like-for-like cost to set the edge link beside.
            one_cpu = await measure_one(
                args, server.pid, f"{base}/live/{slug}/whep?node={node_name(0)}"
            )
            one_cpu -= base_cpu
            await asyncio.sleep(1)
            link_cpu = await measure_edge_link(args, server.pid, bases[1], slug)
            link_cpu -= base_cpu

        decoders = min(args.decoders, args.viewers)
        groups = [(decoders, True)] if decoders else []
        if args.viewers > decoders:
            groups += [
                (count, False)
                for count in _split(args.viewers - decoders, args.viewers_per_process)
            ]
        common = ["--url", base, "--slug", slug]
        net_args = [
            *("--loss", str(args.loss), "--jitter-ms", str(args.jitter_ms)),
            *("--delay-ms", str(args.delay_ms), "--rate-kbit", str(args.rate_kbit)),
            *("--seed", str(args.seed)),
            *(
                ("--outage-at", str(args.outage_at))
                if args.outage_at is not None
                else ()
            ),
        ]
        offset = 0
        for count, decode in groups:
            role = "decoders" if decode else "counters"
            nodes_args = ["--node-urls", ",".join(bases), "--offset", str(offset)]
            offset += count
            children.append(
                _child(
                    "--role",
                    role,
                    "--viewers",
                    str(count),
                    *common,
                    *net_args,
                    *(nodes_args if edges else ()),
                )
            )
        playing = 0
        for child in children:
            ready = await _line(child)
            if any(status != 201 for status in ready["ready"]):
                raise RuntimeError(f"some viewers were refused: {ready['ready']}")
            playing += ready["playing"]
        # Every viewer has its first frame (or gave up): let them settle, then
        # measure all of them over the same window.
        window_start = time.monotonic() + args.settle
        window_end = window_start + args.seconds
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"{window_start} {window_end}\n")
            child.stdin.flush()
        # The HLS watcher runs in its own process so its timing does not wait
        # for a busy event loop.
        hls_watcher = _child(
            "--role",
            "hls",
            *common,
            "--seconds",
            str(window_end - time.monotonic()),
            "--playlist",
            str(workdir / "hls" / slug / "index.m3u8"),
        )
        load_pids = [os.getpid(), *(child.pid for child in children)]
        await asyncio.sleep(window_start - time.monotonic())
        cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
        edges_cpu0 = [tree_cpu_seconds(edge.pid) for edge in edges]
        load0 = sum(cpu_seconds(pid) for pid in load_pids)
        busy0, total0 = machine_busy()
        stats0 = await stream_stats()
        sent0 = camera._index
        await asyncio.sleep(window_end - time.monotonic())
        elapsed = time.monotonic() - t0
        server_cpu = (tree_cpu_seconds(server.pid) - cpu0) / elapsed
        edges_cpu = [
            (tree_cpu_seconds(edge.pid) - before) / elapsed
            for edge, before in zip(edges, edges_cpu0, strict=True)
        ]
        load_cpu = (sum(cpu_seconds(pid) for pid in load_pids) - load0) / elapsed
        busy1, total1 = machine_busy()
        load_average = os.getloadavg()[0]
        sent = (camera._index - sent0) / elapsed
        stats1 = await stream_stats()
        ingest = {
            f"server_{name}_per_s": round((stats1[name] - stats0[name]) / elapsed, 1)
            for name in (
                "frames_in",
                "frames_encoded",
                "frames_dropped",
                "ingest_frames_skipped",
                "viewer_packets_skipped",
            )
        }
        rss = rss_mb(server.pid)
        packager_rss = sum(rss_mb(pid) for pid in descendants(server.pid))
        results = [await _line(child) for child in children]
        hls_out, _err = await asyncio.to_thread(hls_watcher.communicate, timeout=60)
        hls = json.loads(hls_out.strip().splitlines()[-1])
    finally:
        if publisher is not None:
            await publisher.close()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        for edge in edges:
            edge.terminate()
        stopping = time.monotonic()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        exit_seconds = time.monotonic() - stopping
        for edge in edges:
            try:
                edge.wait(timeout=30)
            except subprocess.TimeoutExpired:
                edge.kill()
                edge.wait()
        if edges:
            forget_registry(args)
    latencies = [v for result in results for v in result["latencies_ms"]]
    fps = [
        len(times) / args.seconds for result in results for times in result["arrivals"]
    ]
    decoding_fps = fps[:decoders]
    link = impairment(args)
    network: dict[str, Any] = {}
    if link is not None:
        outage_end = (
            window_start + args.outage_at + OUTAGE_SECONDS
            if args.outage_at is not None
            else None
        )
        network = {
            "network": {
                "loss_pct": args.loss,
                "delay_ms": args.delay_ms,
                "jitter_ms": args.jitter_ms,
                "rate_kbit": args.rate_kbit or None,
                "outage_at_s": args.outage_at,
                "outage_s": OUTAGE_SECONDS if args.outage_at is not None else None,
                "seed": args.seed,
            },
            **network_figures(
                [times for result in results for times in result["arrivals"]],
                window_start,
                window_end,
                outage_end,
            ),
            # Which rendition each viewer ended on, if the node says.
            "server_renditions": stats1.get("renditions"),
            # What the relays did to the node-to-viewer datagrams, all viewers.
            "shim_down": {
                name: sum(result["shim"][name] for result in results)
                for name in results[0]["shim"]
            },
            # Frames the viewers' jitter buffers gave up on (then a PLI).
            "viewer_give_ups": sum(result["gave_up"] for result in results),
        }
    cores = os.cpu_count() or 1
    machine_cores = (busy1 - busy0) / ((total1 - total0) / cores)
    several: dict[str, Any] = {}
    if edges:
        per_node = node_figures(args, results, [server_cpu, *edges_cpu])
        origin_viewers = per_node[0]["viewers"]
        several = {
            "nodes": per_node,
            # The origin's cost of one edge pulling the show, beside its cost
            # of one of its own viewers (both over the publisher-only CPU).
            "origin_cpu_edge_link": round(link_cpu or 0.0, 4),
            # One viewer of the origin's own, alone, measured as the link is.
            "origin_cpu_one_viewer": round(one_cpu or 0.0, 4),
            "origin_cpu_per_viewer": round(
                (server_cpu - base_cpu - (link_cpu or 0.0) * len(edges))
                / max(1, origin_viewers),
                4,
            ),
        }

    def ms(values: list[float], q: float) -> float | None:
        return round(percentile(values, q), 1) if values else None

    return {
        "viewers": args.viewers,
        "seconds": args.seconds,
        "noise_rows": args.noise_rows,
        "decoding_viewers": decoders,
        "viewer_processes": len(children),
        "viewers_playing_before_window": playing,
        "fps_min": round(min(fps), 1),
        "fps_median": round(statistics.median(fps), 1),
        "fps_min_decoding": round(min(decoding_fps), 1) if decoding_fps else None,
        "frames_incomplete": sum(result["broken"] for result in results),
        **network,
        **several,
        "latency_p50_ms": ms(latencies, 0.50),
        "latency_p95_ms": ms(latencies, 0.95),
        "latency_samples": len(latencies),
        "server_cpu": round(server_cpu, 3),
        "server_cpu_publisher_only": round(base_cpu, 3),
        "server_cpu_per_viewer": round(
            (server_cpu - base_cpu) / max(1, args.viewers), 4
        ),
        # The media process and, separately, its HLS/recording packager.
        "rss_mb": round(rss, 1),
        "rss_mb_packager": round(packager_rss, 1),
        "server_exit_s": round(exit_seconds, 1),
        # What the publisher sent, and what the server heard about it.
        "publisher_fps": round(sent, 1),
        "server_publisher_state": stats1.get("publisher"),
        **ingest,
        "server_hls_packets_dropped": stats1.get("hls_packets_dropped"),
        "hls_listed_after_segment_end_ms_p50": ms(hls["listed"], 0.5),
        "hls_listed_after_segment_end_ms_max": ms(hls["listed"], 1.0),
        "hls_listed_after_capture_end_ms_p50": ms(hls["listed_after_capture"], 0.5),
        "hls_listed_after_capture_end_ms_max": ms(hls["listed_after_capture"], 1.0),
        "hls_seen_by_watcher_after_capture_end_ms_max": ms(
            hls["seen_after_capture"], 1.0
        ),
        "hls_pdt_minus_capture_ms_p50": ms(hls["pdt_minus_capture"], 0.5),
        "hls_segments_seen": len(hls["listed"]),
        # The synthetic picture compresses well: the stream's actual bitrate
        # (a camera would fill SHOWFLOOR_VIDEO_BITRATE, 2 Mbit/s).
        "stream_kbps_p50": ms(hls["kbps"], 0.5),
        "hls_playlist_fetch_ms_p50": ms(hls["fetch_ms"], 0.5),
        # Other work on the machine skews every figure above: say how busy it
        # was, and how much of that was this benchmark.
        "load_generator_cpu": round(load_cpu, 3),
        "machine_busy_cores": round(machine_cores, 2),
        "machine_load_average_1m": round(load_average, 2),
        "machine_cores": cores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--decoders", type=int, default=3)
    parser.add_argument("--viewers-per-process", type=int, default=10)
    parser.add_argument("--settle", type=float, default=2)
    parser.add_argument(
        "--noise-rows",
        type=int,
        default=0,
        help="rows of fresh noise per frame, for a camera-like bitrate (e.g. 120)",
    )
    parser.add_argument("--base-seconds", type=float, default=4)
    network = parser.add_argument_group(
        "network (each viewer through bench/netshim.py; any of these turns it on)"
    )
    network.add_argument("--loss", type=float, default=0, help="percent, both ways")
    network.add_argument(
        "--jitter-ms", type=float, default=0, help="± around --delay-ms, uniform"
    )
    network.add_argument(
        "--delay-ms", type=float, default=30, help="base one-way delay (default 30)"
    )
    network.add_argument(
        "--rate-kbit", type=float, default=0, help="token bucket, node to viewer"
    )
    network.add_argument(
        "--outage-at",
        type=float,
        default=None,
        help="seconds into the window: drop everything for 1 s",
    )
    network.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--nodes", type=int, default=1, help="media nodes; viewers split over them"
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="the media nodes' shared registry (--nodes > 1)",
    )
    parser.add_argument("--node-urls", default="", help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--role", choices=["main", "decoders", "counters", "hls"], default="main"
    )
    parser.add_argument("--url", default="")
    parser.add_argument("--slug", default="")
    parser.add_argument("--playlist", default="")
    args = parser.parse_args()
    if args.role == "hls":
        until = time.monotonic() + args.seconds
        url = f"{args.url}/live/{args.slug}/hls/index.m3u8"
        print(json.dumps(watch_hls(Path(args.playlist), url, until)))
        return
    if args.role in ("decoders", "counters"):
        configure_django()
        decode = args.role == "decoders"
        asyncio.run(run_viewers(args.url, args.slug, args.viewers, decode, args))
        return
    result = asyncio.run(orchestrate(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
