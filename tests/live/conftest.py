"""Fixtures for the show room: websocket clients through the whole ASGI stack."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

ORIGIN = b"http://testserver"


def login_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Socket:
    """A test client: keeps every event received, in order."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.comm = communicator
        self.events: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.refs = 0

    async def read(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """One frame's events (frames are JSON arrays of events)."""
        # Not ``receive_output``: its timeout cancels the application.
        try:
            output = await asyncio.wait_for(self.comm.output_queue.get(), timeout)
        except TimeoutError:
            if self.comm.future.done():
                self.comm.future.result()
            raise
        if output["type"] == "websocket.close":
            self.close_code = output.get("code")
            raise ConnectionError(f"closed with {self.close_code}")
        frame = json.loads(output["text"])
        assert isinstance(frame, list)
        self.events.extend(frame)
        return frame

    async def wait_for(
        self, kind: str, timeout: float = 10.0, **match: Any
    ) -> dict[str, Any]:
        """The first not yet consumed event of ``kind`` matching ``match``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                seen += 1
                if event.get("type") == kind and all(
                    event.get(k) == v for k, v in match.items()
                ):
                    event["_consumed"] = True
                    if not event.get("_taken"):
                        event["_taken"] = True
                        return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no {kind} {match} within {timeout}s; got "
                    f"{[e.get('type') for e in self.events]}"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await self.read(timeout=remaining)

    async def closed(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes the socket; the close code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                await self.read(timeout=deadline - loop.time())
            except ConnectionError:
                return self.close_code
            except TimeoutError:
                break
        raise AssertionError("the socket stayed open")

    async def send(self, kind: str, /, **fields: Any) -> str:
        self.refs += 1
        ref = f"r{self.refs}"
        await self.comm.send_json_to({"type": kind, "ref": ref, **fields})
        return ref

    async def reply(self, ref: str, timeout: float = 10.0) -> dict[str, Any]:
        """The ack or error answering ``ref``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                seen += 1
                if event.get("type") in ("ack", "error") and event.get("ref") == ref:
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no reply to {ref}; got {self.events}")
            with contextlib.suppress(asyncio.TimeoutError):
                await self.read(timeout=remaining)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


@pytest.fixture
async def connect(redis_client_if_any: Any) -> Any:
    """``await connect(show, user=None, since=None)`` → a connected ``Socket``
    (after its snapshot or resume), or the refused one with ``close_code``."""
    from config.asgi import application
    from live.hub import get_hub

    opened: list[Socket] = []

    async def open_socket(
        show: Any,
        user: Any = None,
        *,
        since: int | None = None,
        origin: bytes = ORIGIN,
        initial: bool = True,
    ) -> Socket:
        headers = [(b"origin", origin)]
        if user is not None:
            cookie = await database_sync_to_async(login_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        path = f"/ws/shows/{show.slug}/"
        if since is not None:
            path += f"?since={since}"
        socket = Socket(WebsocketCommunicator(application, path, headers=headers))
        opened.append(socket)
        connected, code = await socket.comm.connect(timeout=5)
        if not connected:
            socket.close_code = code
            return socket
        if initial:
            frame = await socket.read(timeout=5)
            assert frame[0]["type"] in ("snapshot", "resumed", "error"), frame
        return socket

    yield open_socket
    for socket in opened:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await socket.comm.disconnect(timeout=2)
    await get_hub().stop()


@pytest.fixture
def redis_client_if_any(settings: Any) -> Any:
    """Clean this worker's Redis keys after the test when Redis is in use."""
    if not settings.REDIS_URL:
        yield None
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def other_brand_host(make_user: Any) -> Any:
    """A host of another brand."""
    from shows import services

    other = services.brand_create(name="Other Co", slug="other-co")
    user = make_user("Oscar Other")
    services.membership_set(brand=other, user=user, role="host")
    return user


@pytest.fixture
def viewer(make_user: Any) -> Any:
    return make_user("Vera Viewer")


@pytest.fixture
def viewer2(make_user: Any) -> Any:
    return make_user("Olga Other")


@pytest.fixture
def pinned(live_show: Any, products: list[Any], host: Any) -> Any:
    """The first product pinned by the host."""
    from shows.services import room

    return room.product_pin(show=live_show, actor=host, product_id=products[0].pk)


@pytest.fixture
def daphne_pair(transactional_db: None, redis_client: Any) -> Any:
    """Two Daphne processes serving the whole app on the test database and the
    same Redis; yields their ws:// base URLs."""
    from django.conf import settings

    stale = list(redis_client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
    if stale:
        redis_client.delete(*stale)
    from functools import partial

    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess

    # Forked: garbage an earlier in-process media test left is finalized here,
    # not in a child, where it hung on a lock a thread of this process held.
    gc.collect()
    processes = []
    try:
        for _ in range(2):
            process = DaphneProcess(
                "127.0.0.1",
                partial(make_application, static_wrapper=None),
                setup=set_database_connection,
            )
            process.start()
            processes.append(process)
        for process in processes:
            if not process.ready.wait(timeout=30):
                pytest.fail("Daphne did not start")
        yield [f"ws://127.0.0.1:{p.port.value}" for p in processes]
    finally:
        for process in processes:
            process.terminate()
            process.join(timeout=10)
