"""The per-process hub: one subscription per show, local fan-out, batched frames.

Every process that serves websockets has one ``Hub`` per event loop. For each show
with viewers here it holds a ``Room``: one Redis pub/sub subscription (or a hook
into the in-process bus) whose events are collected for one tick, serialized once
into a single frame (a JSON array of events) and written to every local socket.
Nothing goes through the channel layer or a database-aware consumer handler per
viewer per message: the measured cost of that path is four to six times the hub's.

A viewer whose socket stops reading is dropped once its unsent data passes
``SHOWFLOOR_ROOM_MAX_BUFFER_KIB``; the others never wait for it. It reconnects
with ``?since=`` and gets exactly what it missed.

Presence: each process writes its per-show socket count to a Redis hash and
keeps a liveness key alive with a heartbeat; counts of processes whose key has
expired are dropped, so a crashed process's viewers leave the count within
``PROCESS_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import struct
import uuid
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from django.conf import settings

from live.hub import bus as busmod
from live.hub.collector import collector

logger = logging.getLogger(__name__)

PROCESS_TTL_SECONDS = 15
HEARTBEAT_SECONDS = 1.0
ROOM_GRACE_SECONDS = 10.0
REACTION_WINDOW_SECONDS = 0.25
RESUME_LIMIT = 500
# Commands (seq reads, presence, slots, resume) share this many Redis
# connections; a crowd connecting at once waits for one instead of failing
# (redis-py's default pool raises past 100 connections in use).
REDIS_COMMAND_CONNECTIONS = 32
REDIS_WAIT_SECONDS = 10
# Each show with local viewers holds one pub/sub connection of its own.
REDIS_SUBSCRIPTIONS_MAX = 100_000
# Close code asking a client to reconnect at once (it gets a fresh snapshot).
CLOSE_RESYNC = 4000

PRESENCE = """
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], 120)
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  if redis.call('EXISTS', ARGV[3] .. all[i]) == 1 then
    total = total + tonumber(all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return total
"""

ACQUIRE_SLOT = """
local members = redis.call('SMEMBERS', KEYS[1])
for _, m in ipairs(members) do
  local proc = string.match(m, '^([^/]+)/')
  if proc == nil or redis.call('EXISTS', ARGV[3] .. proc) == 0 then
    redis.call('SREM', KEYS[1], m)
  end
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""

REACTIONS = """
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], 10000)
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  return all
end
return false
"""


def tick_seconds() -> float:
    return float(settings.SHOWFLOOR_ROOM_TICK_MS) / 1000


def max_buffer_bytes() -> int:
    return int(settings.SHOWFLOOR_ROOM_MAX_BUFFER_KIB) * 1024


def seq_of(payload: str) -> int | None:
    """The seq of a persisted event's JSON (it always starts with it)."""
    if payload.startswith('{"seq":'):
        return int(payload[7 : payload.index(",", 7)])
    return None


# --- Writing to one socket ---------------------------------------------------


class AsgiWriter:
    """Writes through the ASGI ``send`` callable from a small per-socket task,
    bounded by the bytes waiting."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.send = send
        self.queue: deque[tuple[str, int]] = deque()
        self.size = 0
        self.wake = asyncio.Event()
        self.closed = False
        self.idle = asyncio.Event()
        self.idle.set()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def buffered(self) -> int:
        return self.size

    def write(self, text: str, data: bytes) -> None:
        self.queue.append((text, len(data)))
        self.size += len(data)
        self.idle.clear()
        self.wake.set()

    async def _run(self) -> None:
        while not self.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                text, size = self.queue.popleft()
                self.size -= size
                await self.send({"type": "websocket.send", "text": text})
            self.idle.set()

    async def drain(self) -> None:
        """Wait until every queued frame was handed to the server."""
        if not self.closed:
            await asyncio.wait_for(self.idle.wait(), timeout=5)

    def abort(self) -> None:
        self.stop()

    def stop(self) -> None:
        self.closed = True
        self.task.cancel()


_last_frame: tuple[bytes, bytes] = (b"", b"")


def websocket_frame(data: bytes) -> bytes:
    """One unmasked, unfragmented text frame (RFC 6455 §5.2) around ``data``;
    a flush frames its batch once and reuses it for every socket."""
    global _last_frame
    if _last_frame[0] is data:
        return _last_frame[1]
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    framed = header + data
    _last_frame = (data, framed)
    return framed


class DaphneWriter:
    """Daphne's fast path.

    A frame written through autobahn and Twisted costs a buffer append, an
    ``add_writer``/``remove_writer`` pair and a loop callback per socket; most of
    the per-viewer cost. When the connection's Twisted buffer is empty (so
    nothing written earlier can be overtaken) and it is plain TCP, the frame,
    built once per batch, goes to the kernel with one ``send``; whatever the
    kernel does not take is handed to Twisted, which keeps the order. Otherwise
    the frame goes through autobahn as usual. The unsent bytes in Twisted's
    buffer are the slow-reader measure.
    """

    def __init__(self, server: Any, protocol: Any) -> None:
        self.server = server
        self.protocol = protocol
        transport = protocol.transport
        self.raw = (
            hasattr(transport, "socket")
            and hasattr(transport, "dataBuffer")
            and not getattr(transport, "TLS", False)
            and type(transport).__module__ == "twisted.internet.tcp"
        )

    def buffered(self) -> int:
        transport = self.protocol.transport
        try:
            return int(
                len(transport.dataBuffer) - transport.offset + transport._tempDataLen
            )
        except AttributeError:
            return 0

    def write(self, text: str, data: bytes) -> None:
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return
        if not self.raw:
            protocol.sendMessage(data, False)
            return
        framed = websocket_frame(data)
        transport = protocol.transport
        if transport.disconnecting or transport.disconnected:
            return
        if self.buffered():
            transport.write(framed)
            return
        try:
            sent = transport.socket.send(framed)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # Twisted notices the broken connection on its own.
        if sent < len(framed):
            transport.write(framed[sent:])

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.protocol.transport.abortConnection()

    def stop(self) -> None:
        pass


Writer = AsgiWriter | DaphneWriter


def make_writer(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Writer:
    """The fastest writer the server behind ``send`` allows.

    Channels' session middleware wraps ``send`` only to save the session on HTTP
    responses; for ``websocket.send`` it passes through, so it is unwrapped to
    find Daphne's own ``send``.
    """
    raw: Any = send
    for _ in range(5):
        inner = getattr(getattr(raw, "__self__", None), "real_send", None)
        if inner is None:
            break
        raw = inner
    if isinstance(raw, functools.partial) and raw.args:
        server = getattr(raw.func, "__self__", None)
        protocol = raw.args[0]
        if (
            type(server).__module__ == "daphne.server"
            and hasattr(protocol, "sendMessage")
            and hasattr(server, "connections")
        ):
            return DaphneWriter(server, protocol)
    return AsgiWriter(send)


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
        if self.writer.buffered() + len(encoded) > limit:
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
            asyncio.get_running_loop().create_task(self.close(4008))


# --- One show in this process ------------------------------------------------


class Room:
    def __init__(self, hub: Hub, show_id: int) -> None:
        self.hub = hub
        self.show_id = show_id
        self.viewers: set[Viewer] = set()
        self.pending: list[tuple[int | None, str]] = []
        self.flush_handle: asyncio.TimerHandle | None = None
        self.last_flush = 0.0
        self.last_seq = 0
        self.ready: asyncio.Future[None] = hub.loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.count = -1
        self.reactions: Counter[str] = Counter()
        self.reaction_task: asyncio.Task[None] | None = None
        self.close_handle: asyncio.TimerHandle | None = None

    def audience_size(self) -> int:
        """People watching through this process (see ``Viewer.person``)."""
        return len({v.person for v in self.viewers if v.audience})

    def on_data(self, data: str) -> None:
        """A message from the bus: ``E<json>`` or ``P<recipient>\\n<json>``."""
        if data.startswith("E"):
            payload = data[1:]
            seq = seq_of(payload)
            if seq is not None:
                if seq <= self.last_seq:
                    self.resync()
                self.last_seq = seq
            self.pending.append((seq, payload))
            if self.flush_handle is None:
                # Leading edge: a quiet room's event leaves almost at once;
                # under load frames leave at most once per tick.
                loop = self.hub.loop
                delay = max(0.002, self.last_flush + tick_seconds() - loop.time())
                self.flush_handle = loop.call_later(delay, self.flush)
        elif data.startswith("P"):
            recipient, _, payload = data[1:].partition("\n")
            for viewer in list(self.viewers):
                if recipient in viewer.recipients:
                    if viewer.holding:
                        viewer.held.append((None, payload))
                    else:
                        viewer.send_events([payload])

    def on_bytes(self, data: bytes) -> None:
        self.on_data(data.decode())

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

    def resync(self) -> None:
        """The show's seq went backwards (Redis lost its keys): every socket
        here reconnects and starts again from a fresh snapshot."""
        logger.warning("show %s: seq went backwards; resyncing sockets", self.show_id)
        self.pending.clear()
        for viewer in list(self.viewers):
            viewer.writer.stop()
            self.hub.loop.create_task(viewer.close(CLOSE_RESYNC))

    def local_event(self, payload: str) -> None:
        """An ephemeral event computed in this process (viewer counts)."""
        self.on_data("E" + payload)


class Hub:
    """All rooms of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.id = uuid.uuid4().hex[:16]
        self.rooms: dict[int, Room] = {}
        self.url = str(settings.REDIS_URL or "")
        self.started = False
        self.start_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []
        self.redis: Any = None
        self.subscriber: Any = None

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        async with self.start_lock:
            if self.started:
                return
            if self.url:
                import redis.asyncio as aioredis

                self.redis = aioredis.Redis(
                    connection_pool=aioredis.BlockingConnectionPool.from_url(
                        self.url,
                        max_connections=REDIS_COMMAND_CONNECTIONS,
                        timeout=REDIS_WAIT_SECONDS,
                    )
                )
                self.subscriber = aioredis.Redis.from_url(
                    self.url, max_connections=REDIS_SUBSCRIPTIONS_MAX
                )
                self._presence = self.redis.register_script(PRESENCE)
                self._acquire = self.redis.register_script(ACQUIRE_SLOT)
                self._reactions = self.redis.register_script(REACTIONS)
                await self.redis.set(
                    self.proc_key(self.id), b"1", ex=PROCESS_TTL_SECONDS
                )
                ready: asyncio.Future[None] = self.loop.create_future()
                self.tasks.append(
                    self.loop.create_task(
                        self._subscribe(
                            busmod.control_channel(), self.on_control, ready
                        )
                    )
                )
                await ready
            else:
                busmod.memory_bus().subscribe(
                    self.loop, self._memory_deliver, self.on_control
                )
            self.tasks.append(self.loop.create_task(self._heartbeat()))
            self.started = True

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for room in list(self.rooms.values()):
            if room.task is not None:
                room.task.cancel()
        self.rooms.clear()
        if not self.url:
            busmod.memory_bus().unsubscribe(self.loop)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.delete(self.proc_key(self.id))
                await self.redis.aclose()
                await self.subscriber.aclose()
        self.started = False

    @staticmethod
    def proc_key(proc_id: str) -> str:
        return f"{busmod.prefix()}:proc:{proc_id}"

    def _memory_deliver(self, show_id: int, data: str) -> None:
        room = self.rooms.get(show_id)
        if room is not None:
            room.on_data(data)

    async def _subscribe(
        self,
        channel: str,
        handle: Callable[[Any], None],
        ready: asyncio.Future[None],
    ) -> None:
        """Hold one pub/sub subscription; resolve ``ready`` once Redis confirmed
        it, so nothing published afterwards can be missed."""
        pubsub = self.subscriber.pubsub()
        try:
            while True:
                try:
                    await pubsub.subscribe(channel)
                    while True:
                        message = await pubsub.get_message(timeout=5)
                        if (message and message["type"] == b"subscribe") or (
                            message and message["type"] == "subscribe"
                        ):
                            break
                    if not ready.done():
                        ready.set_result(None)
                    async for message in pubsub.listen():
                        if message["type"] in ("message", b"message"):
                            handle(message["data"])
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception(
                        "room subscription %s failed; resubscribing", channel
                    )
                    await asyncio.sleep(1)
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                    pubsub = self.subscriber.pubsub()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    # -- rooms and viewers ------------------------------------------------

    async def attach(self, viewer: Viewer) -> None:
        """Add ``viewer`` (holding its events until ``release``)."""
        await self.start()
        room = self.rooms.get(viewer.show_id)
        if room is None:
            room = self.rooms[viewer.show_id] = Room(self, viewer.show_id)
            if self.url:
                room.task = self.loop.create_task(
                    self._subscribe(
                        busmod.room_channel(viewer.show_id),
                        room.on_bytes,
                        room.ready,
                    )
                )
            else:
                room.ready.set_result(None)
        if room.close_handle is not None:
            room.close_handle.cancel()
            room.close_handle = None
        room.viewers.add(viewer)
        await asyncio.shield(room.ready)

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
        if self.redis is not None:
            self.loop.create_task(self._presence_update(room, 0))

    def local_count(self, show_id: int) -> int:
        room = self.rooms.get(show_id)
        return room.audience_size() if room else 0

    # -- resume -----------------------------------------------------------

    async def current_seq(self, show_id: int) -> int:
        if self.redis is None:
            return busmod.memory_bus().current_seq(show_id)
        raw = await self.redis.get(busmod.seq_key(show_id))
        return int(raw or 0)

    async def events_since(
        self, show_id: int, since: int
    ) -> tuple[list[tuple[int, str]], int] | None:
        """The persisted events after ``since`` and the last seq, or None when
        they are no longer all kept (or ``since`` is from another lifetime)."""
        current = await self.current_seq(show_id)
        if since > current:
            return None
        if since == current:
            return [], current
        if current - since > RESUME_LIMIT:
            return None
        if self.redis is None:
            items = busmod.memory_bus().log_since(show_id, since)
        else:
            raw = await self.redis.xrange(
                busmod.log_key(show_id), min=f"{since + 1}-0", max="+"
            )
            items = [
                (int(entry_id.split(b"-")[0]), fields[b"e"].decode())
                for entry_id, fields in raw
            ]
        if not items or items[0][0] != since + 1:
            return None
        return items, items[-1][0]

    # -- connection slots (at most N sockets per user per show) -----------

    def _slot_key(self, show_id: int, who: str) -> str:
        return f"{busmod.prefix()}:conns:{show_id}:{who}"

    async def acquire_slot(self, viewer: Viewer, who: str, limit: int) -> bool:
        await self.start()
        if self.redis is None:
            held = self._memory_slots.setdefault((viewer.show_id, who), set())
            if len(held) >= limit:
                return False
            held.add(viewer.conn_id)
            return True
        ok = await self._acquire(
            keys=[self._slot_key(viewer.show_id, who)],
            args=[f"{self.id}/{viewer.conn_id}", limit, self.proc_key("")],
        )
        return bool(ok)

    async def release_slot(self, viewer: Viewer, who: str) -> None:
        if self.redis is None:
            self._memory_slots.get((viewer.show_id, who), set()).discard(viewer.conn_id)
            return
        with contextlib.suppress(Exception):
            await self.redis.srem(
                self._slot_key(viewer.show_id, who), f"{self.id}/{viewer.conn_id}"
            )

    @functools.cached_property
    def _memory_slots(self) -> dict[tuple[int, str], set[str]]:
        return {}

    # -- presence ---------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            try:
                if self.redis is not None:
                    await self.redis.set(
                        self.proc_key(self.id), b"1", ex=PROCESS_TTL_SECONDS
                    )
                collector.tend()
                for room in list(self.rooms.values()):
                    if self.redis is not None:
                        total = await self._presence_update(room, room.audience_size())
                    else:
                        total = room.audience_size()
                    if total != room.count and room.viewers:
                        room.count = total
                        room.local_event(
                            busmod.json_body({"type": "viewers.count", "count": total})
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("presence heartbeat failed")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _presence_update(self, room: Room, count: int) -> int:
        total = await self._presence(
            keys=[f"{busmod.prefix()}:presence:{room.show_id}"],
            args=[self.id, count, self.proc_key("")],
        )
        return int(total)

    async def viewer_count(self, show_id: int) -> int:
        """People watching the show across processes, as last computed."""
        room = self.rooms.get(show_id)
        if room is None or room.count < 0:
            if self.redis is None:
                return self.local_count(show_id)
            room_count = room.audience_size() if room else 0
            total = await self._presence(
                keys=[f"{busmod.prefix()}:presence:{show_id}"],
                args=[self.id, room_count, self.proc_key("")],
            )
            return int(total)
        return max(room.count, room.audience_size())

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
        await asyncio.sleep(REACTION_WINDOW_SECONDS)
        for _attempt in range(8):
            counts, room.reactions = dict(room.reactions), Counter()
            if self.redis is None:
                if counts:
                    room.local_event(self._burst(counts))
                return
            args: list[Any] = [int(REACTION_WINDOW_SECONDS * 1000)]
            for emoji, n in counts.items():
                args += [emoji, n]
            key = f"{busmod.prefix()}:reactions:{room.show_id}"
            drained = await self._reactions(keys=[key, key + ":lock"], args=args)
            if drained is not None:
                totals = {
                    drained[i].decode(): int(drained[i + 1])
                    for i in range(0, len(drained), 2)
                }
                if totals:
                    await self.redis.publish(
                        busmod.room_channel(room.show_id), "E" + self._burst(totals)
                    )
                if not room.reactions:
                    return
            await asyncio.sleep(REACTION_WINDOW_SECONDS)

    @staticmethod
    def _burst(counts: dict[str, int]) -> str:
        return busmod.json_body({"type": "reactions.burst", "counts": counts})

    # -- control ----------------------------------------------------------

    def on_control(self, raw: Any) -> None:
        import json

        command = raw if isinstance(raw, dict) else json.loads(raw)
        if command.get("op") == "kick":
            brand_id, user_id = command.get("brand_id"), command.get("user_id")
            frame = busmod.json_body(
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


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.url != str(settings.REDIS_URL or ""):
        hub = _hubs[loop] = Hub(loop)
    return hub
