"""Shared fixtures: the real services (PostgreSQL, Redis, localstripe, Chromium).

With ``CI`` set a missing service fails the run; elsewhere the tests that need it
skip and say which service is missing.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from tests.netns_support import CHROMIUM, CHROMIUM_ARGS, policy_bypassed

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
ARTIFACTS = ROOT / "test-artifacts"


def missing_service(what: str) -> None:
    """Fail under CI, skip elsewhere, naming the missing service."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available on this machine")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def loopback_namespace() -> Iterator[str]:
    """A fresh network namespace with only ``lo`` up, deleted afterwards: the
    place for browser WebRTC tests, whose Chromium offers candidates on every
    interface it sees."""
    if not Path(CHROMIUM).exists():
        missing_service(f"Chromium at {CHROMIUM}")
    name = f"sf-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    try:
        created: subprocess.CompletedProcess[str] | None = _ip("netns", "add", name)
    except FileNotFoundError:
        created = None
    if created is None or created.returncode != 0:
        reason = created.stderr.strip() if created else "no `ip` command"
        missing_service(f"a network namespace (`ip netns add`: {reason})")
    try:
        up = _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        assert up.returncode == 0, up.stderr
        yield name
    finally:
        _ip("netns", "del", name)


@pytest.fixture(autouse=True)
def redis_not_marked_down() -> None:
    """A test that killed a Redis leaves this process treating Redis as down
    for a second; the next test starts without that."""
    from realtime import redis as rclient

    rclient._down_until = 0.0


@pytest.fixture(scope="session", autouse=True)
def redis_keys_of_earlier_runs_removed() -> None:
    """Each run starts with no Redis key under this worker's prefix. The
    prefix stays the same from run to run of one checkout, while the test
    databases count their ids from 1 again: a show's counts, a variant's
    sold-out marker or a rate limit left by an earlier run would otherwise
    meet this run's show 1 or variant 1 (counts live for 48 h)."""
    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(str(settings.REDIS_URL))
    try:
        keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    except redis.ConnectionError:
        pass  # the tests that need Redis say so themselves
    finally:
        client.close()


def _rows_deleted_flush(original: Any) -> Any:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    kept = {ContentType._meta.db_table, Permission._meta.db_table}
    """PostgreSQL's ``sql_flush`` for the tests: a transactional test's
    database is emptied with DELETE under the lock TRUNCATE would take, not
    with TRUNCATE, which makes new files for each of the ~70 tables and their
    indexes (1.8-3.5 s a test on the loaded 2-core machine, 0.2-0.5 s on a
    quiet one). Every foreign key Django makes is deferred to the commit, so
    the order of the DELETEs does not matter. The content types and
    permissions stay: only ``migrate`` writes them, and the ``post_migrate``
    that follows a flush would write the same rows again (deleting them took
    0.3 s of the 0.35 s left). Resetting sequences or cascading still
    truncates everything."""

    def sql_flush(
        self: Any,
        style: Any,
        tables: list[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if reset_sequences or allow_cascade or not tables:
            return list(
                original(
                    self,
                    style,
                    tables,
                    reset_sequences=reset_sequences,
                    allow_cascade=allow_cascade,
                )
            )
        # The names are Django's own tables, quoted.
        names = [self.quote_name(table) for table in tables if table not in kept]
        lock = f"LOCK TABLE {', '.join(names)} IN ACCESS EXCLUSIVE MODE;"
        return [lock, *(f"DELETE FROM {name};" for name in names)]  # noqa: S608

    return sql_flush


@pytest.fixture(scope="session", autouse=True)
def flush_deletes_rows() -> Iterator[None]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            DatabaseOperations,
            "sql_flush",
            _rows_deleted_flush(DatabaseOperations.sql_flush),
        )
        yield


@pytest.fixture(scope="session", autouse=True)
def outbox_relay_stopped_at_the_end(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """This process's outbox relay thread stops before the test databases are
    dropped (a sweep holding a connection would keep them from going). So do
    the connections of the worker threads that ran the sockets' database
    calls: each thread keeps its own, and a test database they still held was
    left behind on the shared server ("being accessed by other users")."""
    yield
    from django.db import connection

    from realtime import outbox

    outbox.get_relay().stop()
    # Only when this run made a test database (a run of tests that use none
    # makes none, and the connection then names the unused main database).
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "postgresql" and name.startswith("test_"):
        # This worker's own test database: every session on it is this
        # process's (the servers its tests started have stopped).
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A ``redis-server`` of this test's own on a free loopback port, to kill
    and start again (``tests/own_services.py``)."""
    from tests.own_services import OwnRedis, ServiceBinaryMissing

    try:
        server = OwnRedis()
    except ServiceBinaryMissing as exc:
        missing_service(str(exc))
    with server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own on a free loopback port, to
    stop and start again (``tests/own_services.py``)."""
    from tests.own_services import OwnPostgres, ServiceBinaryMissing

    try:
        cluster = OwnPostgres()
    except ServiceBinaryMissing as exc:
        missing_service(str(exc))
    with cluster:
        yield cluster


@pytest.fixture
def postgres() -> None:
    """Require the real PostgreSQL (row locks, concurrency)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing_service("PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def redis_url() -> str:
    """The real Redis, reached with this worker's key prefix."""
    if not settings.REDIS_URL:
        missing_service("Redis on 127.0.0.1:6379")
    return str(settings.REDIS_URL)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A Redis client; every key under this worker's prefix is removed afterwards."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """localstripe on a free loopback port for the session; yields its base URL."""
    try:
        import localstripe as _
    except ImportError:
        missing_service("localstripe (pip install -e '.[dev]')")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkout.devstripe", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"localstripe did not start: {err.decode()[-2000:]}")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def stripe_settings(localstripe: str, settings: Any) -> str:
    """Point the Stripe gateway at localstripe for one test."""
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_SECRET_KEY = "sk_test_showfloor"
    return localstripe


def chromium_args() -> list[str]:
    return list(CHROMIUM_ARGS)


class SharedChromium:
    """One Playwright driver and one Chromium for the browser tests of a
    worker, each test in contexts of its own (closed after it).

    Playwright's sync API runs its event loop in the main thread and marks
    that loop as the running one between its calls; while it is marked,
    pytest-asyncio cannot run a test's loop and Django refuses synchronous
    database calls. So the loop is marked only while a browser test runs
    (``resume``) and unmarked between them (``park``), as when each test
    started and closed a Chromium of its own; starting them once saves about
    2 s a test."""

    def __init__(self) -> None:
        self.manager: Any = None
        self.browser: Any = None
        self.loop: Any = None

    def resume(self) -> Any:
        if self.manager is not None:
            asyncio._set_running_loop(self.loop)
            if self.browser.is_connected():
                return self.browser
            self.stop()
        from playwright.sync_api import sync_playwright

        self.manager = sync_playwright()
        playwright = self.manager.start()
        self.loop = asyncio.get_running_loop()
        self.browser = policy_bypassed(
            playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args()
            )
        )
        return self.browser

    def park(self) -> None:
        """Close what the test left open and unmark the loop; a Chromium that
        will not close its contexts is stopped (the next test starts one)."""
        try:
            for context in self.browser.contexts:
                context.close()
        except Exception:
            self.stop()
            raise
        asyncio._set_running_loop(None)

    def stop(self) -> None:
        if self.manager is None:
            return
        asyncio._set_running_loop(self.loop)
        manager, self.manager = self.manager, None
        try:
            if self.browser.is_connected():
                self.browser.close()
        finally:
            manager.__exit__(None, None, None)
            asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def shared_chromium() -> Iterator[SharedChromium]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        missing_service(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    shared = SharedChromium()
    yield shared
    shared.stop()


@pytest.fixture
def browser(
    shared_chromium: SharedChromium, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright: the worker's one
    Chromium, whose contexts are closed after the test (``SharedChromium``).
    Meanwhile Django is told that synchronous database calls from this
    thread (test data) are fine."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    yield shared_chromium.resume()
    shared_chromium.park()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def asgi_server(transactional_db: None, settings: Any) -> Iterator[str]:
    """The whole ASGI application served by Daphne in a child process on loopback,
    on the test database; yields its base URL."""
    from functools import partial

    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=set_database_connection,
    )
    # Forked: garbage an earlier in-process media test left (aiortc and PyAV
    # objects in cycles) is finalized here, not in the child, where it hung
    # on a lock a thread of this process held (tests/live/media/nodes.py).
    gc.collect()
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        pytest.fail("Daphne did not start")
    yield f"http://127.0.0.1:{process.port.value}"
    process.terminate()
    process.join(timeout=10)


# --- Data ------------------------------------------------------------------


@pytest.fixture
def make_user(db: None) -> Any:
    from shows.models import User

    counter = {"n": 0}

    def make(display_name: str = "", email: str = "", password: str = "pw-for-tests"):
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.test"
        return User.objects.create_user(
            email=email,
            password=password,
            display_name=display_name or f"User {counter['n']}",
        )

    return make


@pytest.fixture
def brand(db: None) -> Any:
    from shows import services

    return services.brand_create(name="Acme Audio", slug="acme")


@pytest.fixture
def host(make_user: Any, brand: Any) -> Any:
    from shows import services

    user = make_user("Hana Host")
    services.membership_set(brand=brand, user=user, role="host")
    return user


@pytest.fixture
def moderator(make_user: Any, brand: Any) -> Any:
    from shows import services

    user = make_user("Milo Mod")
    services.membership_set(brand=brand, user=user, role="moderator")
    return user


@pytest.fixture
def products(brand: Any) -> list[Any]:
    from shows import services

    made = []
    for index, (name, price, stock) in enumerate(
        [("Studio Headphones", 14900, 25), ("Desk Mic", 8900, 10), ("Cable", 1500, 0)]
    ):
        product = services.product_create(brand=brand, name=name)
        services.variant_create(
            product=product,
            sku=f"SKU-{index}",
            name="Standard",
            price_minor=price,
            currency="EUR",
            stock_available=stock,
        )
        made.append(product)
    return made


@pytest.fixture
def show(brand: Any, products: list[Any]) -> Any:
    from shows import services

    return services.show_create(
        brand=brand,
        slug="launch-night",
        title="Launch night",
        scheduled_at=timezone.now() + timedelta(hours=1),
        products=products,
    )


@pytest.fixture
def private_live_show(brand: Any, products: list[Any]) -> Any:
    """A live show whose room and page need the access code "Club-2026"."""
    from shows import services

    show = services.show_create(
        brand=brand,
        slug="club-night",
        title="Club night",
        scheduled_at=timezone.now() + timedelta(minutes=5),
        products=products[:1],
        access_code="Club-2026",
    )
    return services.show_start(show=show)


@pytest.fixture
def live_show(show: Any) -> Any:
    from shows import services

    return services.show_start(show=show)


def _fresh_asgiref_executor_after_fork() -> None:
    """A forked server (``asgi_server``, ``DaphneProcess``) inherits asgiref's
    one-thread executor without its thread: once the parent has used
    ``sync_to_async``, every ``database_sync_to_async`` in the child would wait
    forever. Give the child a fresh executor."""
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


os.register_at_fork(after_in_child=_fresh_asgiref_executor_after_fork)
