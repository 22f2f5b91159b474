"""Fault scenarios for the show room: nothing a viewer was told was sent is lost.

    python bench/faults.py --viewers 1000 [--outage-seconds 15] [--rate 10]
        [--scenario all|redis_restart|process_kill|db_outage]

The harness starts everything it needs on free loopback ports and removes it at
the end (also on a failure or Ctrl-C): its own PostgreSQL cluster (migrated,
seeded with a brand, a host and one live show per scenario), its own Redis, and
per scenario two Daphne processes serving ``config.asgi`` on that cluster and
that Redis under a key prefix of their own (``tests/own_services.py``). In one
asyncio process, N anonymous viewers (the ``websockets`` client, split between
the two processes) follow docs/protocol.md as a good client does: remember the
highest ``seq`` applied, ignore events at or below it, reset on a ``snapshot``,
apply a ``resumed`` backlog in order, and on a close reconnect with ``?since=``
after 0.2 to 1 s. After 4503 they wait the ``retry_after`` they were told;
after 4000 they reconnect at once without ``since``; after 4001, 4003, 4029,
4400, 4404, 4413, 1008 or 1009 they give up; a process that refuses the
connection is skipped for the other one, as a load balancer would. The host's
socket (brand staff: no chat limits) sends ``chat.send`` with a numbered text
at R messages/s and records each reply: ``ack`` (the message is durable),
``error`` (refused, e.g. ``unavailable``: not stored) or none (the socket
closed first).

A scenario sends for a while, makes one fault, keeps sending (at least
``--after-seconds``, and until every viewer has had a message since the
dependency returned, at most 30 s more), then stops and waits until every
viewer has every acknowledged message (at most 15 s):

- ``redis_restart``: Redis is SIGKILLed, kept down (``--outage-seconds``) and
  started again, empty, on the same port.
- ``process_kill``: the first Daphne process is SIGKILLed; its viewers move to
  the second, where the host's socket is.
- ``db_outage``: PostgreSQL is stopped, kept down, started again. Meanwhile
  every 200 ms each process is asked for ``/healthz``, an API read
  (``/api/shows/<slug>/orders``) and the show page (each request in a thread
  of its own, whether or not the previous one has been answered). Requests
  still out when the outage should end are waited for before PostgreSQL
  starts, so every answer counted was given during the outage.

In ``redis_restart`` and ``db_outage`` a tenth of the viewers (``--churn``)
lose their connection halfway through the outage, and another tenth as the
dependency returns (the harness aborts their TCP connections): they reconnect
with ``?since=``, so resumes are served during the outage (from PostgreSQL
while Redis is down; ``unavailable`` and 4503 while PostgreSQL is) and across
the return.

Measured per scenario (the JSON keys):

- ``acked_lost``: over all viewers, the acknowledged messages a viewer never
  got (as a live event, in a resumed backlog, or in a snapshot's chat list),
  i.e. missing (viewer, message) pairs; ``acked_lost_messages`` counts the
  acknowledged messages missing for at least one viewer. The goal is 0.
- ``duplicates``: over all viewers, chat messages applied from an event (it
  passed the seq check) although the viewer already had that message id
  (from an event or a snapshot). 0 for a correct server.
- ``recovery_s_max``: per viewer, seconds from the dependency's return (Redis
  answering again, PostgreSQL accepting connections again, or the kill itself
  for ``process_kill``) to the viewer's next newly applied chat message; the
  maximum over viewers (null when some viewer got none).
- ``answers_not_503`` (db_outage): probe answers during the outage other than
  503, ``/healthz`` included; a failed connection or a timeout counts too.
  ``answer_ms_p99`` and ``answer_ms_max``: the probes' answer times.
- Messages ``sent``, ``acked``, ``refused`` (``refused_codes``),
  ``unanswered``; ``acked_before`` (sent before the fault) and ``acked_after``
  (sent after the dependency returned); ``refused_delivered`` (refused yet
  seen by a viewer).
- Viewers: ``seq_gaps`` (seqs skipped), ``regressions`` (a snapshot older than
  what the viewer had), ``reconnects``, ``resumes``, ``snapshots`` (after the
  first), ``gave_up`` (closed with a code that forbids reconnecting),
  ``dropped`` (connections the harness cut),
  ``reconnect_s_*`` (from a close to the new socket's first frame) and
  ``first_frame_s_*`` (the successful attempt alone), ``gap_s_max`` (the
  longest silence between two new messages).
- Times: ``delivery_ms_*`` (acknowledged message sent to applied, all, and
  ``delivery_after_ms_*`` for those sent from 1 s after the return),
  ``reply_ms_*`` (``chat.send`` to its ``ack`` or ``error``).
- ``fault_s``: how long the dependency was really down (the probes still out
  are waited for, so it can exceed ``--outage-seconds``).
- Load from the fault to the last message: each server's and this process's
  CPU (share of one core) and this event loop's worst lag, to tell a slow
  server from a saturated client or machine.

Human-readable lines first; the last line is one JSON object keyed by scenario.
Daphne's logs are in the work directory (``--keep`` keeps it).
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from bench.support import free_port  # noqa: E402
from tests.own_services import (  # noqa: E402
    OwnPostgres,
    OwnRedis,
    ServiceBinaryMissing,
)

__all__ = ["SCENARIOS", "Faults", "Plan", "ServiceBinaryMissing"]

SCENARIOS = ("redis_restart", "process_kill", "db_outage")
LOOPBACK = "127.0.0.1"
# Close codes after which docs/protocol.md forbids reconnecting.
FINAL_CLOSE_CODES = frozenset({4001, 4003, 4029, 4400, 4404, 4413, 1008, 1009})
CLOSE_RECONNECT_NOW = 4000
CLOSE_UNAVAILABLE = 4503
BACKOFF_SECONDS = (0.2, 1.0)
# A process that refused the connection: the other one is tried after this.
SKIP_SECONDS = (0.05, 0.2)
CONNECT_CONCURRENCY = 64
MARKED = re.compile(r"faults (\w+) #(\d+)")
# Log lines that say nothing about the scenario (WhiteNoise without STATIC_ROOT).
NOISE = r"No directory at|mw_instance = middleware"

Say = Callable[[str], None]


def say_stdout(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Plan:
    """How one scenario runs."""

    viewers: int = 200
    rate: float = 10.0
    # Seconds the dependency stays down (redis_restart, db_outage).
    outage_seconds: float = 15.0
    # Seconds of messages before the fault, and at least after it.
    before_seconds: float = 3.0
    after_seconds: float = 5.0
    # Sending goes on until every viewer recovered (plus ``after_seconds``
    # from the fault) but stops this long after the dependency's return.
    recovery_wait_seconds: float = 30.0
    # After the last message: how long to wait for every viewer to have all.
    settle_seconds: float = 15.0
    probe_interval: float = 0.2
    database_pool: bool = True
    # Share of the viewers whose connection is cut halfway through an outage
    # and again as the dependency returns (redis_restart, db_outage).
    churn: float = 0.1


# --- Servers ------------------------------------------------------------------


SEED = """
import django, json, sys
django.setup()
from datetime import timedelta
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from shows import services
from shows.models import User
brand = services.brand_create(name="Faults", slug="faults")
host = User.objects.create_user(email="host@faults.test", password=None,
                                display_name="Fault Host")
services.membership_set(brand=brand, user=host, role="host")
for slug in sys.argv[1:]:
    show = services.show_create(brand=brand, slug=slug, title=slug,
                                scheduled_at=timezone.now() + timedelta(minutes=5))
    services.show_start(show=show)
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY] = str(host.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = host.get_session_auth_hash()
store.create()
print(json.dumps({"cookie": store.session_key}))
"""


def base_env(
    workdir: Path, database_url: str, redis_url: str, secret_key: str
) -> dict[str, str]:
    """A server's environment: this harness's cluster and Redis only (nothing
    of the caller's Showfloor, Django or pytest settings leaks in)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DATABASE_", "REDIS_URL", "SHOWFLOOR_", "DJANGO_", "PYTEST", "SECRET_KEY")
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # The same for the seeding and every server: the host's session
            # carries a hash made with it.
            "SECRET_KEY": secret_key,
            "DEBUG": "0",
            "ALLOWED_HOSTS": f"{LOOPBACK},localhost",
            "SHOWFLOOR_SERVE_MEDIA": "0",
            "SHOWFLOOR_ROOM_MAX_ANONYMOUS_PER_ADDRESS": "0",
            "SHOWFLOOR_HLS_DIR": str(workdir / "hls"),
            "SHOWFLOOR_RECORDINGS_DIR": str(workdir / "recordings"),
            "STATIC_ROOT": str(workdir / "static"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


class Daphne:
    """One Daphne process serving the whole application."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = env
        self.port = free_port()
        self.log = workdir / f"daphne-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "daphne", "-v", "0",
                    # Twisted's default backlog (50) overflows when a crowd
                    # reconnects at once (SYN retries of 1 s, 3 s…).
                    "-e", f"tcp:port={self.port}:interface={LOOPBACK}:backlog=1024",
                    "config.asgi:application",
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C reaches the harness, which
                # stops the servers itself.
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"Daphne {self.name} exited: {self.log_tail()}")
            if http_get(self.port, "/healthz", timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"Daphne {self.name} not healthy: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, like a crash."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, size: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-size:]
        return ""

    def warnings(self) -> list[str]:
        """What the server logged (at ``LOG_LEVEL=WARNING``, no access log)."""
        with contextlib.suppress(OSError):
            return [
                line
                for line in self.log.read_text(errors="replace").splitlines()
                if line.strip() and not re.search(NOISE, line)
            ]
        return []


def http_get(
    port: int, path: str, *, accept: str = "*/*", timeout: float = 5
) -> tuple[int, str]:
    """``(status, error)``: status 0 when no answer came (``error`` says why)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": accept, "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status, ""
    except (OSError, http.client.HTTPException) as exc:
        return 0, type(exc).__name__
    finally:
        conn.close()


# --- Viewers ------------------------------------------------------------------


class Room:
    """What every client of one scenario shares: the servers and the show."""

    def __init__(self, ports: list[int], slug: str) -> None:
        self.ports = ports
        self.slug = slug
        self.stopping = False

    def url(self, server: int, since: int | None) -> str:
        query = "" if since is None else f"?since={since}"
        return f"ws://{LOOPBACK}:{self.ports[server]}/ws/shows/{self.slug}/{query}"

    def origin(self, server: int) -> Any:
        return f"http://{LOOPBACK}:{self.ports[server]}"


async def open_socket(room: Room, server: int, since: int | None, cookie: str) -> Any:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else None
    return await connect(
        room.url(server, since),
        origin=room.origin(server),
        additional_headers=headers,
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=10,
        close_timeout=1,
        max_size=None,
    )


def connect_refused(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and "refused" in str(exc).lower()
    )


def failure_name(exc: BaseException) -> str:
    """What a failed connect met: the exception, and an HTTP status if any."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return type(exc).__name__ + (f" {status}" if status else "")


def marker_number(text: Any, scenario: str) -> int | None:
    match = MARKED.fullmatch(str(text))
    if match is None or match.group(1) != scenario:
        return None
    return int(match.group(2))


class Client(abc.ABC):
    """A socket that reconnects like a good client (docs/protocol.md)."""

    cookie = ""

    def __init__(self, room: Room, server: int) -> None:
        self.room = room
        self.server = server
        self.ws: Any = None
        self.applied: int | None = None
        self.ready = asyncio.Event()
        self.connects = 0
        self.failed_connects = 0
        self.failures: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()
        self.gave_up: int | None = None
        self.retry_after: float | None = None
        self.fresh = False
        # Per reconnect: seconds from the close to the new socket's first
        # frame, and from the successful attempt to that frame.
        self.lost_at: float | None = None
        self.back_after: list[float] = []
        self.answered_after: list[float] = []

    def since(self) -> int | None:
        return None

    @abc.abstractmethod
    def frame(self, events: list[Any], now: float) -> None:
        """Apply one server frame (a list of events) received at ``now``."""

    def closed(self) -> None:  # noqa: B027 - a hook; only the host has replies owed
        """The socket is gone (replies still owed will not come)."""

    async def live(self) -> None:
        delay = 0.0
        while not self.room.stopping:
            if delay:
                await asyncio.sleep(delay)
            asked = time.monotonic()
            try:
                ws = await open_socket(
                    self.room, self.server, self.since(), self.cookie
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed_connects += 1
                self.failures[failure_name(exc)] += 1
                if connect_refused(exc):
                    # Nobody listens there: go to the other process.
                    self.server = 1 - self.server
                    delay = random.uniform(*SKIP_SECONDS)
                else:
                    delay = random.uniform(*BACKOFF_SECONDS)
                continue
            self.ws, self.retry_after = ws, None
            self.connects += 1
            try:
                async for raw in ws:
                    now = time.monotonic()
                    if self.lost_at is not None:
                        self.back_after.append(now - self.lost_at)
                        self.answered_after.append(now - asked)
                        self.lost_at = None
                    self.frame(json.loads(raw), now)
            except ConnectionClosed:
                pass  # the close code says what happened
            finally:
                self.ws = None
                self.lost_at = time.monotonic()
                self.closed()
            code = int(ws.close_code or 1006)
            self.closes[code] += 1
            if self.room.stopping:
                return
            if code in FINAL_CLOSE_CODES:
                self.gave_up = code
                return
            if code == CLOSE_RECONNECT_NOW:
                # The server lost the show's sequence: a fresh snapshot.
                self.fresh = True
                delay = 0.0
            elif code == CLOSE_UNAVAILABLE and self.retry_after:
                delay = min(5.0, self.retry_after)
            else:
                delay = random.uniform(*BACKOFF_SECONDS)

    def abort(self) -> None:
        ws = self.ws
        if ws is not None and ws.transport is not None:
            ws.transport.abort()


class Viewer(Client):
    """An anonymous viewer that keeps what it applied."""

    def __init__(self, room: Room, server: int, scenario: str) -> None:
        super().__init__(room, server)
        self.scenario = scenario
        self.seen: set[int] = set()  # message numbers it has
        self.ids: set[int] = set()  # chat message ids it has
        self.applies: list[tuple[float, int]] = []  # (when, number), first time
        self.duplicates = 0
        self.seq_gaps = 0
        self.regressions = 0
        self.snapshots = 0
        self.resumes = 0
        # The connection that got its snapshot or backlog (a connection the
        # server accepted and is about to close with 4503 is not one).
        self.joined: Any = None

    def since(self) -> int | None:
        if self.fresh:
            self.fresh = False
            return None
        return self.applied

    def frame(self, events: list[Any], now: float) -> None:
        resumed_to: int | None = None
        for event in events:
            kind = event.get("type")
            seq = event.get("seq")
            if kind == "snapshot":
                if self.applied is not None and seq < self.applied:
                    self.regressions += 1
                self.applied = seq
                self.snapshots += 1
                self.joined = self.ws
                for message in event.get("chat") or []:
                    self._have(message, now, from_event=False)
                self.ready.set()
            elif kind == "resumed":
                self.resumes += 1
                self.joined = self.ws
                resumed_to = seq
            elif kind == "error":
                self.retry_after = event.get("retry_after")
            elif isinstance(seq, int):
                if self.applied is not None:
                    if seq <= self.applied:
                        continue
                    self.seq_gaps += seq - self.applied - 1
                self.applied = seq
                if kind == "chat.message":
                    self._have(event, now, from_event=True)
        if resumed_to is not None:
            # The backlog came in this frame; whatever of it is missing is a gap.
            if self.applied is not None and resumed_to > self.applied:
                self.seq_gaps += resumed_to - self.applied
                self.applied = resumed_to
            self.ready.set()

    def _have(self, message: dict[str, Any], now: float, *, from_event: bool) -> None:
        message_id = message.get("id")
        if from_event and message_id in self.ids:
            self.duplicates += 1
        self.ids.add(message_id)  # type: ignore[arg-type]
        number = marker_number(message.get("text"), self.scenario)
        if number is not None and number not in self.seen:
            self.seen.add(number)
            self.applies.append((now, number))


@dataclass
class Sent:
    at: float
    reply: str = ""  # "ack", an error code, "unanswered" or "unsent"
    replied_at: float = 0.0


class Sender(Client):
    """The host's socket: ``chat.send`` at a steady rate, replies recorded."""

    def __init__(self, room: Room, server: int, scenario: str, cookie: str) -> None:
        super().__init__(room, server)
        self.scenario = scenario
        self.cookie = cookie
        self.sent: dict[int, Sent] = {}
        self.pending: set[int] = set()
        self.sending = True
        self.role: str | None = None

    def frame(self, events: list[Any], now: float) -> None:
        for event in events:
            kind = event.get("type")
            if kind == "snapshot":
                self.role = (event.get("me") or {}).get("role")
                self.ready.set()
            elif kind == "resumed":
                self.ready.set()
            elif kind in ("ack", "error"):
                ref = str(event.get("ref") or "")
                if kind == "error" and not ref:
                    self.retry_after = event.get("retry_after")
                if not ref.startswith("m") or not ref[1:].isdigit():
                    continue
                number = int(ref[1:])
                if number in self.pending:
                    self.pending.discard(number)
                    record = self.sent[number]
                    record.reply = "ack" if kind == "ack" else str(event.get("code"))
                    record.replied_at = now

    def closed(self) -> None:
        for number in self.pending:
            self.sent[number].reply = "unanswered"
        self.pending.clear()

    async def send(self, rate: float) -> None:
        """Message ``i`` at ``t0 + i / rate`` (a late one goes at once)."""
        started = time.monotonic()
        number = 0
        while self.sending:
            due = started + number / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.sending:
                return
            record = self.sent[number] = Sent(time.monotonic())
            ws = self.ws
            if ws is None:
                record.reply = "unsent"
            else:
                frame = {
                    "type": "chat.send",
                    "ref": f"m{number}",
                    "text": f"faults {self.scenario} #{number}",
                }
                self.pending.add(number)
                try:
                    await ws.send(json.dumps(frame))
                except ConnectionClosed:
                    self.pending.discard(number)
                    record.reply = "unsent"
            number += 1

    def acked(self) -> dict[int, Sent]:
        return {n: s for n, s in self.sent.items() if s.reply == "ack"}


# --- HTTP probes --------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    server: str
    path: str
    status: int
    ms: float
    error: str
    at: float  # time.monotonic() when it was asked


class Prober:
    """Every ``interval`` each (process, path) is asked once, whether or not
    its previous answer has come (a request in a thread of its own)."""

    def __init__(self, targets: list[tuple[str, int, str, str]], interval: float):
        self.targets = targets
        self.interval = interval
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.scheduler: threading.Thread | None = None
        self.requests: list[threading.Thread] = []

    def start(self) -> None:
        self.scheduler = threading.Thread(target=self._schedule, daemon=True)
        self.scheduler.start()

    def stop(self) -> None:
        """Stop asking; returns once every answer still out has come."""
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.join(timeout=30)
        for thread in self.requests:
            thread.join(timeout=30)

    def _schedule(self) -> None:
        started = time.monotonic()
        count = 0
        while not self.stopping.is_set():
            for target in self.targets:
                thread = threading.Thread(target=self._ask, args=target, daemon=True)
                thread.start()
                self.requests.append(thread)
            count += 1
            due = started + count * self.interval
            self.stopping.wait(max(0.0, due - time.monotonic()))

    def _ask(self, server: str, port: int, path: str, accept: str) -> None:
        asked, begin = time.monotonic(), time.perf_counter()
        status, error = http_get(port, path, accept=accept, timeout=5)
        answer = Answer(
            server, path, status, (time.perf_counter() - begin) * 1000, error, asked
        )
        with self.lock:
            self.answers.append(answer)


# --- Figures ------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Timeline:
    sending_from: float = 0.0
    fault_at: float = 0.0  # the fault began (kill, stop)
    back_at: float = 0.0  # the dependency returned (or the kill, process_kill)
    sending_until: float = 0.0
    dropped: int = 0
    notes: list[str] = field(default_factory=list)
    # Load figures of the fault window (fault to the end of sending).
    load: dict[str, Any] = field(default_factory=dict)


class LoadWatch:
    """CPU of the servers and of this process, and this event loop's worst
    lag, over a window: a slow recovery measured by a saturated client or
    machine says little about the server."""

    def __init__(self, servers: list[Daphne]) -> None:
        self.servers = servers
        self.lag_max = 0.0
        self.watching = False
        self.cpu: dict[str, float | None] = {}
        self.started = 0.0
        self.own = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            if self.watching:
                self.lag_max = max(self.lag_max, loop.time() - before - 0.05)

    def begin(self) -> None:
        self.watching = True
        self.started = time.monotonic()
        self.own = time.process_time()
        self.cpu = {s.name: cpu_seconds(s) for s in self.servers}

    def end(self) -> dict[str, Any]:
        self.watching = False
        wall = max(1e-6, time.monotonic() - self.started)
        figures: dict[str, Any] = {
            "client_loop_lag_ms_max": round(self.lag_max * 1000, 1),
            "client_cpu": round((time.process_time() - self.own) / wall, 2),
        }
        for server in self.servers:
            used, before = cpu_seconds(server), self.cpu.get(server.name)
            if used is not None and before is not None:
                name = server.name.rsplit("-", 1)[1]
                figures[f"cpu_{name}"] = round((used - before) / wall, 2)
        return figures


def cpu_seconds(server: Daphne) -> float | None:
    """CPU time of a running server process (None once it is gone)."""
    if not server.alive or server.process is None:
        return None
    try:
        stat = Path(f"/proc/{server.process.pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(
    scenario: str,
    viewers: list[Viewer],
    sender: Sender,
    timeline: Timeline,
    answers: list[Answer] | None,
) -> dict[str, Any]:
    acked = sender.acked()
    acked_numbers = set(acked)
    missing: Counter[int] = Counter()
    recoveries: list[float | None] = []
    delivery_ms: list[float] = []
    delivery_after_ms: list[float] = []
    gap_max = 0.0
    delivered_anyway = set()
    for viewer in viewers:
        for number in acked_numbers - viewer.seen:
            missing[number] += 1
        after = [t for t, _ in viewer.applies if t >= timeline.back_at]
        recoveries.append(min(after) - timeline.back_at if after else None)
        times = [t for t, _ in viewer.applies if t >= timeline.sending_from]
        for earlier, later in itertools.pairwise(times):
            gap_max = max(gap_max, later - earlier)
        for when, number in viewer.applies:
            if number in acked:
                delivery_ms.append((when - acked[number].at) * 1000)
                if acked[number].at >= timeline.back_at + 1:
                    delivery_after_ms.append((when - acked[number].at) * 1000)
        delivered_anyway |= viewer.seen - acked_numbers
    back_after = [t for v in viewers for t in v.back_after]
    answered_after = [t for v in viewers for t in v.answered_after]
    replies = Counter(s.reply for s in sender.sent.values())
    refused = {
        code: n
        for code, n in replies.items()
        if code not in ("ack", "unanswered", "unsent", "")
    }
    refused_numbers = {
        n
        for n, s in sender.sent.items()
        if s.reply not in ("ack", "unanswered", "unsent", "")
    }
    not_recovered = sum(r is None for r in recoveries)
    reply_ms = [
        (s.replied_at - s.at) * 1000 for s in sender.sent.values() if s.replied_at
    ]
    result: dict[str, Any] = {
        "viewers": len(viewers),
        "sent": sum(s.reply != "unsent" for s in sender.sent.values()),
        "acked": len(acked),
        "refused": sum(refused.values()),
        "refused_codes": dict(refused),
        "unanswered": replies.get("unanswered", 0) + replies.get("", 0),
        "unsent": replies.get("unsent", 0),
        "acked_before": sum(s.at < timeline.fault_at for s in acked.values()),
        "acked_after": sum(s.at >= timeline.back_at for s in acked.values()),
        "acked_lost": sum(missing.values()),
        "acked_lost_messages": len(missing),
        "duplicates": sum(v.duplicates for v in viewers),
        "recovery_s_max": (
            None
            if not_recovered
            else rounded(max((r for r in recoveries if r is not None), default=0.0))
        ),
        "recovery_s_p50": rounded(
            percentile([r for r in recoveries if r is not None], 0.5)
        ),
        "viewers_not_recovered": not_recovered,
        "gap_s_max": rounded(gap_max),
        "delivery_ms_p50": rounded(percentile(delivery_ms, 0.5), 1),
        "delivery_ms_p99": rounded(percentile(delivery_ms, 0.99), 1),
        # Messages sent from a second after the dependency returned: whether
        # delivery is back to its usual pace (not still polling PostgreSQL).
        "delivery_after_ms_p50": rounded(percentile(delivery_after_ms, 0.5), 1),
        "delivery_after_ms_p99": rounded(percentile(delivery_after_ms, 0.99), 1),
        # From the host's chat.send to its ack or error.
        "reply_ms_p50": rounded(percentile(reply_ms, 0.5), 1),
        "reply_ms_max": rounded(max(reply_ms, default=None), 1),
        "seq_gaps": sum(v.seq_gaps for v in viewers),
        "regressions": sum(v.regressions for v in viewers),
        "refused_delivered": len(delivered_anyway & refused_numbers),
        "reconnects": sum(max(0, v.connects - 1) for v in viewers),
        "failed_connects": sum(v.failed_connects for v in viewers),
        "failed_connect_reasons": dict(sum((v.failures for v in viewers), Counter())),
        "resumes": sum(v.resumes for v in viewers),
        "snapshots": sum(max(0, v.snapshots - 1) for v in viewers),
        "close_codes": dict(sum((v.closes for v in viewers), Counter())),
        # Reconnects: close to the new socket's first frame, and the last
        # attempt (the handshake and the server's resume or snapshot) alone.
        "reconnect_s_p50": rounded(percentile(back_after, 0.5)),
        "reconnect_s_max": rounded(max(back_after, default=None)),
        "first_frame_s_p50": rounded(percentile(answered_after, 0.5)),
        "first_frame_s_max": rounded(max(answered_after, default=None)),
        "gave_up": sum(v.gave_up is not None for v in viewers),
        "dropped": timeline.dropped,
        "fault_s": rounded(timeline.back_at - timeline.fault_at),
    }
    if missing:
        result["lost_sample"] = sorted(missing)[:20]
    if answers is not None:
        times = [a.ms for a in answers]
        wrong = [a for a in answers if a.status != 503]
        result.update(
            {
                "answers": len(answers),
                "answers_not_503": len(wrong),
                "answer_ms_p99": rounded(percentile(times, 0.99), 1),
                "answer_ms_max": rounded(max(times, default=0.0), 1),
                "answers_by_path": {
                    path: dict(Counter(a.status for a in answers if a.path == path))
                    for path in sorted({a.path for a in answers})
                },
            }
        )

        def described(answer: Answer) -> str:
            return (
                f"{answer.server} {answer.path} {answer.status or answer.error} "
                f"{answer.ms:.0f} ms, asked {answer.at - timeline.fault_at:.1f} s "
                "into the outage"
            )

        if wrong:
            result["not_503_sample"] = [described(a) for a in wrong[:10]]
        result["slowest_answers"] = [
            described(a) for a in sorted(answers, key=lambda a: -a.ms)[:5]
        ]
    result.update(timeline.load)
    if timeline.notes:
        result["notes"] = timeline.notes
    return result


def summary(scenario: str, result: dict[str, Any]) -> list[str]:
    lines = [
        f"{scenario}: {result['viewers']} viewers, {result['sent']} messages sent, "
        f"{result['acked']} acked ({result['acked_before']} before the fault, "
        f"{result['acked_after']} after it), {result['refused']} refused "
        f"{result['refused_codes'] or ''}, {result['unanswered']} unanswered",
        f"  acked_lost {result['acked_lost']} "
        f"({result['acked_lost_messages']} messages), "
        f"duplicates {result['duplicates']}, recovery_s_max "
        f"{result['recovery_s_max']} (p50 {result['recovery_s_p50']}), "
        f"longest silence {result['gap_s_max']} s",
        f"  delivery p50/p99 {result['delivery_ms_p50']}/"
        f"{result['delivery_ms_p99']} ms, from 1 s after the return "
        f"{result['delivery_after_ms_p50']}/{result['delivery_after_ms_p99']} ms; "
        f"replies to the host p50 {result['reply_ms_p50']} ms, max "
        f"{result['reply_ms_max']} ms",
        f"  seq gaps {result['seq_gaps']}, regressions {result['regressions']}, "
        f"reconnects {result['reconnects']} (resumed {result['resumes']}, "
        f"snapshots {result['snapshots']}, failed {result['failed_connects']} "
        f"{result['failed_connect_reasons'] or ''}), "
        f"close codes {result['close_codes']}, gave up {result['gave_up']}, "
        f"dropped by the harness {result['dropped']}",
    ]
    if result["reconnects"]:
        lines.append(
            f"  reconnect (close to first frame) p50 {result['reconnect_s_p50']} s, "
            f"max {result['reconnect_s_max']} s; the last attempt's handshake to "
            f"first frame p50 {result['first_frame_s_p50']} s, max "
            f"{result['first_frame_s_max']} s"
        )
    if "answers" in result:
        lines.append(
            f"  during the outage: {result['answers']} HTTP answers, "
            f"{result['answers_not_503']} not 503, p99 {result['answer_ms_p99']} ms, "
            f"max {result['answer_ms_max']} ms; {result['answers_by_path']}"
        )
        lines.extend(f"  slow answer: {line}" for line in result["slowest_answers"])
    load = {k: v for k, v in result.items() if k.startswith(("cpu_", "client_"))}
    lines.append(f"  load from the fault to the last message: {load}")
    lines.extend(f"  note: {note}" for note in result.get("notes", []))
    return lines


# --- The harness ----------------------------------------------------------------


class Faults:
    """The harness: ``with Faults(plan) as faults: faults.run("db_outage")``.

    Entering starts PostgreSQL (migrated and seeded) and Redis; each ``run``
    starts two Daphne processes, drives one scenario and stops them."""

    def __init__(self, plan: Plan, *, say: Say = say_stdout, keep: bool = False):
        self.plan = plan
        self.say = say
        self.keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix="sf-faults-"))
        self.postgres: OwnPostgres | None = None
        self.redis: OwnRedis | None = None
        self.database_url = ""
        self.cookie = ""
        self.secret_key = f"faults-{uuid.uuid4().hex}{uuid.uuid4().hex}"
        self.churn = plan.churn

    def slug(self, scenario: str) -> str:
        return f"faults-{scenario.replace('_', '-')}"

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> Faults:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        started = time.monotonic()
        self.postgres = OwnPostgres()
        self.redis = OwnRedis()
        self.postgres.start()
        self.redis.start()
        self.database_url = self.postgres.create_database("showfloor")
        env = base_env(self.workdir, self.database_url, self.redis.url, self.secret_key)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        seeded = subprocess.run(
            [sys.executable, "-c", SEED, *(self.slug(s) for s in SCENARIOS)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if seeded.returncode:
            raise RuntimeError(f"seeding failed: {seeded.stderr[-3000:]}")
        self.cookie = json.loads(seeded.stdout.strip().splitlines()[-1])["cookie"]
        self.say(
            f"PostgreSQL on {self.postgres.port}, Redis on {self.redis.port}, "
            f"migrated and seeded in {time.monotonic() - started:.1f} s"
        )

    def close(self) -> None:
        for service in (self.redis, self.postgres):
            if service is not None:
                with contextlib.suppress(Exception):
                    service.close()
        if self.keep:
            self.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- one scenario ---------------------------------------------------------

    def run(
        self,
        scenario: str,
        *,
        outage_seconds: float | None = None,
        churn: float | None = None,
    ) -> dict[str, Any]:
        """Run ``scenario``; its figures (see the module docstring).
        ``outage_seconds`` and ``churn`` override the plan's."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        assert self.postgres is not None
        assert self.redis is not None
        outage = self.plan.outage_seconds if outage_seconds is None else outage_seconds
        self.churn = self.plan.churn if churn is None else churn
        env = base_env(self.workdir, self.database_url, self.redis.url, self.secret_key)
        env["SHOWFLOOR_REDIS_PREFIX"] = f"faults:{uuid.uuid4().hex[:8]}"
        env["DATABASE_POOL"] = "1" if self.plan.database_pool else "0"
        servers = [
            Daphne(f"{scenario}-{name}", env, self.workdir) for name in ("a", "b")
        ]
        started = time.monotonic()
        try:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
            self.say(
                f"{scenario}: Daphne a on {servers[0].port}, b on "
                f"{servers[1].port}, ready in {time.monotonic() - started:.1f} s"
            )
            result = asyncio.run(self._drive(scenario, servers, outage))
        finally:
            for server in servers:
                server.stop()
            # A scenario that stopped halfway leaves its dependency up again
            # for the next one (an error here must not hide the first one).
            with contextlib.suppress(Exception):
                if not self.redis.running:
                    self.redis.start()
                if not self.postgres.running:
                    self.postgres.start()
        result["seconds"] = round(time.monotonic() - started, 1)
        warnings = [f"{s.name}: {w}" for s in servers for w in s.warnings()]
        result["server_log_lines"] = len(warnings)
        for line in summary(scenario, result):
            self.say(line)
        for line, count in Counter(w[:300] for w in warnings).most_common(15):
            self.say(f"  server log ({count}x): {line}")
        return result

    async def _drive(
        self, scenario: str, servers: list[Daphne], outage: float
    ) -> dict[str, Any]:
        plan = self.plan
        room = Room([s.port for s in servers], self.slug(scenario))
        viewers = [Viewer(room, i % 2, scenario) for i in range(plan.viewers)]
        # The sender stays on the process that survives process_kill.
        sender = Sender(room, 1, scenario, self.cookie)
        tasks: list[asyncio.Task[None]] = []
        timeline = Timeline()
        answers: list[Answer] | None = None
        watch = LoadWatch(servers)
        tasks.append(asyncio.create_task(watch.run()))
        try:
            began = time.monotonic()
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

            async def join(viewer: Viewer) -> None:
                async with gate:
                    tasks.append(asyncio.create_task(viewer.live()))
                    await viewer.ready.wait()

            await asyncio.wait_for(
                asyncio.gather(*(join(v) for v in viewers)), timeout=120
            )
            tasks.append(asyncio.create_task(sender.live()))
            await asyncio.wait_for(sender.ready.wait(), timeout=30)
            if sender.role not in ("owner", "host", "moderator"):
                raise RuntimeError(f"the host's socket has role {sender.role!r}")
            self.say(
                f"{scenario}: {len(viewers)} viewers and the host connected in "
                f"{time.monotonic() - began:.1f} s"
            )
            timeline.sending_from = time.monotonic()
            sending = asyncio.create_task(sender.send(plan.rate))
            await asyncio.sleep(plan.before_seconds)
            watch.begin()
            answers = await self._fault(scenario, servers, viewers, outage, timeline)
            await self._until_recovered(viewers, timeline)
            sender.sending = False
            await sending
            timeline.sending_until = time.monotonic()
            timeline.load = watch.end()
            await self._settle(viewers, sender)
        finally:
            room.stopping = True
            for task in tasks:
                task.cancel()
            for client in [*viewers, sender]:
                client.abort()
            ended = await asyncio.gather(*tasks, return_exceptions=True)
        # A client that failed (not one that was cancelled) is the harness's bug.
        for outcome in ended:
            if isinstance(outcome, Exception):
                raise outcome
        return figures(scenario, viewers, sender, timeline, answers)

    async def _fault(
        self,
        scenario: str,
        servers: list[Daphne],
        viewers: list[Viewer],
        outage: float,
        timeline: Timeline,
    ) -> list[Answer] | None:
        assert self.postgres is not None
        assert self.redis is not None
        answers: list[Answer] | None = None
        if scenario == "redis_restart":
            timeline.fault_at = time.monotonic()
            await asyncio.to_thread(self.redis.kill)
            self.say(f"{scenario}: Redis killed, down for {outage:g} s")
            await asyncio.sleep(outage / 2)
            self._drop(viewers, timeline, "while Redis is down")
            await asyncio.sleep(outage / 2)
            await asyncio.to_thread(self.redis.start)
            timeline.back_at = time.monotonic()
            self.say(f"{scenario}: Redis answers again (empty)")
            self._drop(viewers, timeline, "as Redis is back")
        elif scenario == "process_kill":
            timeline.fault_at = timeline.back_at = time.monotonic()
            await asyncio.to_thread(servers[0].kill)
            self.say(f"{scenario}: Daphne a killed")
        else:
            timeline.fault_at = time.monotonic()
            await asyncio.to_thread(self.postgres.stop)
            self.say(f"{scenario}: PostgreSQL stopped, down for {outage:g} s")
            slug = self.slug(scenario)
            prober = Prober(
                [
                    (server.name, server.port, path, accept)
                    for server in servers
                    for path, accept in (
                        ("/healthz", "application/json"),
                        (f"/api/shows/{slug}/orders", "application/json"),
                        (f"/shows/{slug}/", "text/html"),
                    )
                ],
                self.plan.probe_interval,
            )
            prober.start()
            try:
                await asyncio.sleep(outage / 2)
                self._drop(viewers, timeline, "while PostgreSQL is down")
                await asyncio.sleep(outage / 2)
            finally:
                await asyncio.to_thread(prober.stop)
            answers = prober.answers
            await asyncio.to_thread(self.postgres.start)
            timeline.back_at = time.monotonic()
            self.say(f"{scenario}: PostgreSQL accepts connections again")
            self._drop(viewers, timeline, "as PostgreSQL is back")
        return answers

    def _drop(self, viewers: list[Viewer], timeline: Timeline, when: str) -> None:
        """Cut the connection of a ``churn`` share of the viewers (a network
        blip on their side): they reconnect with ``?since=`` at once, so a
        resume is served while the dependency is down and just after."""
        count = round(self.churn * len(viewers))
        connected = [v for v in viewers if v.ws is not None and v.joined is v.ws]
        for viewer in random.sample(connected, min(count, len(connected))):
            viewer.abort()
        timeline.dropped += min(count, len(connected))
        if count:
            self.say(f"  {min(count, len(connected))} viewers dropped {when}")

    async def _until_recovered(self, viewers: list[Viewer], timeline: Timeline) -> None:
        """Keep sending for ``after_seconds``, longer while a viewer has not
        had a message since the dependency returned (at most
        ``recovery_wait_seconds``)."""
        plan = self.plan
        back = timeline.back_at
        await asyncio.sleep(plan.after_seconds)
        while time.monotonic() < back + plan.recovery_wait_seconds:
            late = [v for v in viewers if not v.applies or v.applies[-1][0] < back]
            if not late:
                return
            await asyncio.sleep(0.25)
        timeline.notes.append(
            f"some viewers had no message {plan.recovery_wait_seconds:g} s after "
            "the dependency returned"
        )

    async def _settle(self, viewers: list[Viewer], sender: Sender) -> None:
        """Wait for the replies still owed, then for every viewer to have
        every acknowledged message (or ``settle_seconds``)."""
        deadline = time.monotonic() + 5
        while sender.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        acked = set(sender.acked())
        deadline = time.monotonic() + self.plan.settle_seconds
        while time.monotonic() < deadline:
            if all(acked <= v.seen for v in viewers):
                return
            await asyncio.sleep(0.1)


# --- CLI ------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--scenario", choices=["all", *SCENARIOS], default="all")
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=15.0,
        help="how long Redis or PostgreSQL stays down",
    )
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s")
    parser.add_argument("--before-seconds", type=float, default=3.0)
    parser.add_argument("--after-seconds", type=float, default=5.0)
    parser.add_argument(
        "--no-pool",
        action="store_true",
        help="Daphne connects to PostgreSQL per request (DATABASE_POOL=0)",
    )
    parser.add_argument(
        "--churn",
        type=float,
        default=0.1,
        help="share of viewers cut off mid-outage and as it ends",
    )
    parser.add_argument("--keep", action="store_true", help="keep Daphne's logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    plan = Plan(
        viewers=args.viewers,
        rate=args.rate,
        outage_seconds=args.outage_seconds,
        before_seconds=args.before_seconds,
        after_seconds=args.after_seconds,
        database_pool=not args.no_pool,
        churn=args.churn,
    )
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    results: dict[str, Any] = {}
    _raise_fd_limit()
    with Faults(plan, keep=args.keep) as faults:
        for scenario in scenarios:
            results[scenario] = faults.run(scenario)
    print(json.dumps(results), flush=True)
    return 0


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextlib.contextmanager
def harness(plan: Plan, *, say: Say = say_stdout) -> Iterator[Faults]:
    """``Faults`` as a plain context manager (the tests' fixture)."""
    _raise_fd_limit()
    with Faults(plan, say=say) as faults:
        yield faults


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every server was stopped", file=sys.stderr)
        sys.exit(130)
