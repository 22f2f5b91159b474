"""Auction benchmark: N socket bidders on P Daphne processes bid at random over
the last seconds of an auction with anti-sniping.

    python bench/auction.py --bidders 1000 --processes 2

Like bench/flash_sale.py it creates a fresh PostgreSQL database
(``showfloor_bench_<pid>`` on 127.0.0.1:5432), migrates and seeds it, starts
localstripe and P Daphne processes on loopback (Redis for the room events) and
the sweeper (``manage.py sweep``, the backstop that closes auctions a process
did not; ``--no-sweeper`` leaves it out), everything on 127.0.0.1. The seed is a live
show with one product (one unit) in its line-up, a host, and N bidders, each
signed in (a session cookie) with a saved card: a localstripe customer with a
card attached, which the server can charge off-session.

Every bidder opens a socket to one of the processes in turn (a refused
handshake is tried again, as the page would) and measures its clock offset
with ``clock.ping``. The host's socket starts an auction (``--duration`` s,
"extend" close: a bid within ``--extend-within`` s of the end moves it to
``--extend-by`` s after that bid), and the first bidder opens it with one tap
at the start price. Then each bidder places ``--bids-per-bidder`` bids at
uniformly random moments of the last ``--window`` s before the end the auction
started with (on the server's clock, through the measured offset): a one-tap
bid at the next amount its socket last showed (``amount_minor``), or, for
``--proxy-share`` of the bids, a maximum a random number of increments (up to
``--spread``) above it (``max_minor``). A bidder waits for the answer to one
bid before its next, and holds back while its socket shows it leading. With
``--tie`` two more bidders then send the same maximum, above every other, the
second only after the first was acknowledged: the earlier must win.

After the close the bench reads the database, and checks independently of the
service's own answer:

- ``winner_is_highest_valid_bid``: the bidder who reached the highest amount
  with an accepted bid (a tap at its amount, a maximum at its maximum, from
  the bid and maximum rows; of two equal maximums the one the auction counted
  first, of a tap and a maximum the one answered before the other was sent)
  is the auction's leader at the close, the winner every socket was told and
  the buyer of its order; the price (the auction's, the order's and its
  line's) is the highest bid row's amount, at most the winner's reach and at
  least the runner-up's;
- ``accepted_bids_lost``: acknowledged bids that are not in the database (a
  tap as the bidder's bid row at its amount, a maximum as the bidder's stored
  maximum at or above it), plus bid rows that some socket open to the end
  never received as an ``auction.bid`` event;
- ``charges``: succeeded PaymentIntents at localstripe for the auction's order.

It measures the bid answer times at the bidders (send to ``ack``/``error``),
``final_state_seen_by_all_ms`` (from the auction's close time, its final
``ends_at``, to each socket receiving ``auction.closed``; on one machine the
clocks are the same) and counts the extensions (``auction.bid`` events that
moved ``ends_at``). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.flash_sale import (  # noqa: E402
    PG,
    cpu_seconds,
    create_database,
    drop_database,
    forget_redis_keys,
    manage,
    percentile,
)
from bench.support import free_port, wait_port  # noqa: E402

CARD_NUMBER = "4242424242424242"
BEGAN = time.monotonic()


def note(what: str) -> None:
    """Progress on stderr, with the seconds since the bench began."""
    print(f"[{time.monotonic() - BEGAN:6.1f} s] {what}", file=sys.stderr, flush=True)


PRICE_MINOR = 50000

SEED = """
import json, os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib import import_module
import stripe
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils.crypto import get_random_string
from django.utils import timezone
from checkout.models import SavedCard
from shows import services
from shows.models import User
seed = json.loads(os.environ["BENCH_SEED"])
SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
brand = services.brand_create(name="Bench", slug="bench")
host = services.user_signup(email="host@bench.test", password="bench-password-1",
                            display_name="Host")
services.membership_set(brand=brand, user=host, role="host")
product = services.product_create(brand=brand, name="Signed first edition")
variant = services.variant_create(product=product, sku="BENCH-A1", name="One",
                                  price_minor=seed["price_minor"], currency="EUR",
                                  stock_available=1)
show = services.show_create(brand=brand, slug="auction", title="Auction",
                            scheduled_at=timezone.now() + timedelta(minutes=1),
                            products=[product])
services.show_start(show=show)
from checkout.services import delivery
delivery.shipping_zone_set(brand=brand, name="EU", countries=["DE", "FR", "NL"],
                           rate_minor=490, currency="EUR", free_from_minor=10000)
delivery.tax_rate_set(brand=brand, country="DE", rate_bp=1900)

store = SessionStore()

def sessions(users):
    # A signed-in session per user (one INSERT for all); their keys.
    rows = [
        store.get_model_class()(
            session_key=get_random_string(32, VALID_KEY_CHARS),
            session_data=store.encode({
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }),
            expire_date=timezone.now() + timedelta(days=1),
        )
        for user in users
    ]
    store.get_model_class().objects.bulk_create(rows)
    return [row.session_key for row in rows]

users = User.objects.bulk_create(
    User(email=f"bidder{i}@bench.test", username=f"bidder{i}@bench.test",
         display_name=f"Bidder {i:04d}", password="!")
    for i in range(seed["bidders"])
)
users = list(User.objects.filter(email__endswith="@bench.test")
             .exclude(pk=host.pk).order_by("pk"))
client = stripe.StripeClient(settings.STRIPE_SECRET_KEY,
                             base_addresses={"api": settings.STRIPE_API_BASE})

def saved_card(user):
    # As Stripe.js hands a card over, then kept on the buyer's customer.
    method = client.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": seed["card"], "exp_month": 12, "exp_year": 2031,
                 "cvc": "123"},
    })
    customer = client.v1.customers.create(
        params={"email": user.email, "payment_method": method.id})
    return SavedCard(user=user, customer_id=customer.id,
                     payment_method_id=method.id, brand="visa",
                     last4=seed["card"][-4:])

with ThreadPoolExecutor(8) as pool:
    SavedCard.objects.bulk_create(pool.map(saved_card, users))
print(json.dumps({
    "slug": show.slug,
    "product_id": product.pk,
    "variant_id": variant.pk,
    "host": sessions([host])[0],
    "bidders": [[u.pk, u.display_name, key] for u, key in zip(users, sessions(users))],
}))
"""


# --- The sockets -----------------------------------------------------------------


@dataclass
class Frame:
    """One server frame, parsed once however many sockets received it: every
    socket of a process gets the same frame for a tick."""

    key: int
    events: list[dict[str, Any]]
    first_seq: int | None = None
    last_seq: int | None = None
    bid_ids: tuple[int, ...] = ()
    last_bid: dict[str, Any] | None = None
    started: dict[str, Any] | None = None
    closed: dict[str, Any] | None = None
    settled: dict[str, Any] | None = None
    private: list[dict[str, Any]] = field(default_factory=list)


class Room:
    """What every socket saw, counted without a Python loop per socket and
    event where possible (the client shares two cores with the servers)."""

    def __init__(self) -> None:
        self.cache: collections.OrderedDict[str, Frame] = collections.OrderedDict()
        self.frames = 0
        # Frame key → how many sockets applied it whole; its bid ids.
        self.applied: collections.Counter[int] = collections.Counter()
        self.frame_bids: dict[int, tuple[int, ...]] = {}
        # Bid ids seen by sockets that applied only part of a frame.
        self.partly: collections.Counter[int] = collections.Counter()
        # Every auction.bid event, by seq (the room's order).
        self.bid_events: dict[int, dict[str, Any]] = {}
        self.duplicates = 0
        # Why connects were tried again, and how often.
        self.connect_retries: collections.Counter[str] = collections.Counter()

    def frame(self, text: str) -> Frame:
        known = self.cache.get(text)
        if known is not None:
            self.cache.move_to_end(text)
            return known
        decoded = json.loads(text)
        events = decoded if isinstance(decoded, list) else [decoded]
        self.frames += 1
        frame = Frame(key=self.frames, events=events)
        bids = []
        for event in events:
            seq = event.get("seq")
            kind = event.get("type")
            if seq is None or kind == "snapshot":
                frame.private.append(event)
                if kind != "snapshot":
                    continue
            if isinstance(seq, int):
                if frame.first_seq is None:
                    frame.first_seq = seq
                frame.last_seq = seq
            if kind == "auction.bid":
                bids.append(event["bid"]["id"])
                frame.last_bid = event
                self.bid_events.setdefault(seq, event)
            elif kind == "auction.started":
                frame.started = event
            elif kind == "auction.closed":
                frame.closed = event
            elif kind == "auction.settled":
                frame.settled = event
        frame.bid_ids = tuple(bids)
        self.frame_bids[frame.key] = frame.bid_ids
        self.cache[text] = frame
        if len(self.cache) > 512:
            self.cache.popitem(last=False)
        return frame

    def seen(self) -> collections.Counter[int]:
        """Bid id → how many sockets received it."""
        counts = collections.Counter(self.partly)
        for key, times in self.applied.items():
            for bid in self.frame_bids[key]:
                counts[bid] += times
        return counts


@dataclass
class Answer:
    kind: str  # "tap" or "max"
    value: int
    sent: float  # perf_counter
    ms: float = 0.0
    code: str = ""  # "ack" or the error code


class Bidder:
    """One signed-in viewer's socket: keeps what the room shows and answers
    its own bids."""

    def __init__(
        self, room: Room, index: int, user_id: int, name: str, cookie: str
    ) -> None:
        self.room = room
        self.index = index
        self.user_id = user_id
        self.name = name
        self.cookie = cookie
        self.ws: Any = None
        self.last_seq = 0
        self.card: dict[str, Any] | None = None
        self.next_minor = 0
        self.leader: str | None = None
        self.ends_at = 0
        self.closed: dict[str, Any] | None = None
        self.closed_seen_ms = 0.0
        self.settled: dict[str, Any] | None = None
        self.private: list[dict[str, Any]] = []
        self.waiting: dict[int, tuple[Answer, asyncio.Future[None]]] = {}
        self.answers: list[Answer] = []
        self.offset_ms = 0.0
        self.rtt_ms = 0.0
        self.ping_sent = 0.0
        self.pong: asyncio.Future[tuple[float, float]] | None = None
        self.lost = False
        self.ready = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, base: str, slug: str, attempts: int = 6) -> None:
        """Open the socket and wait for its snapshot; a refused handshake or a
        socket closed before its snapshot (4503: the database did not answer
        in time) is tried again after a pause, as the page reconnects
        (counted in ``Room.connect_retries``)."""
        import websockets

        for attempt in range(attempts):
            self.lost, self.ready = False, asyncio.Event()
            try:
                self.ws = await websockets.connect(
                    f"{base}/ws/shows/{slug}/",
                    origin=base.replace("ws://", "http://"),
                    additional_headers={"Cookie": f"sessionid={self.cookie}"},
                    compression=None,
                    ping_interval=None,
                    max_size=None,
                    open_timeout=60,
                )
            except (websockets.InvalidStatus, OSError) as exc:
                why = str(exc)[:80]
            else:
                self.reader = asyncio.create_task(self.read())
                waiting = asyncio.create_task(self.ready.wait())
                await asyncio.wait(
                    [waiting, self.reader], return_when=asyncio.FIRST_COMPLETED
                )
                if self.ready.is_set():
                    return
                waiting.cancel()
                why = f"closed {self.ws.close_code} before the snapshot"
            self.room.connect_retries[why] += 1
            if attempt == attempts - 1:
                raise ConnectionError(f"{self.name}: {why}")
            await asyncio.sleep(0.5 * 2**attempt)

    async def read(self) -> None:
        import websockets

        try:
            async for text in self.ws:
                self.received(self.room.frame(text), time.time() * 1000)
        except websockets.ConnectionClosed:
            pass
        self.lost = True

    def received(self, frame: Frame, now_ms: float) -> None:
        if frame.first_seq is not None:
            if frame.first_seq > self.last_seq:
                self.room.applied[frame.key] += 1
                self.last_seq = frame.last_seq or self.last_seq
                self.apply(frame.started, frame.last_bid, frame.closed, now_ms)
                if frame.settled is not None:
                    self.settled = frame.settled
            else:
                # Part of it was applied already (a duplicate delivery).
                for event in frame.events:
                    seq = event.get("seq")
                    if not isinstance(seq, int) or event.get("type") == "snapshot":
                        continue
                    if seq <= self.last_seq:
                        self.room.duplicates += 1
                        continue
                    self.last_seq = seq
                    kind = event.get("type")
                    if kind == "auction.bid":
                        self.room.partly[event["bid"]["id"]] += 1
                        self.apply(None, event, None, now_ms)
                    elif kind == "auction.started":
                        self.apply(event, None, None, now_ms)
                    elif kind == "auction.closed":
                        self.apply(None, None, event, now_ms)
                    elif kind == "auction.settled":
                        self.settled = event
        for event in frame.private:
            self.answered(event, now_ms)

    def apply(
        self,
        started: dict[str, Any] | None,
        bid: dict[str, Any] | None,
        closed: dict[str, Any] | None,
        now_ms: float,
    ) -> None:
        if started is not None:
            self.show_card(started["auction"])
        if bid is not None:
            self.next_minor = bid["next_minor"]
            self.leader = bid["leader"]
            self.ends_at = bid["ends_at"]
        if closed is not None and self.closed is None:
            self.closed = closed
            self.closed_seen_ms = now_ms

    def show_card(self, card: dict[str, Any] | None) -> None:
        if not card or card.get("status") != "running":
            return
        self.card = card
        self.next_minor = card["next_minor"]
        self.leader = card["leader"]
        self.ends_at = card["ends_at"]

    def answered(self, event: dict[str, Any], now_ms: float) -> None:
        kind = event.get("type")
        if kind == "snapshot":
            self.last_seq = event["seq"]
            self.show_card(event.get("auction"))
            self.ready.set()
        elif kind in ("ack", "error") and event.get("ref") in self.waiting:
            answer, done = self.waiting.pop(event["ref"])
            answer.ms = (time.perf_counter() - answer.sent) * 1000
            answer.code = "ack" if kind == "ack" else str(event.get("code"))
            if not done.done():
                done.set_result(None)
        elif kind == "clock.pong" and self.pong is not None:
            if not self.pong.done():
                self.pong.set_result((event["server_now"], now_ms))
        else:
            self.private.append(event)

    async def measure_clock(self, pings: int = 3) -> None:
        """The server clock's offset from this one, from the ping with the
        shortest round trip (as NTP picks its samples)."""
        import websockets

        best: tuple[float, float] | None = None
        for _ in range(pings):
            self.pong = asyncio.get_running_loop().create_future()
            self.ping_sent = time.time() * 1000
            try:
                await self.ws.send(
                    json.dumps({"type": "clock.ping", "t": self.ping_sent})
                )
                server_now, back = await asyncio.wait_for(self.pong, 10)
            except (TimeoutError, ConnectionError, websockets.ConnectionClosed):
                continue
            rtt = back - self.ping_sent
            if best is None or rtt < best[0]:
                best = (rtt, server_now - (self.ping_sent + rtt / 2))
        if best is not None:
            self.rtt_ms, self.offset_ms = best

    async def send(
        self, ref: int, message: dict[str, Any], kind: str, value: int
    ) -> Answer:
        """Send one message with ``ref`` and wait for its answer (up to 30 s;
        ``no_answer`` when none came or the socket was gone)."""
        import websockets

        answer = Answer(kind=kind, value=value, sent=time.perf_counter())
        done = asyncio.get_running_loop().create_future()
        self.waiting[ref] = (answer, done)
        self.answers.append(answer)
        try:
            await self.ws.send(json.dumps({**message, "ref": ref}))
            await asyncio.wait_for(done, 30)
        except (TimeoutError, ConnectionError, websockets.ConnectionClosed):
            self.waiting.pop(ref, None)
            answer.code = "no_answer"
        return answer

    def server_ms_to_local(self, server_ms: float) -> float:
        return server_ms - self.offset_ms


def step_at(increments: list[list[int]], amount: int) -> int:
    """The increment the table gives at ``amount``."""
    step = increments[0][1]
    for start, size in increments:
        if amount >= start:
            step = size
    return step


class Refs:
    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> int:
        self.last += 1
        return self.last


async def bid_storm(
    bidder: Bidder,
    auction_id: int,
    increments: list[list[int]],
    moments: list[float],
    rng: random.Random,
    proxy_share: float,
    spread: int,
    refs: Refs,
    held_back: collections.Counter[str],
) -> None:
    """One bidder's bids at ``moments`` (server epoch ms)."""
    for moment in sorted(moments):
        delay = (bidder.server_ms_to_local(moment) - time.time() * 1000) / 1000
        if delay > 0:
            await asyncio.sleep(delay)
        if bidder.closed is not None:
            held_back["closed"] += 1
            continue
        if bidder.leader == bidder.name:
            held_back["leading"] += 1
            continue
        seen = bidder.next_minor
        if rng.random() < proxy_share:
            value = seen + step_at(increments, seen) * rng.randint(0, spread)
            message = {"auction_id": auction_id, "max_minor": value}
            kind = "max"
        else:
            value = seen
            message = {"auction_id": auction_id, "amount_minor": value}
            kind = "tap"
        await bidder.send(refs(), {"type": "auction.bid", **message}, kind, value)


# --- The run ---------------------------------------------------------------------


@dataclass
class Servers:
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]
    daphnes: list[subprocess.Popen[bytes]]
    ports: list[int]
    stripe_base: str
    logs: Path
    seeded: dict[str, Any] = field(default_factory=dict)


def start_servers(
    args: argparse.Namespace, database: str, logs: Path, *, migrate: bool
) -> Servers:
    """localstripe, the (migrated and) seeded database, P Daphne processes and
    the sweeper; the caller stops them (``stop_servers``)."""
    from checkout.devstripe import register_webhook

    secret = "whsec_bench_" + secrets.token_hex(8)
    ports = [free_port() for _ in range(args.processes)]
    stripe_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG}/{database}",
        "DATABASE_POOL": "1",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SHOWFLOOR_REDIS_PREFIX": f"bench{os.getpid()}",
        "SHOWFLOOR_SERVE_MEDIA": "0",
        "STRIPE_WEBHOOK_SECRET": secret,
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    servers = Servers(env, [], [], ports, env["STRIPE_API_BASE"], logs)
    try:
        servers.procs.append(
            spawn(
                [
                    sys.executable,
                    "-m",
                    "checkout.devstripe",
                    "--port",
                    str(stripe_port),
                ],
                env,
                logs / "localstripe.log",
            )
        )
        if migrate:
            manage(env, "migrate", "--noinput")
            note("migrated")
        for port in ports:
            daphne = spawn(
                [
                    sys.executable, "-m", "daphne", "-v", "0",
                    "-e", f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
                    "--ping-interval", "3600", "--ping-timeout", "3600",
                    "--websocket_connect_timeout", "60",
                    "config.asgi:application",
                ],
                env,
                logs / f"daphne-{port}.log",
            )  # fmt: skip
            servers.procs.append(daphne)
            servers.daphnes.append(daphne)
        if args.sweeper:
            servers.procs.append(
                spawn(
                    [sys.executable, "manage.py", "sweep", "--interval", "1"],
                    env,
                    logs / "sweep.log",
                )
            )
        wait_port(stripe_port)
        # While the servers start. The webhook is registered afterwards: the
        # seed's customers' events would only add noise.
        servers.seeded = seed(env, args)
        note(f"seeded {len(servers.seeded['bidders'])} bidders with saved cards")
        for port in ports:
            wait_port(port)
        note(f"{len(ports)} Daphne processes listen")
        register_webhook(
            servers.stripe_base, f"http://127.0.0.1:{ports[0]}/stripe/webhook/", secret
        )
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def spawn(
    command: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_servers(servers: Servers) -> None:
    for proc in servers.procs:
        proc.terminate()
    for proc in servers.procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def seed(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    settings = {
        "bidders": args.bidders + (2 if args.tie else 0),
        "price_minor": PRICE_MINOR,
        "card": CARD_NUMBER,
    }
    out = manage({**env, "BENCH_SEED": json.dumps(settings)}, "shell", "-c", SEED)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def open_sockets(
    bidders: list[Bidder], bases: list[str], slug: str, concurrency: int
) -> float:
    """Connect every bidder (to the processes in turn), then measure each
    one's clock once all are in; returns the seconds the connects took."""
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)

    async def one(bidder: Bidder) -> None:
        async with gate:
            await bidder.connect(bases[bidder.index % len(bases)], slug)

    await asyncio.gather(*(one(b) for b in bidders))
    took = time.monotonic() - started
    await asyncio.gather(*(b.measure_clock() for b in bidders))
    return took


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """The client's own event-loop delays: a late timer means the answer times
    include the load generator's backlog."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - before - 0.01) * 1000)


async def drive(
    args: argparse.Namespace, seeded: dict[str, Any], ports: list[int], pids: list[int]
) -> dict[str, Any]:
    """Connect, start the auction, bid, and wait until every socket saw the
    close and the sale settled."""
    rng = random.Random(args.seed)
    room = Room()
    bases = [f"ws://127.0.0.1:{port}" for port in ports]
    everyone = [
        Bidder(room, i, user_id, name, cookie)
        for i, (user_id, name, cookie) in enumerate(seeded["bidders"])
    ]
    storm, pair = everyone[: args.bidders], everyone[args.bidders :]
    host = Bidder(room, -1, 0, "Host", seeded["host"])
    await host.connect(bases[0], seeded["slug"])
    connect_s = await open_sockets(everyone, bases, seeded["slug"], 32)
    note(f"{len(everyone)} bidders connected in {connect_s:.1f} s")
    refs = Refs()
    stop = asyncio.Event()
    lags: list[float] = []
    lagging = asyncio.create_task(loop_lag(stop, lags))
    start = {
        "type": "auction.start",
        "product_id": seeded["product_id"],
        "start_minor": args.start_minor,
        "duration_seconds": args.duration,
        "increments": INCREMENTS,
        "close": "extend",
        "extend_within_seconds": args.extend_within,
        "extend_by_seconds": args.extend_by,
    }
    started = await host.send(refs(), start, "start", 0)
    if started.code != "ack":
        raise RuntimeError(f"auction.start answered {started.code}")
    deadline = time.monotonic() + 10
    while host.card is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if host.card is None:
        raise RuntimeError("no auction.started reached the host's socket")
    card = host.card
    auction_id, first_end = card["id"], card["ends_at"]
    window_ms = args.window * 1000
    note(
        f"auction {auction_id} started, ends in {first_end / 1000 - time.time():.1f} s"
    )
    held_back: collections.Counter[str] = collections.Counter()
    # The opening bid: one tap at the start price, before the last seconds.
    opening = await storm[0].send(
        refs(),
        {
            "type": "auction.bid",
            "auction_id": auction_id,
            "amount_minor": card["next_minor"],
        },
        "tap",
        card["next_minor"],
    )
    if opening.code != "ack":
        raise RuntimeError(f"the opening bid was answered {opening.code}")
    server_cpu = sum(cpu_seconds(pid) for pid in pids)
    client_cpu = time.process_time()
    await asyncio.gather(
        *(
            bid_storm(
                bidder,
                auction_id,
                card["increments"],
                [
                    first_end - window_ms * rng.random()
                    for _ in range(args.bids_per_bidder)
                ],
                random.Random(rng.random()),
                args.proxy_share,
                args.spread,
                refs,
                held_back,
            )
            for bidder in storm
        )
    )
    note("every planned bid answered")
    tie: dict[str, Any] = {}
    if pair:
        tie = await tie_at_the_top(pair, storm, auction_id, card["increments"], refs)
    # Until every open socket saw the close (or the end passed long ago).
    while True:
        open_ = [b for b in everyone if not b.lost]
        if all(b.closed is not None for b in open_):
            break
        ends_at = max([b.ends_at for b in open_] or [first_end])
        if time.time() * 1000 > ends_at + args.close_wait * 1000:
            break
        await asyncio.sleep(0.05)
    note("closed")
    # The winner's charge: the room's settled event, the winner's own notice.
    named = next((b.closed.get("winner") for b in everyone if b.closed), None)
    winners = [b for b in everyone if b.name == named]
    settle_by = time.monotonic() + args.close_wait
    while time.monotonic() < settle_by:
        if all(b.settled is not None for b in everyone if not b.lost) and all(
            any(e.get("type") == "auction.won" for e in b.private) for b in winners
        ):
            break
        await asyncio.sleep(0.05)
    note("settled")
    server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_cpu
    client_cpu = time.process_time() - client_cpu
    stop.set()
    await lagging
    dropped = {b.index for b in [host, *everyone] if b.lost}
    for bidder in [host, *everyone]:
        with contextlib.suppress(Exception):
            await bidder.ws.close()
    return {
        "room": room,
        "everyone": everyone,
        "sockets": [host, *everyone],
        "dropped": dropped,
        "storm": storm,
        "auction_id": auction_id,
        "first_end": first_end,
        "held_back": held_back,
        "tie": tie,
        "connect_s": connect_s,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "client_lag_ms": lags,
    }


async def tie_at_the_top(
    pair: list[Bidder],
    storm: list[Bidder],
    auction_id: int,
    increments: list[list[int]],
    refs: Refs,
) -> dict[str, Any]:
    """Two bidders send the same maximum, above everything the others sent;
    the second waits for the first's answer."""
    top = max(
        [a.value for b in storm for a in b.answers] + [pair[0].next_minor], default=0
    )
    value = top + 10 * step_at(increments, top)
    answers = []
    for bidder in pair:
        answer = await bidder.send(
            refs(),
            {"type": "auction.bid", "auction_id": auction_id, "max_minor": value},
            "max",
            value,
        )
        answers.append(answer.code)
    return {
        "max_minor": value,
        "first": pair[0].user_id,
        "second": pair[1].user_id,
        "answers": answers,
    }


# Increments: 1 € up to 100 €, 5 € up to 500 €, then 10 €.
INCREMENTS = [[0, 100], [10000, 500], [50000, 1000]]

CHECK = """
import json, os
from checkout.models import Auction, AuctionMax, Bid, Order, Payment
from shows.models import Variant

def ms(moment):
    return int(moment.timestamp() * 1000) if moment else None

auction = Auction.objects.get(pk=int(os.environ["BENCH_AUCTION"]))
order = auction.order
orders = Order.objects.filter(auction=auction)
print(json.dumps({
    "auction": {
        "status": auction.status, "outcome": auction.outcome,
        "started_at": ms(auction.started_at), "ends_at": ms(auction.ends_at),
        "closed_at": ms(auction.closed_at), "current_minor": auction.current_minor,
        "leader_id": auction.leader_id, "buyer_id": auction.buyer_id,
        "amount_minor": auction.amount_minor, "extensions": auction.extensions,
        "bid_count": auction.bid_count, "settlement": auction.settlement,
    },
    "bids": [
        [b.id, b.bidder_id, b.amount_minor, b.proxy, b.buy_now]
        for b in Bid.objects.filter(auction=auction).order_by("id")
    ],
    "maxes": [
        [m.user_id, m.max_minor, m.placed]
        for m in AuctionMax.objects.filter(auction=auction)
    ],
    "orders": orders.count(),
    "order": order and {
        "public_id": str(order.public_id), "buyer_id": order.buyer_id,
        "status": order.status, "total_minor": order.total_minor,
        "line_minor": sum(l.unit_price_minor * l.quantity for l in order.lines.all()),
        "payments": [[p.status, p.amount_minor, p.intent_id]
                     for p in Payment.objects.filter(order__auction=auction)],
    },
    "stock": Variant.objects.get(pk=auction.variant_id).stock_available,
}))
"""


def check_database(env: dict[str, str], auction_id: int) -> dict[str, Any]:
    out = manage({**env, "BENCH_AUCTION": str(auction_id)}, "shell", "-c", CHECK)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def charges_at_localstripe(base: str, order_public_id: str) -> dict[str, int]:
    """Succeeded PaymentIntents at localstripe: for the auction's order, and in
    all (the bench makes no other payment)."""
    import stripe

    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": base})
    intents = [
        intent.to_dict()
        for intent in client.v1.payment_intents.list(
            params={"limit": 100}
        ).auto_paging_iter()
    ]
    succeeded = [i for i in intents if i["status"] == "succeeded"]
    # The off-session charge names the order under ``auction_order``, an
    # intent opened for the buyer's sheet under ``order``.
    return {
        "for_order": sum(
            1
            for i in succeeded
            if order_public_id
            in {(i.get("metadata") or {}).get(k) for k in ("order", "auction_order")}
        ),
        "succeeded": len(succeeded),
        "intents": len(intents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bidders", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--bids-per-bidder", type=int, default=2)
    parser.add_argument(
        "--window", type=float, default=3.0, help="seconds before the first end"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds (10-900)")
    parser.add_argument("--extend-within", type=int, default=10)
    parser.add_argument("--extend-by", type=int, default=10)
    parser.add_argument("--start-minor", type=int, default=1000)
    parser.add_argument("--proxy-share", type=float, default=0.5)
    parser.add_argument(
        "--spread", type=int, default=20, help="a maximum's increments above"
    )
    parser.add_argument(
        "--tie", action="store_true", help="two more bidders tie at the top"
    )
    parser.add_argument(
        "--no-sweeper",
        dest="sweeper",
        action="store_false",
        help="no manage.py sweep: the processes' own timers close the auction",
    )
    parser.add_argument(
        "--database",
        help="an empty, migrated PostgreSQL database to use (and leave) "
        "instead of a fresh one",
    )
    parser.add_argument(
        "--close-wait", type=float, default=15.0, help="seconds to wait for the close"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = secrets.randbelow(2**32)
    print(json.dumps(run(args)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.ws_load import raise_fd_limit

    raise_fd_limit()
    load = os.getloadavg()[0]
    database = args.database or f"showfloor_bench_{os.getpid()}"
    logs = Path(tempfile.mkdtemp(prefix="showfloor-auction-"))
    if not args.database:
        create_database(database)
    servers: Servers | None = None
    try:
        servers = start_servers(args, database, logs, migrate=not args.database)
        outcome = asyncio.run(
            drive(
                args,
                servers.seeded,
                servers.ports,
                [daphne.pid for daphne in servers.daphnes],
            )
        )
        rows = check_database(servers.env, outcome["auction_id"])
        order = rows.get("order") or {}
        charges = charges_at_localstripe(
            servers.stripe_base, str(order.get("public_id", ""))
        )
    except BaseException:
        for log in sorted(logs.glob("*.log")):
            tail = log.read_text(errors="replace")[-2000:]
            if tail.strip():
                print(f"--- {log.name}\n{tail}", file=sys.stderr)
        raise
    finally:
        if servers is not None:
            stop_servers(servers)
        if not args.database:
            drop_database(database)
        forget_redis_keys("redis://127.0.0.1:6379/0", f"bench{os.getpid()}")
    return summarize(args, outcome, rows, charges, load)


def highest_valid_bid(
    rows: dict[str, Any], answers: dict[int, list[Answer]]
) -> dict[str, Any]:
    """The bidder the rules make the winner, from the database's rows alone
    (not from the auction's own leader): each bidder reaches the higher of
    their maximum and their highest own (not proxy) bid; the highest reach
    wins; of equal ones the earlier arrival. Two equal maximums are ordered by
    the auction's arrival count (``placed``); a tap and a maximum by the
    bidders' own clocks when one was answered before the other was sent."""
    reach: dict[int, tuple[int, str, int]] = {}
    for user_id, max_minor, placed in rows["maxes"]:
        reach[user_id] = (max_minor, "max", placed)
    for bid_id, user_id, amount, proxy, _buy_now in rows["bids"]:
        if not proxy and amount > reach.get(user_id, (-1, "", 0))[0]:
            reach[user_id] = (amount, "tap", bid_id)
    if not reach:
        return {"winner": None, "top": None, "runner_up": None, "tie": None}
    top = max(value for value, _, _ in reach.values())
    candidates = [user for user, (value, _, _) in reach.items() if value == top]
    runner_up = max(
        (value for user, (value, _, _) in reach.items() if value < top), default=None
    )
    tie = None
    winner = candidates[0]
    if len(candidates) > 1:
        runner_up = top
        kinds = {reach[user][1] for user in candidates}
        if kinds == {"max"}:
            winner = min(candidates, key=lambda user: reach[user][2])
            tie = "placed"
        else:
            # When each request was answered (perf_counter), per candidate.
            spans = []
            for user in candidates:
                span = next(
                    (
                        (a.sent, a.sent + a.ms / 1000)
                        for a in answers.get(user, [])
                        if a.code == "ack" and a.value == top
                    ),
                    None,
                )
                spans.append((span, user))
            known = sorted((span, user) for span, user in spans if span is not None)
            first = known[0] if known else None
            if (
                first is not None
                and len(known) == len(spans)
                and all(first[0][1] < span[0] for span, _ in known[1:])
            ):
                winner, tie = first[1], "answered before the other was sent"
            else:
                tie = "undecided"
    return {"winner": winner, "top": top, "runner_up": runner_up, "tie": tie}


def summarize(
    args: argparse.Namespace,
    outcome: dict[str, Any],
    rows: dict[str, Any],
    charges: dict[str, int],
    load: float,
) -> dict[str, Any]:
    everyone: list[Bidder] = outcome["everyone"]
    sockets: list[Bidder] = outcome["sockets"]
    open_sockets = [b for b in sockets if b.index not in outcome["dropped"]]
    auction, bids, order = rows["auction"], rows["bids"], rows["order"] or {}
    answers = {b.user_id: b.answers for b in everyone}
    sent = [a for b in everyone for a in b.answers]
    acked = [a for a in sent if a.code == "ack"]
    refused = collections.Counter(a.code for a in sent if a.code != "ack")

    truth = highest_valid_bid(rows, answers)
    price = auction["current_minor"]
    names = {b.user_id: b.name for b in everyone}
    closed = next((b.closed for b in sockets if b.closed), None) or {}
    winner_is_highest = (
        auction["outcome"] == "sold"
        and truth["winner"] is not None
        and truth["tie"] != "undecided"
        and auction["leader_id"] == truth["winner"]
        and auction["buyer_id"] == truth["winner"]
        and order.get("buyer_id") == truth["winner"]
        and closed.get("winner") == names.get(truth["winner"])
        and price == max((amount for _, _, amount, _, _ in bids), default=None)
        and order.get("total_minor") == price
        and order.get("line_minor") == price
        and closed.get("amount_minor") == price
        and (truth["runner_up"] or 0) <= price <= truth["top"]
    )

    # Every acknowledged bid is in the database ...
    taps = {(user, amount) for _, user, amount, proxy, _ in bids if not proxy}
    maxima = {user: max_minor for user, max_minor, _ in rows["maxes"]}
    missing_in_db = 0
    for bidder in everyone:
        for answer in bidder.answers:
            if answer.code != "ack":
                continue
            if answer.kind == "tap":
                missing_in_db += (bidder.user_id, answer.value) not in taps
            else:
                missing_in_db += maxima.get(bidder.user_id, -1) < answer.value
    # ... and every bid row reached every socket open to the end.
    seen = outcome["room"].seen()
    ids = {bid_id for bid_id, *_ in bids}
    not_seen_by_all = sum(1 for bid_id in ids if seen[bid_id] < len(open_sockets))
    deliveries_missing = sum(max(0, len(open_sockets) - seen[bid_id]) for bid_id in ids)

    # The close as each socket saw it, from the auction's final end.
    close_ms = auction["ends_at"]
    seen_close = [b.closed_seen_ms - close_ms for b in open_sockets if b.closed]
    bid_events = [
        outcome["room"].bid_events[seq] for seq in sorted(outcome["room"].bid_events)
    ]
    end, moved = outcome["first_end"], 0
    for event in bid_events:
        if event["ends_at"] > end:
            moved, end = moved + 1, event["ends_at"]
    won = [
        e
        for b in everyone
        for e in b.private
        if e.get("type") == "auction.won" and b.user_id == auction["buyer_id"]
    ]
    settled = next((b.settled for b in sockets if b.settled), None) or {}
    tie = outcome["tie"]
    lags = outcome["client_lag_ms"]
    ack_ms = [a.ms for a in acked]
    answer_ms = [a.ms for a in sent if a.code != "no_answer"]
    summary: dict[str, Any] = {
        "bidders": args.bidders,
        "processes": args.processes,
        "bids_per_bidder": args.bids_per_bidder,
        "window_s": args.window,
        "duration_s": args.duration,
        "extend_within_s": args.extend_within,
        "extend_by_s": args.extend_by,
        "proxy_share": args.proxy_share,
        "tie": bool(tie),
        "seed": args.seed,
        "winner_is_highest_valid_bid": winner_is_highest,
        "accepted_bids_lost": missing_in_db + not_seen_by_all,
        "bid_ack_p50_ms": round(percentile(ack_ms, 0.50), 1),
        "bid_ack_p99_ms": round(percentile(ack_ms, 0.99), 1),
        "bid_ack_max_ms": round(max(ack_ms, default=0.0), 1),
        "final_state_seen_by_all_ms_p50": round(percentile(seen_close, 0.50), 1),
        "final_state_seen_by_all_ms_p99": round(percentile(seen_close, 0.99), 1),
        "final_state_seen_by_all_ms_max": round(max(seen_close, default=0.0), 1),
        "charges": charges["for_order"],
        "extensions": moved,
        "bids_sent": len(sent),
        "bids_accepted": len(acked),
        "accepted_taps": sum(1 for a in acked if a.kind == "tap"),
        "accepted_maximums": sum(1 for a in acked if a.kind == "max"),
        "bids_refused": dict(refused.most_common()),
        "held_back": dict(outcome["held_back"]),
        "bid_answer_p99_ms": round(percentile(answer_ms, 0.99), 1),
        "bid_rows": len(bids),
        "proxy_rows": sum(1 for _, _, _, proxy, _ in bids if proxy),
        "maximums": len(rows["maxes"]),
        "acked_missing_in_db": missing_in_db,
        "bids_not_seen_by_all": not_seen_by_all,
        "bid_deliveries_missing": deliveries_missing,
        "bid_events_not_in_db": sum(1 for bid_id in seen if bid_id not in ids),
        "duplicate_events": outcome["room"].duplicates,
        "sockets": len(sockets),
        "sockets_dropped": len(outcome["dropped"]),
        "closed_not_seen": len(open_sockets) - len(seen_close),
        "extensions_in_db": auction["extensions"],
        "extended_flags": sum(1 for e in bid_events if e.get("extended")),
        "ends_at_moved_ms": auction["ends_at"] - outcome["first_end"],
        "close_lag_ms": (auction["closed_at"] or 0) - auction["ends_at"],
        "outcome": auction["outcome"],
        "price_minor": price,
        "winner": names.get(auction["buyer_id"]),
        "highest_valid_bid": {
            "winner": names.get(truth["winner"]),
            "top_minor": truth["top"],
            "runner_up_minor": truth["runner_up"],
            "tie_decided_by": truth["tie"],
        },
        "orders": rows["orders"],
        "order_status": order.get("status"),
        "settled": settled.get("outcome"),
        "won_notice": won[0].get("status") if won else None,
        "stock_left": rows["stock"],
        "payment_intents_succeeded": charges["succeeded"],
        "payment_intents": charges["intents"],
        "connect_s": round(outcome["connect_s"], 1),
        "connect_retries": dict(outcome["room"].connect_retries),
        "clock_offset_ms_max": round(
            max((abs(b.offset_ms) for b in everyone), default=0.0), 1
        ),
        "clock_rtt_ms_max": round(max((b.rtt_ms for b in everyone), default=0.0), 1),
        "server_cpu_s": round(outcome["server_cpu_s"], 2),
        # Both Daphne processes' CPU from the first bid to the settlement,
        # per bid answered: what the two cores' budget allows per second.
        "server_cpu_ms_per_bid": round(
            outcome["server_cpu_s"] * 1000 / max(1, len(answer_ms)), 2
        ),
        "client_cpu_s": round(outcome["client_cpu_s"], 2),
        "client_loop_lag_ms_p99": round(percentile(lags, 0.99), 1),
        "client_loop_lag_ms_max": round(max(lags, default=0.0), 1),
        "load_1min_at_start": round(load, 2),
    }
    if tie:
        summary["tie_won_by_earlier"] = (
            auction["buyer_id"] == tie["first"]
            and tie["answers"][0] == "ack"
            and truth["winner"] == tie["first"]
        )
        summary["tie_answers"] = tie["answers"]
        summary["tie_max_minor"] = tie["max_minor"]
    return summary


if __name__ == "__main__":
    main()
