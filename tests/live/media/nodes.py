"""Media nodes as separate Daphne processes for the tests that need several
(``test_registry.py``, ``test_edges.py``): each serves the whole app under its
own node id, on the test database and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port

LOCK_SECONDS = 5
# The nodes renew their locks every second (the report period); allowing for a
# slow heartbeat, a dead node's lock lives at least this long after its death.
LOCK_OUTLIVES_NODE = LOCK_SECONDS - 2


@dataclass
class Node:
    name: str
    base: str
    process: Any


@contextlib.contextmanager
def media_nodes(
    names: list[str], tmp_path: Any, **settings_overrides: Any
) -> Iterator[list[Node]]:
    """A Daphne process per name serving the whole app as that media node
    (short lock TTL, reports every second, and ``settings_overrides``), on the
    test database and Redis."""
    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess
    from django.conf import settings

    # The children are forked: finalize this process's garbage here first. An
    # earlier in-process media test leaves aiortc and PyAV objects in cycles,
    # and a child collecting them (config.asgi freezes the heap with a
    # collection) hung on a lock that a thread of this process held at fork.
    gc.collect()
    nodes: list[Node] = []
    try:
        for name in names:
            port = free_port()
            overrides = {
                "SHOWFLOOR_MEDIA_NODE": name,
                "SHOWFLOOR_MEDIA_NODE_URL": f"http://127.0.0.1:{port}",
                "SHOWFLOOR_MEDIA_LOCK_SECONDS": LOCK_SECONDS,
                "SHOWFLOOR_MEDIA_REPORT_SECONDS": 1,
                "SHOWFLOOR_HLS_DIR": tmp_path / name / "hls",
                "SHOWFLOOR_RECORDINGS_DIR": tmp_path / name / "recordings",
                "SHOWFLOOR_VIDEO_MAX_WIDTH": 320,
                "SHOWFLOOR_VIDEO_MAX_HEIGHT": 240,
                "SHOWFLOOR_VIDEO_PRESET": "ultrafast",
                "SHOWFLOOR_MEDIA_ADDRESSES": ["127.0.0.1"],
                "SHOWFLOOR_ICE_SERVERS": "[]",
                **settings_overrides,
            }

            def setup(overrides: dict[str, Any] = overrides) -> None:
                set_database_connection()
                for key, value in overrides.items():
                    setattr(settings, key, value)

            process = DaphneProcess(
                "127.0.0.1",
                partial(make_application, static_wrapper=None),
                setup=setup,
                port=port,
            )
            process.start()
            nodes.append(Node(name, f"http://127.0.0.1:{port}", process))
        for node in nodes:
            if not node.process.ready.wait(timeout=60):
                error = "" if node.process.errors.empty() else node.process.errors.get()
                pytest.fail(f"Daphne ({node.name}) did not start: {error}")
            # The health check a deployment makes: the node starts reporting.
            with urllib.request.urlopen(f"{node.base}/healthz", timeout=30):
                pass
        yield nodes
    finally:
        for node in nodes:
            if node.process.is_alive():
                node.process.terminate()
            node.process.join(timeout=10)
        _forget_nodes()


def _forget_nodes() -> None:
    """Remove the nodes' publisher locks and reports: a node stopped without
    releasing its lock would leave the show "published elsewhere" for the
    next test's node (the same slug, the same prefix) until the lock expired."""
    import redis
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:media:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class Poster:
    """POSTs SDP like a WHIP/WHEP client that follows redirects (as fetch and
    OBS do); remembers each answer's redirects."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.redirects: list[tuple[int, str]] = []

    async def __call__(
        self, url: str, sdp: str, token: str
    ) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.post(url, data=sdp, headers=headers) as response:
            self.redirects = [
                (r.status, r.headers["Location"]) for r in response.history
            ]
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                await response.text(),
            )


async def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())
