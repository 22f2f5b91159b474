"""Chat fan-out: N websocket viewers of one show, senders at R messages/s.

    python bench/chat_fanout.py --viewers 1000 --rate 5 --seconds 10

Starts Daphne (``config.asgi``) with Redis and PostgreSQL (SQLite if PostgreSQL is
not reachable) in a child process, connects N viewers from this one asyncio
process over raw sockets (a light load generator: no frame parsing, it scans the
byte stream for the markers the senders put in each message), and sends chat
through a few moderator sockets (moderators are exempt from the rate limit).
Then it runs a bare ``websockets`` broadcast server through the same load as the
baseline. Everything on 127.0.0.1.

Measured: delivered fraction, p50/p99 from send to receipt, server CPU (share of
one core during the send window), RSS growth per connection, and deliveries per
CPU-second for both servers. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support import free_port, wait_port  # noqa: E402

MARKER = re.compile(rb"bm(\d+)_(\d+)e")
TICKS = os.sysconf("SC_CLK_TCK")
# Viewers whose every message is timed (p50/p99); the others only count.
PROBES = 200


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: array, fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- Load generator ----------------------------------------------------------


class Viewer(asyncio.Protocol):
    """A websocket client that only counts markers in the bytes it receives."""

    def __init__(self, stats: Stats, probe: bool) -> None:
        self.stats = stats
        self.probe = probe
        self.tail = b""
        self.handshake = b""
        self.open = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.open.done():
            self.handshake += data
            head, sep, rest = self.handshake.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.open.set_exception(ConnectionError(head[:80].decode()))
                return
            self.open.set_result(None)
            data = rest
        stats = self.stats
        if not self.probe:
            # Most viewers only count markers (a C-speed scan), so the load
            # generator stays light; a marker split across reads is counted once.
            if stats.counting:
                stats.received += (self.tail + data).count(b"bm")
            self.tail = data[-1:]
            return
        buffer = self.tail + data
        cut = len(self.tail)
        now = time.time_ns() // 1000
        for match in MARKER.finditer(buffer):
            if match.end() <= cut:
                continue
            if stats.counting:
                stats.received += 1
                stats.latencies.append((now - int(match.group(2))) / 1000)
        self.tail = buffer[-40:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.lost += 1
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed"))


class Stats:
    def __init__(self) -> None:
        self.received = 0
        self.lost = 0
        self.counting = False
        self.latencies: array = array("d")


def upgrade_request(port: int, path: str, cookie: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://127.0.0.1:{port}",
    ]
    if cookie:
        lines.append(f"Cookie: sessionid={cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect_viewers(port: int, path: str, n: int, stats: Stats) -> list[Viewer]:
    loop = asyncio.get_running_loop()
    viewers: list[Viewer] = []
    batch = 50

    async def one(probe: bool) -> Viewer:
        transport, protocol = await loop.create_connection(
            lambda: Viewer(stats, probe), "127.0.0.1", port
        )
        transport.write(upgrade_request(port, path))
        await asyncio.wait_for(protocol.open, 60)
        return protocol

    for start in range(0, n, batch):
        count = min(batch, n - start)
        viewers += await asyncio.gather(
            *(one(start + i < PROBES) for i in range(count))
        )
    return viewers


async def run_load(
    *,
    port: int,
    path: str,
    cookies: list[str],
    viewers: int,
    rate: float,
    seconds: float,
    server_pid: int,
    chat_frame: bool,
    sender_path: str,
) -> dict[str, float]:
    import websockets

    stats = Stats()
    rss_before = rss_kib(server_pid)
    started = time.monotonic()
    sockets = await connect_viewers(port, path, viewers, stats)
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(2)
    rss_after = rss_kib(server_pid)
    senders = [
        await websockets.connect(
            f"ws://127.0.0.1:{port}{sender_path}",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"sessionid={cookie}"} if cookie else {},
            max_size=None,
        )
        for cookie in cookies
    ]

    async def drain(sender) -> None:
        with contextlib.suppress(Exception):
            async for _ in sender:
                pass

    drains = [asyncio.create_task(drain(s)) for s in senders]
    stats.counting = True
    cpu_start = cpu_seconds(server_pid)
    wall_start = time.monotonic()
    sent = 0
    interval = 1.0 / rate
    next_at = time.monotonic()
    deadline = next_at + seconds
    while time.monotonic() < deadline:
        stamp = time.time_ns() // 1000
        text = f"bm{sent}_{stamp}e"
        frame = (
            json.dumps({"type": "chat.send", "text": text, "ref": sent})
            if chat_frame
            else text
        )
        await senders[sent % len(senders)].send(frame)
        sent += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    expected = sent * viewers
    settle = time.monotonic() + 10
    while stats.received < expected and time.monotonic() < settle:
        await asyncio.sleep(0.1)
    cpu_used = cpu_seconds(server_pid) - cpu_start
    wall = time.monotonic() - wall_start
    stats.counting = False
    lost_during_run = stats.lost  # before we close the sockets ourselves
    for sender in senders:
        await sender.close()
    for task in drains:
        task.cancel()
    for viewer in sockets:
        if viewer.transport is not None:
            viewer.transport.close()
    await asyncio.sleep(0.5)
    return {
        "sent": sent,
        "delivered": stats.received / expected if expected else 0.0,
        "p50_ms": round(percentile(stats.latencies, 0.50), 1),
        "p99_ms": round(percentile(stats.latencies, 0.99), 1),
        "server_cpu": round(cpu_used / wall, 3),
        "rss_kib_per_conn": round((rss_after - rss_before) / max(1, viewers), 1),
        "deliveries_per_cpu_s": round(stats.received / cpu_used) if cpu_used else 0,
        "connect_seconds": round(connect_seconds, 1),
        "dropped_sockets": lost_during_run,
    }


# --- The servers ---------------------------------------------------------------


def postgres_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(
        "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
    ) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def postgres_url() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        return ""
    name = f"showfloor_bench_{uuid.uuid4().hex[:8]}"
    postgres_admin(f"CREATE DATABASE {name}")
    return f"postgres://postgres@127.0.0.1:5432/{name}"


SETUP = """
import django, json, sys
django.setup()
from datetime import timedelta
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.utils import timezone
from shows import services
from shows.models import User
brand = services.brand_create(name="Bench", slug="bench")
show = services.show_create(brand=brand, slug="bench-show", title="Bench",
                            scheduled_at=timezone.now() + timedelta(minutes=5))
services.show_start(show=show)
cookies = []
for i in range(int(sys.argv[1])):
    user = User.objects.create_user(email=f"sender{i}@bench.test", password=None,
                                    display_name=f"Sender {i}")
    services.membership_set(brand=brand, user=user, role="moderator")
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    cookies.append(s.session_key)
print(json.dumps(cookies))
"""

BASELINE = """
import asyncio, json, sys, websockets
clients = set()
async def handler(ws):
    clients.add(ws)
    try:
        async for message in ws:
            if ws.request.path.startswith("/send"):
                event = json.dumps([{"type": "chat.message", "text": message}])
                websockets.broadcast(clients - {ws}, event)
    finally:
        clients.discard(ws)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]),
                                ping_interval=None, max_queue=None):
        await asyncio.Future()
asyncio.run(main())
"""


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="showfloor-bench-"))
    database = postgres_url() or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SHOWFLOOR_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SHOWFLOOR_SERVE_MEDIA": "0",
        "SHOWFLOOR_ROOM_TICK_MS": str(args.tick_ms),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    setup = subprocess.run(
        [python, "-c", SETUP, str(args.senders)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if setup.returncode:
        sys.exit(f"bench setup failed: {setup.stderr[-2000:]}")
    cookies = json.loads(setup.stdout.strip().splitlines()[-1])
    port = free_port()
    daphne = subprocess.Popen(
        [
            python, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port),
            "--ping-interval", "3600", "--ping-timeout", "3600",
            "--websocket_connect_timeout", "60",
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    result: dict[str, object] = {"viewers": args.viewers, "rate": args.rate}
    try:
        wait_port(port)
        daphne_result = asyncio.run(
            run_load(
                port=port,
                path="/ws/shows/bench-show/",
                cookies=cookies,
                viewers=args.viewers,
                rate=args.rate,
                seconds=args.seconds,
                server_pid=daphne.pid,
                chat_frame=True,
                sender_path="/ws/shows/bench-show/",
            )
        )
        print("daphne + hub:", json.dumps(daphne_result), flush=True)
        result.update(daphne_result)
    finally:
        daphne.terminate()
        daphne.wait(timeout=20)
    if not args.no_baseline:
        port = free_port()
        baseline = subprocess.Popen([python, "-c", BASELINE, str(port)], env=env)
        try:
            wait_port(port)
            base = asyncio.run(
                run_load(
                    port=port,
                    path="/watch",
                    cookies=[""],
                    viewers=args.viewers,
                    rate=args.rate,
                    seconds=args.seconds,
                    server_pid=baseline.pid,
                    chat_frame=False,
                    sender_path="/send",
                )
            )
        finally:
            baseline.terminate()
            baseline.wait(timeout=20)
        print("bare websockets:", json.dumps(base), flush=True)
        result["baseline_deliveries_per_cpu_s"] = base["deliveries_per_cpu_s"]
        result["baseline_p99_ms"] = base["p99_ms"]
        result["baseline_delivered"] = base["delivered"]
        if base["deliveries_per_cpu_s"]:
            result["vs_baseline"] = round(
                float(result["deliveries_per_cpu_s"])
                / float(base["deliveries_per_cpu_s"]),
                2,  # type: ignore[arg-type]
            )
    if database.startswith("postgres://"):
        with contextlib.suppress(Exception):
            postgres_admin(f"DROP DATABASE IF EXISTS {database.rsplit('/', 1)[1]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
