"""The hub's transport: one async interface, two backends (the way
``channels.layers`` has one interface and several layers).

``RedisBackend`` shares everything between processes through Redis: one pub/sub
subscription per show with local viewers, the control channel, the capped log
per show, connection slots, presence and reaction counts. ``MemoryBackend`` does
the same inside one process for the embedded demo. The hub (``live.hub.core``)
holds one backend and never asks which it is.

A subscription resolves ``ready`` once the bus confirmed it (nothing published
afterwards can be missed), then feeds ``deliver`` until it is cancelled, or
raises ``BusLost`` when the connection to the bus is gone (the hub then keeps
its room going from PostgreSQL and subscribes again).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from realtime import bus as busmod
from realtime import redis as rclient
from realtime.lifetime import acurrent as database_lifetime

PROCESS_TTL_SECONDS = 15
UNREACHABLE: tuple[type[Exception], ...] = (TimeoutError, *rclient.ERRORS)

Deliver = Callable[[str], None]

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


class BusLost(Exception):
    """The connection to the bus is gone; subscribe again."""


class HubBackend(Protocol):
    process_id: str

    async def start(self, on_control: Deliver) -> None: ...
    async def stop(self) -> None: ...
    async def heartbeat(self) -> None: ...
    async def subscribe(
        self, show_id: int, deliver: Deliver, ready: asyncio.Future[None]
    ) -> None: ...
    async def publish(self, show_id: int, data: str) -> None: ...
    async def published_seq(self, show_id: int) -> int | None: ...
    async def log_since(self, show_id: int, since: int) -> list[tuple[int, str]]: ...
    async def acquire_slot(
        self, show_id: int, who: str, conn: str, limit: int
    ) -> bool: ...
    async def release_slot(self, show_id: int, who: str, conn: str) -> None: ...
    async def presence(self, show_id: int, local: int) -> int: ...
    async def reactions(
        self, show_id: int, counts: dict[str, int], window_ms: int
    ) -> dict[str, int] | None: ...


class MemoryBackend:
    """One process, no Redis."""

    def __init__(self) -> None:
        self.process_id = uuid.uuid4().hex[:16]
        self.bus = busmod.memory_bus()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_control: Deliver | None = None
        self.slots: dict[tuple[int, str], set[str]] = {}

    async def start(self, on_control: Deliver) -> None:
        self.loop = asyncio.get_running_loop()
        self.on_control = on_control
        self.bus.listen_control(self.loop, on_control)

    async def stop(self) -> None:
        if self.on_control is not None:
            self.bus.unlisten_control(self.on_control)

    async def heartbeat(self) -> None:
        pass

    async def subscribe(
        self, show_id: int, deliver: Deliver, ready: asyncio.Future[None]
    ) -> None:
        self.bus.subscribe(show_id, asyncio.get_running_loop(), deliver)
        try:
            if not ready.done():
                ready.set_result(None)
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self.bus.unsubscribe(show_id, deliver)

    async def publish(self, show_id: int, data: str) -> None:
        self.bus.publish(show_id, data)

    async def published_seq(self, show_id: int) -> int | None:
        return self.bus.published_seq(show_id)

    async def log_since(self, show_id: int, since: int) -> list[tuple[int, str]]:
        return self.bus.log_since(show_id, since)

    async def acquire_slot(self, show_id: int, who: str, conn: str, limit: int) -> bool:
        held = self.slots.setdefault((show_id, who), set())
        if len(held) >= limit:
            return False
        held.add(conn)
        return True

    async def release_slot(self, show_id: int, who: str, conn: str) -> None:
        held = self.slots.get((show_id, who))
        if held is not None:
            held.discard(conn)
            if not held:
                del self.slots[(show_id, who)]

    async def presence(self, show_id: int, local: int) -> int:
        return local

    async def reactions(
        self, show_id: int, counts: dict[str, int], window_ms: int
    ) -> dict[str, int] | None:
        return counts


class RedisBackend:
    """Every process shares Redis."""

    def __init__(self) -> None:
        self.process_id = uuid.uuid4().hex[:16]
        self.redis: Any = None
        self.control_task: asyncio.Task[None] | None = None

    def proc_key(self, process_id: str) -> str:
        return rclient.key("proc", process_id)

    async def start(self, on_control: Deliver) -> None:
        self.redis = rclient.async_client()
        self._presence = self.redis.register_script(PRESENCE)
        self._acquire = self.redis.register_script(ACQUIRE_SLOT)
        self._reactions = self.redis.register_script(REACTIONS)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.control_task = asyncio.get_running_loop().create_task(
            self._keep_control(on_control, ready)
        )
        # Best effort: with Redis down the hub starts anyway and the control
        # channel joins when Redis is back.
        try:
            await self.heartbeat()
            await asyncio.wait_for(
                asyncio.shield(ready), rclient.COMMAND_TIMEOUT_SECONDS
            )
        except UNREACHABLE:
            rclient.mark_down()

    async def _keep_control(
        self, on_control: Deliver, ready: asyncio.Future[None]
    ) -> None:
        while True:
            try:
                await self._listen(busmod.control_channel(), on_control, ready)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self.control_task is not None:
            self.control_task.cancel()
        if self.redis is not None:
            # Redis may be the reason we stop.
            with contextlib.suppress(Exception):
                await self.redis.delete(self.proc_key(self.process_id))
        await rclient.aclose_loop_clients()

    async def heartbeat(self) -> None:
        await self.redis.set(
            self.proc_key(self.process_id), b"1", ex=PROCESS_TTL_SECONDS
        )

    async def _listen(
        self, channel: str, deliver: Deliver, ready: asyncio.Future[None]
    ) -> None:
        pubsub = rclient.async_subscriber().pubsub()
        try:
            try:
                await pubsub.subscribe(channel)
                while True:
                    message = await pubsub.get_message(timeout=5)
                    if message and message["type"] in ("subscribe", b"subscribe"):
                        break
                if not ready.done():
                    ready.set_result(None)
                async for message in pubsub.listen():
                    if message["type"] in ("message", b"message"):
                        data = message["data"]
                        deliver(data.decode() if isinstance(data, bytes) else data)
            except rclient.ERRORS as exc:
                rclient.mark_down()
                raise BusLost(str(exc)) from exc
        finally:
            # The connection may be gone.
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def subscribe(
        self, show_id: int, deliver: Deliver, ready: asyncio.Future[None]
    ) -> None:
        await self._listen(busmod.room_channel(show_id), deliver, ready)

    async def publish(self, show_id: int, data: str) -> None:
        await self.redis.publish(busmod.room_channel(show_id), data)

    async def published_seq(self, show_id: int) -> int | None:
        lifetime = await database_lifetime()
        raw = await self.redis.get(busmod.published_key(show_id, lifetime))
        return None if raw is None else int(raw)

    async def log_since(self, show_id: int, since: int) -> list[tuple[int, str]]:
        lifetime = await database_lifetime()
        raw = await self.redis.xrange(
            busmod.log_key(show_id, lifetime), min=f"{since + 1}-0", max="+"
        )
        return [
            (int(entry_id.split(b"-")[0]), fields[b"e"].decode())
            for entry_id, fields in raw
        ]

    def _slot_key(self, show_id: int, who: str) -> str:
        return rclient.key("conns", show_id, who)

    async def acquire_slot(self, show_id: int, who: str, conn: str, limit: int) -> bool:
        ok = await self._acquire(
            keys=[self._slot_key(show_id, who)],
            args=[f"{self.process_id}/{conn}", limit, self.proc_key("")],
        )
        return bool(ok)

    async def release_slot(self, show_id: int, who: str, conn: str) -> None:
        await self.redis.srem(self._slot_key(show_id, who), f"{self.process_id}/{conn}")

    async def presence(self, show_id: int, local: int) -> int:
        total = await self._presence(
            keys=[rclient.key("presence", show_id)],
            args=[self.process_id, local, self.proc_key("")],
        )
        return int(total)

    async def reactions(
        self, show_id: int, counts: dict[str, int], window_ms: int
    ) -> dict[str, int] | None:
        args: list[Any] = [window_ms]
        for emoji, n in counts.items():
            args += [emoji, n]
        key = rclient.key("reactions", show_id)
        drained = await self._reactions(keys=[key, key + ":lock"], args=args)
        if drained is None:
            return None
        totals: Counter[str] = Counter()
        for i in range(0, len(drained), 2):
            totals[drained[i].decode()] += int(drained[i + 1])
        return dict(totals)


def make_backend() -> HubBackend:
    """The backend for the current settings."""
    return RedisBackend() if rclient.url() else MemoryBackend()
