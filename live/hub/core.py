"""The per-process hub: one subscription per show, local fan-out, batched frames.

Every process that serves websockets has one ``Hub`` per event loop. For each show
with viewers here it holds a ``Room``: one subscription on the bus
(``realtime.backend``: Redis, or the in-process bus) whose events are collected
for one tick, serialized once into a single frame (a JSON array of events) and
written to every local socket. Nothing goes through the channel layer or a
database-aware consumer handler per viewer per message: the measured cost of
that path is four to six times the hub's.

Nothing a room passes on is lost or repeated. Persisted events carry the show's
``seq`` (given in the transaction that wrote them, ``realtime.outbox``): a room
drops a seq it already passed on, and when one is skipped (a subscription that
broke, a Redis restart) it fetches the missing ones from PostgreSQL before going
on. While the bus is unreachable a room keeps going from PostgreSQL, polling
every ``DEGRADED_POLL_SECONDS``, and subscribes again in the background.

A viewer whose socket stops reading is dropped once its unsent data (the
server's buffer and the kernel's send queue, ``live.hub.writers``) passes
``SHOWFLOOR_ROOM_MAX_BUFFER_KIB``, checked at every write; the others never
wait for it. It reconnects with ``?since=`` and gets exactly what it
missed.

Presence: each process writes its per-show socket count through the backend;
counts of processes that stopped beating are dropped, so a crashed process's
viewers leave the count within ``PROCESS_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from live.hub.collector import collector
from live.hub.writers import AsgiWriter, Writer
from realtime import counting, outbox
from realtime import redis as rclient
from realtime.backend import BusLost, HubBackend, make_backend
from realtime.bus import json_body, seq_of

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
ROOM_GRACE_SECONDS = 10.0
REACTION_WINDOW_SECONDS = 0.25
RESUME_LIMIT = 500
# How a pin's payload continues after its seq (``realtime.bus.with_seq``).
PINNED = '"type":"product.pinned"'
# (prefix of a persisted event's type, callback(show id, event json)): a game
# that keeps a process-wide view of its state from the room's own events
# (live/games/auctions.py: the next amount, to refuse a bid below it at once).
WATCHERS: list[tuple[str, Callable[[int, str], None]]] = []
DEGRADED_POLL_SECONDS = 0.5
FILL_LIMIT = 2000
# Close code for a dropped slow reader when the writer cannot abort TCP.
CLOSE_SLOW = 4008


def tick_seconds() -> float:
    return float(settings.SHOWFLOOR_ROOM_TICK_MS) / 1000


def max_buffer_bytes() -> int:
    return int(settings.SHOWFLOOR_ROOM_MAX_BUFFER_KIB) * 1024


# --- One socket --------------------------------------------------------------


class Viewer:
    """One websocket in a show room, as the hub sees it."""

    def __init__(
        self,
        *,
        show_id: int,
        brand_id: int,
        user_id: int | None,
        session_key: str | None,
        writer: Writer,
        close: Callable[[int], Coroutine[Any, Any, None]],
        audience: bool = True,
        private: bool = False,
    ) -> None:
        self.show_id = show_id
        self.brand_id = brand_id
        self.user_id = user_id
        self.session_key = session_key
        self.writer = writer
        self.close = close
        self.conn_id = uuid.uuid4().hex[:12]
        # "Watching" counts people in the audience, not sockets: one person
        # with two tabs counts once, and the show's own staff not at all.
        self.audience = audience
        self.person = (
            f"user:{user_id}"
            if user_id is not None
            else f"session:{session_key}"
            if session_key
            else self.conn_id
        )
        # Unique counts see a salted hash of the person, or of this socket
        # alone for a viewer who asked not to be tracked (DNT, GPC).
        self.visitor = counting.visitor_key(
            show_id, self.conn_id if private else self.person
        )
        self.recipients = {f"session:{session_key}"} if session_key else set()
        if user_id is not None:
            self.recipients.add(f"user:{user_id}")
        # While the consumer builds the snapshot or the backlog, room events wait
        # here instead of going out, so none is lost or sent twice.
        self.holding = True
        self.held: list[tuple[int | None, str]] = []
        # Persisted events up to here were in the snapshot or backlog; a flush
        # that was already pending when the viewer went live must skip them.
        self.covered_seq = 0
        self.dropped = False

    def write(
        self, text: str, data: bytes | None = None, *, limit: int | None = None
    ) -> bool:
        """Send one frame unless this viewer is too far behind (then drop it).
        ``limit`` is ``max_buffer_bytes()``, read once by a flush for all."""
        if self.dropped:
            return False
        encoded = data if data is not None else text.encode()
        if limit is None:
            limit = max_buffer_bytes()
        behind = self.writer.buffered()
        if behind:
            # The server holds data for it, so the kernel's queue is full too.
            behind = self.writer.unsent()
        if behind + len(encoded) > limit:
            self.drop()
            return False
        self.writer.write(text, encoded)
        return True

    def send_events(self, payloads: list[str]) -> bool:
        if not payloads:
            return True
        return self.write("[" + ",".join(payloads) + "]")

    def release(self, *, after_seq: int) -> None:
        """Start live delivery; held events up to ``after_seq`` were already
        covered by the snapshot or the backlog."""
        held, self.held = self.held, []
        self.holding = False
        self.covered_seq = after_seq
        self.send_events(
            [payload for seq, payload in held if seq is None or seq > after_seq]
        )

    def drop(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        logger.info("dropping a slow viewer of show %s", self.show_id)
        self.writer.abort()
        if isinstance(self.writer, AsgiWriter):
            asyncio.get_running_loop().create_task(self.close(CLOSE_SLOW))


# --- One show in this process ------------------------------------------------


class Room:
    def __init__(self, hub: Hub, show_id: int) -> None:
        self.hub = hub
        self.show_id = show_id
        self.viewers: set[Viewer] = set()
        self.pending: list[tuple[int | None, str]] = []
        self.flush_handle: asyncio.TimerHandle | None = None
        self.last_flush = 0.0
        # The highest seq this room passed on (None before the first).
        self.last_seq: int | None = None
        # While missing events are fetched from PostgreSQL, what the bus
        # delivers waits here.
        self.filling = False
        self.waiting: list[str] = []
        self.bus_lost = False
        self.ready: asyncio.Future[None] = hub.loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.count = -1
        self.reactions: Counter[str] = Counter()
        self.reaction_task: asyncio.Task[None] | None = None
        self.close_handle: asyncio.TimerHandle | None = None
        # Counting: watch time not yet a whole second, and the minute whose
        # viewers were last counted as present.
        self.watch_carry = 0.0
        self.counted_minute: int | None = None

    def audience_size(self) -> int:
        """People watching through this process (see ``Viewer.person``)."""
        return len({v.person for v in self.viewers if v.audience})

    def on_data(self, data: str, *, after_fill: bool = False) -> None:
        """A message from the bus: ``E<json>`` or ``P<recipient>\\n<json>``.
        ``after_fill``: a gap left after fetching is not fetched again (those
        events are no longer kept)."""
        if self.filling:
            self.waiting.append(data)
        elif data.startswith("E"):
            payload = data[1:]
            seq = seq_of(payload)
            if seq is not None and self.last_seq is not None:
                if seq <= self.last_seq:
                    return  # passed on already (a second publish, or a fill)
                if seq > self.last_seq + 1 and not after_fill:
                    self.waiting.append(data)
                    self.fill(upto=seq - 1)
                    return
            self._pass_on(seq, payload)
        elif data.startswith("P"):
            recipient, _, payload = data[1:].partition("\n")
            for viewer in list(self.viewers):
                if recipient in viewer.recipients:
                    if viewer.holding:
                        viewer.held.append((None, payload))
                    else:
                        viewer.send_events([payload])

    def _pass_on(self, seq: int | None, payload: str) -> None:
        if seq is not None:
            self.last_seq = seq
            start = payload.find(",") + 1
            if payload.startswith(PINNED, start):
                self._count_impressions(payload)
            for prefix, watch in WATCHERS:
                if payload.startswith(prefix, start):
                    watch(self.show_id, payload)
        self.pending.append((seq, payload))
        if self.flush_handle is None:
            # Leading edge: a quiet room's event leaves almost at once;
            # under load frames leave at most once per tick.
            loop = self.hub.loop
            delay = max(0.002, self.last_flush + tick_seconds() - loop.time())
            self.flush_handle = loop.call_later(delay, self.flush)

    def _count_impressions(self, payload: str) -> None:
        """A pin reached this room: every person watching here saw the card
        (each process counts its own audience), and each of them counts once
        for the show among the people who saw a product card (``saw_card``,
        the funnel's second step)."""
        try:
            product_id = int(json.loads(payload)["product"]["id"])
        except (ValueError, KeyError, TypeError):
            return
        audience = self.audience_size()
        counting.add(
            self.show_id, "impressions", audience, products={product_id: audience}
        )
        for visitor in {v.visitor for v in self.viewers if v.audience}:
            counting.unique_key(self.show_id, "saw_card", visitor)

    def fill(self, *, upto: int | None) -> None:
        """Fetch the persisted events after ``last_seq`` (up to ``upto``, or
        all) from PostgreSQL and pass them on before anything newer."""
        if self.filling or self.last_seq is None:
            return
        self.filling = True
        self.hub.loop.create_task(self._fill(self.last_seq, upto))

    async def _fill(self, after: int, upto: int | None) -> None:
        fetched = False
        try:
            items = await database_sync_to_async(outbox.events_between)(
                self.show_id, after, upto, limit=FILL_LIMIT
            )
            for seq, payload in items:
                if self.last_seq is None or seq > self.last_seq:
                    self._pass_on(seq, payload)
            fetched = True
        except Exception:
            logger.warning("show %s: could not fetch missed events", self.show_id)
            await asyncio.sleep(DEGRADED_POLL_SECONDS)  # no tight retry loop
        finally:
            self.filling = False
            waiting, self.waiting = self.waiting, []
            for data in waiting:
                self.on_data(data, after_fill=fetched)

    def flush(self) -> None:
        self.flush_handle = None
        self.last_flush = self.hub.loop.time()
        pending, self.pending = self.pending, []
        if not pending:
            return
        text = "[" + ",".join(payload for _, payload in pending) + "]"
        data = text.encode()
        seqs = [seq for seq, _ in pending if seq is not None]
        oldest = min(seqs, default=None)
        newest = max(seqs, default=None)
        limit = max_buffer_bytes()
        for viewer in list(self.viewers):
            if viewer.holding:
                viewer.held.extend(pending)
            elif oldest is not None and oldest <= viewer.covered_seq:
                viewer.send_events(
                    [p for seq, p in pending if seq is None or seq > viewer.covered_seq]
                )
            else:
                viewer.write(text, data, limit=limit)
            if newest is not None and newest > viewer.covered_seq:
                # Events arrive in seq order: nothing older can follow.
                viewer.covered_seq = 0

    def local_event(self, payload: str) -> None:
        """An ephemeral event computed in this process (viewer counts)."""
        self.on_data("E" + payload)


class Hub:
    """All rooms of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.url = rclient.url()
        self.backend: HubBackend = make_backend()
        self.rooms: dict[int, Room] = {}
        self.started = False
        self.start_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def id(self) -> str:
        return self.backend.process_id

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        async with self.start_lock:
            if self.started:
                return
            await self.backend.start(self.on_control)
            self.tasks.append(self.loop.create_task(self._heartbeat()))
            # Events this process (or a crashed one) could not publish.
            outbox.get_relay().wake()
            self.started = True

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for room in list(self.rooms.values()):
            if room.task is not None:
                room.task.cancel()
        self.rooms.clear()
        await self.backend.stop()
        self.started = False

    # -- rooms and viewers ------------------------------------------------

    async def attach(self, viewer: Viewer) -> Room:
        """Add ``viewer`` (holding its events until ``release``)."""
        await self.start()
        room = self.rooms.get(viewer.show_id)
        if room is None:
            room = self.rooms[viewer.show_id] = Room(self, viewer.show_id)
            room.task = self.loop.create_task(self._keep_room(room))
        if room.close_handle is not None:
            room.close_handle.cancel()
            room.close_handle = None
        room.viewers.add(viewer)
        if viewer.audience:
            counting.unique_key(viewer.show_id, "viewers", viewer.visitor)
        await asyncio.shield(room.ready)
        return room

    def release(self, viewer: Viewer, *, after_seq: int) -> None:
        """Start ``viewer``'s live delivery after its snapshot or backlog."""
        room = self.rooms.get(viewer.show_id)
        if room is not None and room.last_seq is None:
            room.last_seq = after_seq
        viewer.release(after_seq=after_seq)

    def floor_seq(self, show_id: int) -> int:
        """The seq a new viewer's snapshot or backlog must reach: what the
        room passed on before the viewer joined."""
        room = self.rooms.get(show_id)
        if room is None or room.last_seq is None:
            return 0
        return room.last_seq

    async def _keep_room(self, room: Room) -> None:
        """Hold the room's subscription; while the bus is unreachable, follow
        the room from PostgreSQL and subscribe again."""
        first = True
        while True:
            confirmed: asyncio.Future[None] = self.loop.create_future()
            joined = self.loop.create_task(self._joined(room, confirmed, first))
            try:
                await self.backend.subscribe(room.show_id, room.on_data, confirmed)
            except asyncio.CancelledError:
                joined.cancel()
                raise
            except Exception as exc:
                joined.cancel()
                if not room.bus_lost:
                    logger.warning(
                        "show %s: bus unreachable (%s); following PostgreSQL",
                        room.show_id,
                        exc if isinstance(exc, BusLost) else repr(exc),
                    )
                room.bus_lost = True
                if not room.ready.done():
                    room.ready.set_result(None)
                room.fill(upto=None)
                await asyncio.sleep(DEGRADED_POLL_SECONDS)
            first = False

    async def _joined(
        self, room: Room, confirmed: asyncio.Future[None], first: bool
    ) -> None:
        await confirmed
        if not room.ready.done():
            room.ready.set_result(None)
        if not first or room.bus_lost:
            # Whatever was published while the room was not listening.
            room.bus_lost = False
            room.fill(upto=None)

    def detach(self, viewer: Viewer) -> None:
        viewer.writer.stop()
        room = self.rooms.get(viewer.show_id)
        if room is None:
            return
        room.viewers.discard(viewer)
        if not room.viewers and room.close_handle is None:
            room.close_handle = self.loop.call_later(
                ROOM_GRACE_SECONDS, self._close_room, room
            )

    def _close_room(self, room: Room) -> None:
        room.close_handle = None
        if room.viewers or self.rooms.get(room.show_id) is not room:
            return
        del self.rooms[room.show_id]
        if room.task is not None:
            room.task.cancel()
        self.loop.create_task(self._presence(room.show_id, 0))

    def local_count(self, show_id: int) -> int:
        room = self.rooms.get(show_id)
        return room.audience_size() if room else 0

    # -- resume -----------------------------------------------------------

    async def events_since(
        self, show_id: int, since: int
    ) -> tuple[list[tuple[int, str]], int] | None:
        """The persisted events after ``since`` and the last seq, or None when
        a resume is not possible (a fresh snapshot then). From the bus's log
        when it holds them all, otherwise from PostgreSQL."""
        floor = self.floor_seq(show_id)
        if not rclient.is_down():
            try:
                last = await self.backend.published_seq(show_id)
                if last is not None and floor <= last and since <= last:
                    if last - since > RESUME_LIMIT:
                        return None
                    items = await self.backend.log_since(show_id, since)
                    items = [item for item in items if item[0] <= last]
                    expected = list(range(since + 1, last + 1))
                    if [seq for seq, _ in items] == expected:
                        return items, last
            except rclient.ERRORS:
                rclient.mark_down()
        found: tuple[list[tuple[int, str]], int] | None = await database_sync_to_async(
            outbox.events_since
        )(show_id, since, limit=RESUME_LIMIT)
        if found is not None and found[1] < floor:
            return None
        return found

    # -- connection slots (at most N sockets per user per show) -----------

    async def acquire_slot(self, viewer: Viewer, who: str, limit: int) -> bool:
        """Take one of ``who``'s ``limit`` sockets for this show. With Redis
        down nobody is refused for want of a count."""
        await self.start()
        try:
            return await self.backend.acquire_slot(
                viewer.show_id, who, viewer.conn_id, limit
            )
        except rclient.ERRORS:
            rclient.mark_down()
            return True

    async def release_slot(self, viewer: Viewer, who: str) -> None:
        try:
            await self.backend.release_slot(viewer.show_id, who, viewer.conn_id)
        except rclient.ERRORS:
            rclient.mark_down()

    # -- presence ---------------------------------------------------------

    async def _heartbeat(self) -> None:
        last = self.loop.time()
        while True:
            try:
                collector.tend()
                try:
                    await self.backend.heartbeat()
                except rclient.ERRORS:
                    rclient.mark_down()
                now = self.loop.time()
                elapsed, last = now - last, now
                for room in list(self.rooms.values()):
                    audience = room.audience_size()
                    total = await self._presence(room.show_id, audience)
                    if total != room.count and room.viewers:
                        room.count = total
                        room.local_event(
                            json_body({"type": "viewers.count", "count": total})
                        )
                    self.count_room(
                        room, total=total, audience=audience, elapsed=elapsed
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("presence heartbeat failed")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def count_room(
        self,
        room: Room,
        *,
        total: int,
        audience: int,
        elapsed: float,
        at: float | None = None,
    ) -> None:
        """Count, once a heartbeat: people watching across processes (the
        minute's peak and "now"), this process's watch time (``elapsed``
        seconds for each person here), and at each new minute who is
        present in it."""
        if not counting.enabled():
            return
        moment = time.time() if at is None else at
        counting.peak(room.show_id, "viewers", total, at=moment)
        room.watch_carry += elapsed * audience
        whole = int(room.watch_carry)
        if whole:
            room.watch_carry -= whole
            counting.add(room.show_id, "watch_seconds", whole, at=moment)
        minute = counting.minute_of(moment)
        if minute != room.counted_minute:
            room.counted_minute = minute
            for viewer in list(room.viewers):
                if viewer.audience:
                    counting.unique_key(
                        room.show_id,
                        "viewers",
                        viewer.visitor,
                        whole_show=False,
                        at=moment,
                    )

    async def _presence(self, show_id: int, local: int) -> int:
        if rclient.is_down():
            return local
        try:
            return await self.backend.presence(show_id, local)
        except rclient.ERRORS:
            rclient.mark_down()
            return local

    async def viewer_count(self, show_id: int) -> int:
        """People watching the show across processes, as last computed."""
        room = self.rooms.get(show_id)
        local = room.audience_size() if room else 0
        if room is None or room.count < 0:
            return await self._presence(show_id, local)
        return max(room.count, local)

    # -- reactions --------------------------------------------------------

    def react(self, show_id: int, emoji: str) -> None:
        """Count one reaction; bursts leave at most every 250 ms per show."""
        room = self.rooms.get(show_id)
        if room is None:
            return
        room.reactions[emoji] += 1
        if room.reaction_task is None or room.reaction_task.done():
            room.reaction_task = self.loop.create_task(self._reaction_flush(room))

    async def _reaction_flush(self, room: Room) -> None:
        window_ms = int(REACTION_WINDOW_SECONDS * 1000)
        await asyncio.sleep(REACTION_WINDOW_SECONDS)
        for _attempt in range(8):
            counts, room.reactions = dict(room.reactions), Counter()
            try:
                # None: another process holds this window; it drains ours too,
                # or the next attempt does.
                totals = await self.backend.reactions(room.show_id, counts, window_ms)
                if totals:
                    burst = {"type": "reactions.burst", "counts": totals}
                    await self.backend.publish(room.show_id, "E" + json_body(burst))
            except rclient.ERRORS:
                rclient.mark_down()  # reactions are ephemeral: let them go
                return
            if totals is not None and not room.reactions:
                return
            await asyncio.sleep(REACTION_WINDOW_SECONDS)

    # -- control ----------------------------------------------------------

    def on_control(self, raw: str) -> None:
        command = json.loads(raw)
        if command.get("op") == "kick":
            brand_id, user_id = command.get("brand_id"), command.get("user_id")
            frame = json_body(
                {
                    "type": "error",
                    "code": command.get("code", "banned"),
                    "message": command.get("message", ""),
                    "ref": None,
                }
            )
            for room in list(self.rooms.values()):
                for viewer in list(room.viewers):
                    if viewer.brand_id == brand_id and viewer.user_id == user_id:
                        viewer.send_events([frame])
                        self.loop.create_task(viewer.close(4003))
        elif command.get("op") == "site":
            self._site_event(command)

    def _site_event(self, command: dict[str, Any]) -> None:
        """A site-wide event (``events.broadcast_site``) to the signed-in
        viewers of this process's rooms but one; each page decides whether it
        is for its viewer (``brand.live``: a brand they follow)."""
        frame = json_body(command.get("event") or {})
        for room in list(self.rooms.values()):
            if room.show_id == command.get("except_show"):
                continue
            for viewer in list(room.viewers):
                if viewer.user_id is None:
                    continue
                if viewer.holding:
                    viewer.held.append((None, frame))
                else:
                    viewer.send_events([frame])


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.url != rclient.url():
        hub = _hubs[loop] = Hub(loop)
    return hub
