"""Outages answered cleanly over HTTP (config/middleware.py, ``/healthz``).

With the database unreachable an API client gets a 503 with a JSON body and
``Retry-After``, a person a friendly 503 page, both within a second; ``/healthz``
names each dependency and answers 503 while one is down. The slow test runs the
whole ASGI application in Daphne on a PostgreSQL cluster of its own and stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import OperationalError
from django.test import Client

from tests.conftest import free_port
from tests.netns_support import server_env, wait_for_server
from tests.own_services import OwnPostgres, OwnRedis

ROOT = Path(__file__).resolve().parent.parent
# An API read that queries the database (404 while it answers).
API = "/api/shows/no-such-show/orders"
DAPHNE = [sys.executable, "-m", "daphne", "-b", "127.0.0.1"]


def refused() -> OperationalError:
    """What Django raises when PostgreSQL refuses the connection."""
    try:
        raise psycopg.OperationalError("connection failed: Connection refused")
    except psycopg.OperationalError as cause:
        error = OperationalError(*cause.args)
        error.__cause__ = cause
        return error


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """The selectors the home page and the API read with fail to connect."""
    from shows import discovery, selectors

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise refused()

    monkeypatch.setattr(selectors, "show_list_home", fail)
    monkeypatch.setattr(discovery, "home_shows", fail)
    monkeypatch.setattr(selectors, "show_get", fail)


# --- In process ---------------------------------------------------------------


def test_an_api_request_gets_503_json_with_retry_after(db, database_down, settings):
    """The checkout API answers with its usual ``code`` and ``message``, plus
    how long to wait, in the body and the header."""
    settings.SHOWFLOOR_RETRY_AFTER_SECONDS = 7
    response = Client().get(API, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    body = response.json()
    assert body["code"] == "unavailable"
    assert body["retry_after"] == 7
    assert "Sekunden" in body["message"]


def test_a_page_gets_the_friendly_503_page(db, database_down):
    """A person sees a page in their language that reloads itself, not a 500."""
    response = Client().get("/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "Réessayer" in page


def test_a_client_asking_for_json_gets_json_on_any_path(db, database_down):
    response = Client().get("/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_a_session_that_cannot_be_loaded_is_a_503(db, monkeypatch):
    """The lazy user of a signed-in visitor reads the session from the
    database while the page renders: that failure is a 503 too."""
    from shows.sessions import SessionStore

    def fail(self: Any) -> Any:
        raise refused()

    monkeypatch.setattr(SessionStore, "load", fail)
    client = Client()
    client.cookies["sessionid"] = "a" * 32
    response = client.get("/")
    assert response.status_code == 503
    assert b"503" in response.content


def test_a_session_that_cannot_be_saved_after_the_view_is_a_503(db, monkeypatch):
    """``SessionMiddleware`` saves what the view stored after the view, out of
    ``process_exception``'s reach: the 500 handler answers 503 for it."""
    from django.contrib.sessions.middleware import SessionMiddleware

    from shows.sessions import SessionStore

    respond = SessionMiddleware.process_response

    def stored_then_respond(self: Any, request: Any, response: Any) -> Any:
        request.session["seen"] = True  # as a view that remembers something
        return respond(self, request, response)

    def fail(self: Any, must_create: bool = False) -> None:
        raise refused()

    monkeypatch.setattr(SessionMiddleware, "process_response", stored_then_respond)
    monkeypatch.setattr(SessionStore, "save", fail)
    response = Client(raise_request_exception=False).get("/login/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"503" in response.content


def test_a_query_error_that_is_not_an_outage_stays_a_500(db, monkeypatch):
    """A deadlock or a missing table is a bug to look at, not an outage."""
    from shows import discovery, selectors

    def deadlock(*args: Any, **kwargs: Any) -> Any:
        try:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        except psycopg.Error as cause:
            raise OperationalError(*cause.args) from cause

    monkeypatch.setattr(selectors, "show_list_home", deadlock)
    monkeypatch.setattr(discovery, "home_shows", deadlock)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_healthz_says_redis_is_down_within_a_second(db, settings):
    """A configured Redis that does not answer: 503, ``redis: down``."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    response = Client().get("/healthz")
    assert time.monotonic() - started < 1
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "redis": "down"}
    assert response["Retry-After"] == "5"


# --- A real outage ------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, **headers: str) -> Answer:
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, head, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, body = error.code, error.headers, error.read()
    return Answer(status, head, body, time.perf_counter() - started)


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    answers: list[str] = field(default_factory=list)

    def get(self, path: str, **headers: str) -> Answer:
        answer = fetch(self.base + path, **headers)
        self.answers.append(f"{path} {answer.status} {answer.seconds * 1000:.0f} ms")
        return answer


@pytest.fixture
def servers(
    own_postgres: OwnPostgres, own_redis: OwnRedis, tmp_path: Path
) -> Iterator[list[Server]]:
    """Daphne serving the whole application with ``config.settings`` (as
    deployed) on the own cluster, migrated, and the own Redis: one server with
    psycopg's pool, one that connects per request."""
    url = own_postgres.create_database("showfloor")
    env = server_env(tmp_path, DATABASE_URL=url, REDIS_URL=own_redis.url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    started: list[Server] = []
    try:
        for name, pool in (("pooled", "true"), ("unpooled", "false")):
            port = free_port()
            log = tmp_path / f"daphne-{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*DAPHNE, "-p", str(port), "config.asgi:application"],
                    cwd=ROOT,
                    env={**env, "DATABASE_POOL": pool},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Server(name, f"http://127.0.0.1:{port}", process, log))
        for server in started:
            try:
                wait_for_server(f"{server.base}/healthz", server=server.process)
            except (RuntimeError, TimeoutError) as exc:
                pytest.fail(f"{server.name}: {exc}\n{server.log.read_text()[-3000:]}")
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def answers_fast_with_503(server: Server, path: str, **headers: str) -> Answer:
    answer = server.get(path, **headers)
    assert answer.status == 503, (server.name, path, answer.body[:500])
    assert answer.seconds < 1, (server.name, path, answer.seconds)
    assert int(answer.headers["Retry-After"]) > 0
    return answer


@pytest.mark.slow
def test_a_stopped_database_is_answered_within_a_second_and_recovered_from(
    servers: list[Server], own_postgres: OwnPostgres, own_redis: OwnRedis
) -> None:
    """PostgreSQL stopped: the API, a page (with and without a session) and
    ``/healthz`` answer 503 with ``Retry-After`` in under a second, pooled or
    not. Started again: ``/healthz`` is 200 within 5 s and the pages work.
    Redis killed: ``/healthz`` says so with a 503."""
    api = API
    signed_in = {"Cookie": f"sessionid={'b' * 32}"}
    for server in servers:
        assert server.get("/").status == 200
        assert server.get("/", **signed_in).status == 200
        assert server.get(api).status == 404
        health = server.get("/healthz")
        assert (health.status, health.json()) == (
            200,
            {"database": "ok", "redis": "ok"},
        )

    own_postgres.stop()
    for server in servers:
        body = answers_fast_with_503(server, api).json()
        assert body["code"] == "unavailable"
        assert body["retry_after"] > 0
        page = answers_fast_with_503(server, "/", **{"Accept-Language": "de"})
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Gleich wieder da" in page.body.decode()
        answers_fast_with_503(server, "/", **signed_in)
        health = answers_fast_with_503(server, "/healthz")
        assert health.json() == {"database": "down", "redis": "ok"}

    own_postgres.start()
    for server in servers:
        deadline = time.monotonic() + 5
        while (health := server.get("/healthz")).status != 200:
            assert time.monotonic() < deadline, (server.name, server.answers)
            time.sleep(0.1)
        assert server.get("/").status == 200, server.answers
        assert server.get("/", **signed_in).status == 200
        assert server.get(api).status == 404

    own_redis.kill()
    for server in servers:
        health = answers_fast_with_503(server, "/healthz")
        assert health.json() == {"database": "ok", "redis": "down"}
    own_redis.start()
    for server in servers:
        assert server.get("/healthz").status == 200


SEED_ROOM = """
from datetime import timedelta

import django

django.setup()
from django.test import Client
from django.utils import timezone

from shows import services
from shows.models import User

brand = services.brand_create(name="Outage Co", slug="outage-co")
host = User.objects.create_user(
    email="host@example.test", password="pw-for-tests", display_name="Hana"
)
services.membership_set(brand=brand, user=host, role="host")
show = services.show_create(
    brand=brand,
    slug="outage-show",
    title="Outage show",
    scheduled_at=timezone.now() + timedelta(minutes=5),
    products=[],
)
services.show_start(show=show)
client = Client()
client.force_login(host)
print(client.cookies["sessionid"].value)
"""


async def _events_until(
    ws: Any, want: Any, timeout: float = 10, *, seen: list[Any] | None = None
) -> dict[str, Any]:
    """The first event ``want`` takes; every event read on the way (that one
    included) goes to ``seen``, so a later wait can find what came first."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            for event in json.loads(await ws.recv()):
                if seen is not None:
                    seen.append(event)
                if want(event):
                    return dict(event)


@pytest.mark.slow
def test_room_sockets_ride_out_a_stopped_database(
    servers: list[Server], own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """PostgreSQL stopped: an open room socket stays open; a chat message sent
    meanwhile is answered ``unavailable`` with ``retry_after`` (nothing stored,
    nothing acknowledged) and goes through when sent again after the restart;
    a new socket is accepted, told ``unavailable`` and closed with 4503 (a
    code the client retries), never refused with an HTTP error."""
    import asyncio

    import websockets

    env = server_env(tmp_path, DATABASE_URL=own_postgres.url_for("showfloor"))
    cookie = subprocess.run(
        [sys.executable, "-c", SEED_ROOM],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()[-1]
    base = servers[1].base.replace("http://", "ws://")
    path = f"{base}/ws/shows/outage-show/"
    origin = servers[1].base

    async def scenario() -> None:
        host = await websockets.connect(
            path, origin=origin, additional_headers={"Cookie": f"sessionid={cookie}"}
        )
        assert json.loads(await host.recv())[0]["type"] == "snapshot"
        own_postgres.stop()
        await host.send(json.dumps({"type": "chat.send", "text": "hello", "ref": 1}))
        refused = await _events_until(host, lambda e: e.get("ref") == 1)
        assert refused["type"] == "error"
        assert refused["code"] == "unavailable"
        assert refused["retry_after"] > 0

        newcomer = await websockets.connect(path, origin=origin)  # accepted
        error = await _events_until(newcomer, lambda e: e.get("type") == "error")
        assert error["code"] == "unavailable"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(newcomer.recv(), 10)
        assert newcomer.close_code == 4503

        own_postgres.start()
        assert host.close_code is None  # still open
        deadline = time.monotonic() + 10
        ref = 2
        # The room's event may come before the ack (the commit publishes it,
        # the hub passes it on, then the consumer answers): keep both.
        seen: list[Any] = []
        while True:
            await host.send(
                json.dumps({"type": "chat.send", "text": "hello", "ref": ref})
            )
            reply = await _events_until(
                host, lambda e, r=ref: e.get("ref") == r, seen=seen
            )
            if reply["type"] == "ack":
                break
            assert reply["code"] == "unavailable"
            assert time.monotonic() < deadline
            await asyncio.sleep(reply["retry_after"] / 4)
            ref += 1
        messages = [e for e in seen if e.get("type") == "chat.message"]
        if not messages:
            messages.append(
                await _events_until(host, lambda e: e.get("type") == "chat.message")
            )
        assert [m["text"] for m in messages] == ["hello"]  # once, not lost
        await host.close()

    asyncio.run(scenario())
