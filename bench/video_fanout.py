"""Live video fan-out benchmark: one publisher, N WebRTC viewers, on loopback.

    python bench/video_fanout.py --viewers 40 --seconds 20

Starts Daphne (the embedded shape: SQLite, in-memory layer, media routes
in-process) on 127.0.0.1, publishes a synthetic 640x480 30 fps track over WHIP
whose frames carry their capture time, and plays it over WHEP with N aiortc
viewers. ``--decoders`` of them (default 3) decode every frame and read the
stamp (glass-to-glass latency); the others run in a separate process whose
decoder is replaced by a counter, so the load generator stays light. Measures
per-viewer fps, latency p50/p95, the server's CPU (cores) with only the
publisher and with the viewers, its RSS, and how soon each HLS segment is
listed after its program date time. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
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
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT = re.compile(r"#EXTINF:([\d.]+),\n#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(\S+)")


def configure_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SHOWFLOOR_MEDIA_ADDRESSES=["127.0.0.1"], SHOWFLOOR_ICE_SERVERS="[]"
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
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
                return (
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, {}, exc.read().decode()

    return await asyncio.to_thread(call)


# --- Light viewers (child process) -----------------------------------------


class _CountingDecoder:
    """Stands in for aiortc's decoder: one placeholder per encoded frame."""

    def decode(self, encoded_frame: Any) -> list[Any]:
        return [encoded_frame]


async def light_viewers(base: str, slug: str, count: int) -> None:
    import aiortc.rtcrtpreceiver

    aiortc.rtcrtpreceiver.get_decoder = lambda codec: _CountingDecoder()  # type: ignore[assignment,return-value,attr-defined]
    from live.media.clients import play

    players = []
    for _ in range(count):
        players.append(await play(http_post, f"{base}/live/{slug}/whep", stamps=False))
    print(json.dumps({"ready": [p.status for p in players]}), flush=True)
    # The orchestrator answers with the end of the measuring window.
    until = float(await asyncio.to_thread(sys.stdin.readline))
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    arrivals = [p.arrivals for p in players]
    for player in players:
        await player.close()
    print(json.dumps({"arrivals": arrivals}), flush=True)


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
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def watch_hls(playlist: Path, url: str, until: float) -> dict[str, list[float]]:
    """``listed``: milliseconds from each new segment's program date time plus
    its duration to the moment it appears in the playlist file (0 = listed the
    moment its last frame was due). ``fetch_ms``: how long fetching the playlist
    over HTTP takes, sampled twice a second."""
    seen: set[str] = set()
    listed: list[float] = []
    fetches: list[float] = []
    primed = False
    next_fetch = 0.0
    while time.monotonic() < until:
        try:
            text = playlist.read_text()
        except OSError:
            text = ""
        now = time.time()
        segments = SEGMENT.findall(text)
        if primed:
            for duration, pdt, name in segments:
                if name not in seen:
                    start = datetime.strptime(pdt, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                    listed.append((now - start - float(duration)) * 1000)
        # Segments listed before the first look cannot be timed.
        primed = primed or bool(segments)
        seen.update(name for _d, _p, name in segments)
        if time.monotonic() >= next_fetch:
            began = time.monotonic()
            if _get(url)[0] == 200:
                fetches.append((time.monotonic() - began) * 1000)
            next_fetch = time.monotonic() + 0.5
        time.sleep(0.01)
    return {"listed": listed, "fetch_ms": fetches}


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


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    configure_django()
    from live.media.clients import EncodedTrack, StampedVideoTrack, play, publish

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

    async def stream_stats() -> dict[str, Any]:
        url = f"{base}/live/{slug}/stream"
        status, _h, body = await asyncio.to_thread(_get, url, seeded["session"])
        return dict(json.loads(body)) if status == 200 else {}

    port = args.port
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "server.log").open("w"),
    )
    light = None
    publisher = None
    players: list[Any] = []
    try:
        for _ in range(100):
            if _get(f"{base}/healthz")[0] == 200:
                break
            await asyncio.sleep(0.2)
        publisher = await publish(
            http_post,
            f"{base}/live/{slug}/whip",
            key,
            video=EncodedTrack(StampedVideoTrack(640, 480, 30)),
        )
        if publisher.status != 201:
            raise RuntimeError(f"WHIP failed: {publisher.status} {publisher.body}")
        await asyncio.sleep(3)
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.base_seconds)
        base_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)

        decoders = min(args.decoders, args.viewers)
        if args.viewers > decoders:
            light = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--role",
                    "light",
                    "--url",
                    base,
                    "--slug",
                    slug,
                    "--viewers",
                    str(args.viewers - decoders),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        for _ in range(decoders):
            players.append(await play(http_post, f"{base}/live/{slug}/whep"))
        if light is not None and light.stdout is not None:
            ready = json.loads(await asyncio.to_thread(light.stdout.readline))["ready"]
            if any(status != 201 for status in ready):
                raise RuntimeError(f"some light viewers were refused: {ready}")
        # Every viewer is connected: let them settle, then measure.
        window_start = time.monotonic() + 3
        window_end = window_start + args.seconds
        if light is not None and light.stdin is not None:
            light.stdin.write(f"{window_end + 0.5}\n")
            light.stdin.flush()
        # The HLS watcher runs in its own process so its timing does not wait
        # for this (busy) process's event loop.
        hls_watcher = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                "hls",
                "--url",
                base,
                "--slug",
                slug,
                "--seconds",
                str(window_end - time.monotonic()),
                "--playlist",
                str(workdir / "hls" / slug / "index.m3u8"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        await asyncio.sleep(window_start - time.monotonic())
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        stats0 = await stream_stats()
        for player in players:
            player.latencies_ms.clear()
        await asyncio.sleep(window_end - time.monotonic())
        elapsed = time.monotonic() - t0
        server_cpu = (cpu_seconds(server.pid) - cpu0) / elapsed
        load_average = os.getloadavg()[0]
        stats1 = await stream_stats()
        ingest = {
            f"server_{name}_per_s": round((stats1[name] - stats0[name]) / elapsed, 1)
            for name in (
                "frames_in",
                "frames_encoded",
                "frames_dropped",
                "viewer_packets_skipped",
            )
        }
        rss = rss_mb(server.pid)
        latencies = [value for p in players for value in p.latencies_ms]
        arrivals = [p.arrivals for p in players]
        hls_out, _err = await asyncio.to_thread(hls_watcher.communicate, timeout=60)
        hls = json.loads(hls_out.strip().splitlines()[-1])
        hls_delays = hls["listed"]
        if light is not None and light.stdout is not None:
            arrivals += json.loads(await asyncio.to_thread(light.stdout.readline))[
                "arrivals"
            ]
        fps = [
            sum(1 for t in times if window_start <= t < window_end) / args.seconds
            for times in arrivals
        ]
    finally:
        for player in players:
            await player.close()
        if publisher is not None:
            await publisher.close()
        if light is not None:
            light.wait(timeout=30)
        server.terminate()
        server.wait(timeout=20)
    return {
        "viewers": args.viewers,
        "seconds": args.seconds,
        "decoding_viewers": decoders,
        "fps_min": round(min(fps), 1),
        "fps_median": round(statistics.median(fps), 1),
        "latency_p50_ms": round(percentile(latencies, 0.50), 1),
        "latency_p95_ms": round(percentile(latencies, 0.95), 1),
        "latency_samples": len(latencies),
        "server_cpu": round(server_cpu, 3),
        "server_cpu_publisher_only": round(base_cpu, 3),
        "server_cpu_per_viewer": round(
            (server_cpu - base_cpu) / max(1, args.viewers), 4
        ),
        "rss_mb": round(rss, 1),
        **ingest,
        # Other work on the machine skews every figure above: say how busy it was.
        "machine_load_average_1m": round(load_average, 2),
        "machine_cores": os.cpu_count(),
        "hls_listed_after_segment_end_ms_p50": round(percentile(hls_delays, 0.5), 1),
        "hls_listed_after_segment_end_ms_max": round(max(hls_delays), 1)
        if hls_delays
        else None,
        "hls_segments_seen": len(hls_delays),
        "hls_playlist_fetch_ms_p50": round(percentile(hls["fetch_ms"], 0.5), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--decoders", type=int, default=3)
    parser.add_argument("--base-seconds", type=float, default=4)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--role", choices=["main", "light", "hls"], default="main")
    parser.add_argument("--url", default="")
    parser.add_argument("--slug", default="")
    parser.add_argument("--playlist", default="")
    args = parser.parse_args()
    if args.role == "hls":
        until = time.monotonic() + args.seconds
        url = f"{args.url}/live/{args.slug}/hls/index.m3u8"
        print(json.dumps(watch_hls(Path(args.playlist), url, until)))
        return
    if args.role == "light":
        configure_django()
        asyncio.run(light_viewers(args.url, args.slug, args.viewers))
        return
    result = asyncio.run(orchestrate(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
