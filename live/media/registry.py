"""What the media nodes share: who publishes each show, and how loaded each
node is (docs/video.md, "Several media nodes").

- **The publisher lock.** A show's broadcast lives on one node, its origin. The
  node holds ``media:publisher:<slug>`` in Redis (``SET`` only if free or
  already its own, with a TTL of ``SHOWFLOOR_MEDIA_LOCK_SECONDS``) from the
  publisher's first WHIP ``POST`` until the broadcast closes, also while the
  publisher is stopped or reconnecting, so the show's publisher comes back to
  the same node. A heartbeat renews it; a node that dies stops renewing, the
  lock expires and another node may take the show. A WHIP ``POST`` for a show
  whose lock another node holds is refused (``409 publisher_elsewhere``).
- **Node reports.** Every node writes ``media:node:<id>`` (its id, public base
  URL, WebRTC viewers, broadcasts, process CPU) every
  ``SHOWFLOOR_MEDIA_REPORT_SECONDS`` with a TTL of three periods, and lists
  itself in ``media:nodes``.
- **Routing a viewer** (``route_viewer``, a pure function of the reports):
  whichever node a WHEP ``POST`` reaches picks the node to serve it, the
  show's origin while it is below ``ORIGIN_SHARE`` of
  ``SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS`` and of ``SHOWFLOOR_MEDIA_ROUTE_CPU``;
  then the least loaded live node, which serves the viewer as an **edge**
  (``live/media/edge.py``) if it is not the origin. A node whose report is
  older than two periods is never chosen; with the origin's report stale
  nobody is (its packets cannot be pulled).

Without Redis (the embedded demo: one process) ``MemoryRegistry`` stands in:
every claim succeeds (the node's own "already publishing" check stays) and
nothing is reported. While Redis is down a claim succeeds too (Redis is never
the truth here; a live show must not be refused for it); the heartbeat takes
the lock back once Redis answers, and a node that finds another one holding
it then closes its own broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Protocol
from urllib.parse import urlencode

from django.conf import settings

from realtime import redis as rclient

logger = logging.getLogger(__name__)

# Take the lock when it is free or already ours; renew it then. 1 if held now.
HOLD = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# Let go of the lock only if it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# A node's report lives this many report periods.
REPORT_PERIODS = 3


@dataclass(frozen=True)
class NodeReport:
    """One node's load as it last reported it."""

    node: str
    url: str
    viewers: int
    broadcasts: int
    cpu: float
    at: int  # epoch ms
    # Edges pulling a show from this node (one WebRTC session each, not
    # counted in ``viewers``).
    links: int = 0

    @classmethod
    def parse(cls, raw: bytes | str) -> NodeReport | None:
        try:
            data = json.loads(raw)
            return cls(
                node=str(data["node"]),
                url=str(data["url"]),
                viewers=int(data["viewers"]),
                broadcasts=int(data["broadcasts"]),
                cpu=float(data["cpu"]),
                at=int(data["at"]),
                links=int(data.get("links", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None


def node_id() -> str:
    return str(settings.SHOWFLOOR_MEDIA_NODE)


def lock_seconds() -> float:
    return float(settings.SHOWFLOOR_MEDIA_LOCK_SECONDS)


def report_seconds() -> float:
    return float(settings.SHOWFLOOR_MEDIA_REPORT_SECONDS)


def whep_url(report: NodeReport, slug: str) -> str:
    return f"{report.url.rstrip('/')}/live/{slug}/whep"


def routed_whep_url(report: NodeReport, slug: str, **params: str) -> str:
    """The WHEP URL that makes ``report``'s node serve the viewer itself
    (routing chose it; it does not route again, so no redirect loops), with
    the viewer's other ``params`` (``start``)."""
    query = urlencode({**params, ROUTED_PARAM: report.node})
    return f"{whep_url(report, slug)}?{query}"


# The query parameter naming the node routing chose.
ROUTED_PARAM = "node"
# The WHEP query parameter a player on a slow link sends: ``start=low``.
START_PARAM = "start"
# The origin serves a show's viewers itself while below this share of its
# viewer and CPU limits; then the least loaded node does.
ORIGIN_SHARE = 0.8
# A report older than this many periods is stale: that node is never chosen.
STALE_PERIODS = 2


@dataclass(frozen=True)
class RouteLimits:
    max_viewers: int  # WebRTC viewers per node (over all its shows)
    max_cpu: float  # cores of the node's process
    stale_ms: int

    @classmethod
    def from_settings(cls) -> RouteLimits:
        return cls(
            max_viewers=max(1, int(settings.SHOWFLOOR_MEDIA_NODE_MAX_VIEWERS)),
            max_cpu=max(0.01, float(settings.SHOWFLOOR_MEDIA_ROUTE_CPU)),
            stale_ms=int(report_seconds() * STALE_PERIODS * 1000),
        )


def node_load(report: NodeReport, limits: RouteLimits) -> float:
    """How full a node is, 1.0 at either limit: viewers (an edge link counts
    as a viewer) or CPU, whichever is nearer."""
    viewers = (report.viewers + report.links) / limits.max_viewers
    return max(viewers, report.cpu / limits.max_cpu)


def route_viewer(
    *,
    origin: str,
    reports: Iterable[NodeReport],
    now_ms: int,
    limits: RouteLimits,
) -> NodeReport | None:
    """The node that should serve a new WebRTC viewer of a show whose origin
    is the node ``origin``: the origin itself while its load is below
    ``ORIGIN_SHARE``, else the least loaded live node (the origin on a tie).
    None when the origin's report is stale or missing: no node can serve
    the show then. ``reports`` should already count viewers sent to a node
    since its report (``pending``)."""
    fresh = [r for r in reports if now_ms - r.at <= limits.stale_ms]
    home = next((r for r in fresh if r.node == origin), None)
    if home is None:
        return None
    if node_load(home, limits) < ORIGIN_SHARE:
        return home
    return min(fresh, key=lambda r: (node_load(r, limits), r.node != origin, r.node))


def with_pending(report: NodeReport, pending: int) -> NodeReport:
    """``report`` counting ``pending`` viewers sent to it since it was made."""
    return replace(report, viewers=report.viewers + pending) if pending else report


class Registry(Protocol):
    async def hold(self, slug: str) -> bool:
        """Take or renew this node's lock on ``slug``'s broadcast; False when
        another node holds it."""

    async def release(self, slug: str) -> None:
        """Let go of the lock on ``slug`` if this node holds it."""

    async def holder(self, slug: str) -> str | None:
        """The id of the node holding ``slug``'s lock, if any."""

    async def origin(self, slug: str) -> NodeReport | None:
        """The report of the other, live node holding ``slug``, if any."""

    async def report(self, load: NodeReport) -> None:
        """Publish this node's load."""

    async def nodes(self) -> list[NodeReport]:
        """Every node that reported within its TTL."""


class MemoryRegistry:
    """One process (the embedded demo): nothing to share."""

    async def hold(self, slug: str) -> bool:
        return True

    async def release(self, slug: str) -> None:
        return None

    async def holder(self, slug: str) -> str | None:
        return None

    async def origin(self, slug: str) -> NodeReport | None:
        return None

    async def report(self, load: NodeReport) -> None:
        return None

    async def nodes(self) -> list[NodeReport]:
        return []


class RedisRegistry:
    """The registry in Redis, for every node of a deployment. Built in the
    event loop that uses it (its client belongs to that loop)."""

    def __init__(self) -> None:
        self.client = rclient.async_client()
        self._hold = self.client.register_script(HOLD)
        self._release = self.client.register_script(RELEASE)

    @staticmethod
    def _lock_key(slug: str) -> str:
        return rclient.key("media", "publisher", slug)

    @staticmethod
    def _node_key(node: str) -> str:
        return rclient.key("media", "node", node)

    async def hold(self, slug: str) -> bool:
        millis = max(1, int(lock_seconds() * 1000))
        try:
            held = await self._hold(
                keys=[self._lock_key(slug)], args=[node_id(), millis]
            )
        except rclient.ERRORS:
            rclient.mark_down()
            logger.warning("Redis is down: %s is published here unlocked", slug)
            return True
        return bool(int(held))

    async def release(self, slug: str) -> None:
        try:
            await self._release(keys=[self._lock_key(slug)], args=[node_id()])
        except rclient.ERRORS:
            rclient.mark_down()

    async def holder(self, slug: str) -> str | None:
        try:
            holder = await self.client.get(self._lock_key(slug))
        except rclient.ERRORS:
            rclient.mark_down()
            return None
        return holder.decode() if holder is not None else None

    async def origin(self, slug: str) -> NodeReport | None:
        try:
            holder = await self.client.get(self._lock_key(slug))
            if holder is None or holder.decode() == node_id():
                return None
            raw = await self.client.get(self._node_key(holder.decode()))
        except rclient.ERRORS:
            rclient.mark_down()
            return None
        report = NodeReport.parse(raw) if raw is not None else None
        return report if report is not None and report.url else None

    async def report(self, load: NodeReport) -> None:
        ttl = max(1, int(report_seconds() * REPORT_PERIODS * 1000))
        index = rclient.key("media", "nodes")
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._node_key(load.node), json.dumps(asdict(load)), px=ttl)
                pipe.zadd(index, {load.node: load.at})
                pipe.zremrangebyscore(index, "-inf", load.at - ttl)
                await pipe.execute()
        except rclient.ERRORS:
            rclient.mark_down()

    async def nodes(self) -> list[NodeReport]:
        try:
            names = await self.client.zrange(rclient.key("media", "nodes"), 0, -1)
            if not names:
                return []
            raws = await self.client.mget([self._node_key(n.decode()) for n in names])
        except rclient.ERRORS:
            rclient.mark_down()
            return []
        reports = [NodeReport.parse(raw) for raw in raws if raw is not None]
        return [r for r in reports if r is not None]


def new_registry() -> Registry:
    """The registry for this deployment: Redis when configured."""
    return RedisRegistry() if rclient.url() else MemoryRegistry()


@dataclass(frozen=True)
class Load:
    viewers: int
    broadcasts: int
    links: int = 0


class Heartbeat:
    """Renews the locks of the node's broadcasts and reports its load, every
    third of the lock's TTL or every report period, whichever is shorter.
    ``lost(slug)`` is awaited for a broadcast whose lock another node took
    (this node was cut off from Redis for longer than the TTL)."""

    def __init__(
        self,
        registry: Registry,
        *,
        held: Callable[[], list[str]],
        load: Callable[[], Load],
        lost: Callable[[str], Awaitable[None]],
    ) -> None:
        self.registry = registry
        self.held = held
        self.load = load
        self.lost = lost
        self._task: asyncio.Task[None] | None = None
        self._cpu = time.process_time()
        self._wall = time.monotonic()
        # The process's CPU share in the last report, for this node's own
        # routing decisions between reports.
        self.last_cpu = 0.0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _cpu_share(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        share = (cpu - self._cpu) / max(wall - self._wall, 1e-6)
        self._cpu, self._wall = cpu, wall
        self.last_cpu = round(share, 3)
        return self.last_cpu

    async def beat(self) -> None:
        for slug in self.held():
            if not await self.registry.hold(slug):
                logger.error("another media node took %s: closing it here", slug)
                await self.lost(slug)
        load = self.load()
        await self.registry.report(
            NodeReport(
                node=node_id(),
                url=str(settings.SHOWFLOOR_MEDIA_NODE_URL),
                viewers=load.viewers,
                broadcasts=load.broadcasts,
                cpu=self._cpu_share(),
                at=int(time.time() * 1000),
                links=load.links,
            )
        )

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
                logger.exception("media node heartbeat failed")
            await asyncio.sleep(min(lock_seconds() / 3, report_seconds()))
