"""Chat fan-out: N websocket viewers of one show, senders at R messages/s.

    python bench/chat_fanout.py --viewers 5000 --rate 20 --seconds 10

Starts Daphne (``config.asgi``) with Redis and PostgreSQL (SQLite if PostgreSQL is
not reachable) in a child process, then drives it with the multi-process load
generator in ``bench/ws_load.py``: most viewers are raw sockets in a few
counting processes (no frame parsing: a C-speed count of the markers the senders
put in each message), a sample of probe viewers in their own process parse
every frame and time each message from its send stamp, and one sender process
paces chat through a few moderator sockets (moderators are exempt from the rate
limit) so all ``rate * seconds`` messages go out. Then a bare ``websockets``
broadcast server runs through the same generator and load as the baseline.
Everything on 127.0.0.1.

Measured: messages sent, delivered fraction (every viewer's count, each capped
at the messages sent), p50/p99 from send to receipt (probes), server CPU (share
of one core during the send window and the settle after it; the event loop
thread's own share as ``server_loop_cpu``), RSS growth per
connection, deliveries per CPU-second for both servers, connect time and server
CPU per connect. Daphne runs twice, with the show's counting
(``realtime.counting``) on and then off (``counting_cost_ratio``: deliveries
per CPU-second on ÷ off; ``--counting-pairs N`` alternates N pairs and compares
the medians; ``--no-counting-off`` skips the run without counting). The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ws_load  # noqa: E402
from bench.support import free_port, wait_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of the whole process (every thread)."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> float:
    """CPU time of the process's main thread (its event loop) alone."""
    return cpu_seconds_of(Path(f"/proc/{pid}/task/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
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


# --- One run through the load generator ---------------------------------------


def run_load(
    *,
    port: int,
    path: str,
    cookies: list[str],
    viewers: int,
    probes: int,
    workers: int,
    concurrency: int,
    rate: float,
    seconds: float,
    server_pid: int,
    chat_frame: bool,
    sender_path: str,
    read_low_water: int,
) -> dict[str, Any]:
    probes = min(probes, viewers)
    shares = [probes, *ws_load.split(viewers - probes, workers)]
    pool = [
        ws_load.Worker(
            ws_load.viewer_worker, port, path, share, index == 0, concurrency
        )
        for index, share in enumerate(shares)
        if share
    ]
    sender = ws_load.Worker(
        ws_load.sender_worker, port, sender_path, cookies, chat_frame
    )
    try:
        return _drive(
            pool=pool,
            sender=sender,
            viewers=viewers,
            rate=rate,
            seconds=seconds,
            server_pid=server_pid,
            probes=probes,
            read_low_water=read_low_water,
        )
    finally:
        for worker in [*pool, sender]:
            with contextlib.suppress(Exception):
                worker.call("close", timeout=30)
            worker.finish()


def _drive(
    *,
    pool: list[ws_load.Worker],
    sender: ws_load.Worker,
    viewers: int,
    rate: float,
    seconds: float,
    server_pid: int,
    probes: int,
    read_low_water: int,
) -> dict[str, Any]:
    rss_before = rss_kib(server_pid)
    cpu_before = cpu_seconds(server_pid)
    started = time.monotonic()
    for worker in pool:
        worker.ask("connect")
    connected = failed = 0
    for worker in pool:
        _, ok, bad = worker.answer()
        connected, failed = connected + ok, failed + bad
    connect_seconds = time.monotonic() - started
    connect_cpu = cpu_seconds(server_pid) - cpu_before
    print(
        f"{connected} viewers connected in {connect_seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    if failed:
        print(f"{failed} of {viewers} viewers could not connect", file=sys.stderr)
    time.sleep(2)
    rss_after = rss_kib(server_pid)
    sender.call("connect")
    counting = pool[1:] if probes else pool
    for worker in pool:
        worker.call("start")
    if read_low_water > 1:
        for worker in counting:
            worker.call("batch", read_low_water)
    total = round(rate * seconds)
    cpu_start = cpu_seconds(server_pid)
    loop_start = thread_cpu_seconds(server_pid)
    loadgen_start = math.fsum(cpu_seconds(w.process.pid) for w in [*pool, sender])
    wall_start = time.monotonic()
    _, sending = sender.call("send", total, rate, timeout=seconds * 10 + 60)
    sent = int(sending["sent"])
    if read_low_water > 1:
        for worker in counting:
            worker.call("batch", 1)
    expected = sent * viewers
    settle = time.monotonic() + 10
    received = 0
    while time.monotonic() < settle:
        received = sum(worker.call("poll")[1] for worker in pool)
        if received >= expected:
            break
        time.sleep(0.1)
    cpu_used = cpu_seconds(server_pid) - cpu_start
    loop_used = thread_cpu_seconds(server_pid) - loop_start
    wall = time.monotonic() - wall_start
    loadgen_cpu = (
        math.fsum(cpu_seconds(w.process.pid) for w in [*pool, sender]) - loadgen_start
    )
    tallies = [worker.call("stop", sent)[1] for worker in pool]
    received = sum(t["received"] for t in tallies)
    latencies = array("d")
    for tally in tallies:
        latencies.frombytes(tally["latencies"])
    return {
        "sent": sent,
        "delivered": round(received / expected, 4) if expected else 0.0,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        # The first and the last tenth of the timed deliveries, in arrival order:
        # a backlog that grows during the run shows as early << late.
        "p50_early_ms": round(percentile(latencies[: len(latencies) // 10], 0.5), 1),
        "p50_late_ms": round(
            percentile(latencies[len(latencies) - len(latencies) // 10 :], 0.5), 1
        ),
        "server_cpu": round(cpu_used / wall, 3),
        "server_loop_cpu": round(loop_used / wall, 3),
        "rss_kib_per_conn": round((rss_after - rss_before) / max(1, viewers), 1),
        "deliveries_per_cpu_s": round(received / cpu_used) if cpu_used else 0,
        "us_per_delivery": round(cpu_used / received * 1e6, 2) if received else 0,
        "connect_s": round(connect_seconds, 1),
        "connect_cpu_ms_per_viewer": round(connect_cpu / max(1, connected) * 1000, 2),
        "connected": connected,
        "complete_viewers": sum(t["complete"] for t in tallies),
        "duplicates": sum(t["extra"] for t in tallies),
        "timed": len(latencies),
        "send_s": round(sending["send_seconds"], 2),
        "send_worst_late_ms": round(sending["worst_late_ms"], 1),
        "dropped_sockets": sum(t["lost"] for t in tallies),
        "loadgen_cpu": round(loadgen_cpu / wall, 3),
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
import asyncio, json, logging, sys, websockets
# Writes to viewers the bench already dropped are expected at the end.
logging.getLogger("asyncio").setLevel(logging.ERROR)
clients = set()
async def handler(ws):
    clients.add(ws)
    try:
        async for message in ws:
            if ws.request.path.startswith("/send"):
                event = json.dumps([{"type": "chat.message", "text": message}])
                websockets.broadcast(clients - {ws}, event)
    except websockets.ConnectionClosed:
        pass  # the bench drops its viewers without a closing handshake
    finally:
        clients.discard(ws)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]),
                                ping_interval=None, max_queue=None, backlog=1024):
        await asyncio.Future()
asyncio.run(main())
"""


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median deliveries per CPU-second (the lower middle
    of an even number)."""
    ordered = sorted(runs, key=lambda r: r["deliveries_per_cpu_s"])
    return ordered[(len(ordered) - 1) // 2]


def run_daphne(
    python: str,
    env: dict[str, str],
    load: dict[str, Any],
    cookies: list[str],
    *,
    counting: bool,
) -> dict[str, Any]:
    """One Daphne process through the load, with the show's counting
    (``realtime.counting``) on or off, on Redis keys of its own."""
    env = {
        **env,
        "SHOWFLOOR_COUNTING": "1" if counting else "0",
        "SHOWFLOOR_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
    }
    port = free_port()
    daphne = subprocess.Popen(
        [
            python, "-m", "daphne", "-v", "0",
            # Twisted listens with a backlog of 50 unless told otherwise; a
            # crowd connecting at once overflows it (SYN retries of 1 s, 3 s…).
            "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
            "--ping-interval", "3600", "--ping-timeout", "3600",
            "--websocket_connect_timeout", "60",
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    try:
        wait_port(port)
        return run_load(
            port=port,
            path="/ws/shows/bench-show/",
            cookies=cookies,
            server_pid=daphne.pid,
            chat_frame=True,
            sender_path="/ws/shows/bench-show/",
            **load,
        )
    finally:
        daphne.terminate()
        daphne.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument(
        "--probes", type=int, default=200, help="viewers that time every message"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="counting load-generator processes"
    )
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=64,
        help="connects in flight per load-generator process",
    )
    parser.add_argument(
        "--read-low-water",
        type=int,
        default=2048,
        help="bytes a counting viewer lets wait before it reads (1: every frame)",
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--no-counting-off",
        action="store_true",
        help="skip the second Daphne run with the show's counting off",
    )
    parser.add_argument(
        "--counting-pairs",
        type=int,
        default=1,
        help="Daphne runs with counting on and off, in alternating order",
    )
    args = parser.parse_args()
    ws_load.raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="showfloor-bench-"))
    database = postgres_url() or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database,
        # A deployment serving thousands of sockets per process pools its
        # database connections (README); without it every connect opens one.
        "DATABASE_POOL": os.environ.get("DATABASE_POOL", "1"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SHOWFLOOR_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SHOWFLOOR_SERVE_MEDIA": "0",
        "SHOWFLOOR_ROOM_TICK_MS": str(args.tick_ms),
        # Every viewer connects from 127.0.0.1.
        "SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS": "0",
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
    load = {
        "viewers": args.viewers,
        "probes": args.probes,
        "workers": args.workers,
        "concurrency": args.connect_concurrency,
        "rate": args.rate,
        "seconds": args.seconds,
        "read_low_water": args.read_low_water,
    }
    result: dict[str, Any] = {"viewers": args.viewers, "rate": args.rate}
    # Pairs alternate their order (on, off, then off, on, ...), so a run's
    # place in the invocation (a cold database, the machine's load) weighs on
    # both sides alike; the figures of each side are the medians of its runs.
    ons: list[dict[str, Any]] = []
    offs: list[dict[str, Any]] = []
    pairs = 0 if args.no_counting_off else args.counting_pairs
    for pair in range(max(1, pairs)):
        order = (True, False) if pair % 2 == 0 else (False, True)
        for counting in order[: 1 if not pairs else 2]:
            run = run_daphne(python, env, load, cookies, counting=counting)
            label = "daphne + hub" + ("" if counting else ", counting off")
            print(f"{label}:", json.dumps(run), flush=True)
            (ons if counting else offs).append(run)
    result.update(median_run(ons))
    if offs:
        off = median_run(offs)
        on_median = statistics.median(r["deliveries_per_cpu_s"] for r in ons)
        off_median = statistics.median(r["deliveries_per_cpu_s"] for r in offs)
        result["counting_off_deliveries_per_cpu_s"] = round(off_median)
        for name in ("delivered", "p50_ms", "p99_ms", "server_cpu"):
            result[f"counting_off_{name}"] = off[name]
        if off_median:
            result["counting_cost_ratio"] = round(on_median / off_median, 3)
        if len(ons) > 1:
            result["counting_runs"] = [
                [a["deliveries_per_cpu_s"], b["deliveries_per_cpu_s"]]
                for a, b in zip(ons, offs, strict=True)
            ]
    if not args.no_baseline:
        port = free_port()
        baseline = subprocess.Popen([python, "-c", BASELINE, str(port)], env=env)
        try:
            wait_port(port)
            base = run_load(
                port=port,
                path="/watch",
                cookies=[""],
                server_pid=baseline.pid,
                chat_frame=False,
                sender_path="/send",
                **load,
            )
        finally:
            baseline.terminate()
            baseline.wait(timeout=20)
        print("bare websockets:", json.dumps(base), flush=True)
        for name in ("deliveries_per_cpu_s", "delivered", "sent", "p50_ms", "p99_ms"):
            result[f"baseline_{name}"] = base[name]
        result["baseline_server_cpu"] = base["server_cpu"]
        if base["deliveries_per_cpu_s"]:
            result["vs_baseline"] = round(
                result["deliveries_per_cpu_s"] / base["deliveries_per_cpu_s"], 2
            )
    if database.startswith("postgres://"):
        with contextlib.suppress(Exception):
            postgres_admin(f"DROP DATABASE IF EXISTS {database.rsplit('/', 1)[1]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
