"""Throwaway Redis and PostgreSQL servers for fault tests.

The shared servers on 6379 and 5432 must never be stopped, so a test that
crashes or stops a dependency starts its own on a free loopback port::

    with OwnPostgres() as pg:
        pg.create_database("outage")
        ...  # point a server at pg.url_for("outage"), then
        pg.stop()  # the database is down; the data directory stays
        pg.start()  # up again on the same port with the same data

    with OwnRedis() as redis:
        ...  # redis.url
        redis.kill()  # SIGKILL: every key is gone, as after a crash
        redis.start()  # an empty Redis on the same port

Nothing here needs Django or pytest. When a binary is missing the constructor
raises ``ServiceBinaryMissing``; callers turn that into
``tests.conftest.missing_service(str(exc))`` so CI fails and elsewhere the test
skips. PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` OS user and its commands run through ``runuser``.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0


class ServiceBinaryMissing(RuntimeError):
    """A server binary is not installed; the message names it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


class OwnServer(abc.ABC):
    """A server of a test's own: ``start()`` in ``with``, ``close()`` (stop it
    and remove its files) on the way out, also when starting failed."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class OwnRedis(OwnServer):
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceBinaryMissing("redis-server (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sf-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (again) on the same port and wait until it answers PING."""
        if self.running:
            return
        command = [
            self.binary,
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
        ]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            if self._pong():
                return
            time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, like a crash: with no persistence all data is gone."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def _pong(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "redis.log").read_text(errors="replace")[-2000:]
        return ""

    def close(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _postgres_bindir() -> Path | None:
    candidates = [os.environ.get("POSTGRES_BINDIR", "")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                subprocess.run(
                    [pg_config, "--bindir"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=True,
                ).stdout.strip()
            )
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(str(p) for p in versions)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


class OwnPostgres(OwnServer):
    """A throwaway PostgreSQL cluster on a free loopback port (trust auth,
    ``fsync=off``), removed on exit. ``stop()`` and ``start()`` keep the data
    directory and the port."""

    user = "postgres"

    def __init__(self) -> None:
        bindir = _postgres_bindir()
        if bindir is None:
            raise ServiceBinaryMissing(
                "PostgreSQL server binaries (initdb, pg_ctl; set POSTGRES_BINDIR)"
            )
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            raise ServiceBinaryMissing("runuser (to run PostgreSQL as its own user)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sf-postgres-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.initialized = False
        if self.as_root:
            shutil.chown(self.dir, user=self.user)

    # --- addresses ---------------------------------------------------------

    def url_for(self, name: str) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{name}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    @property
    def dsn(self) -> str:
        return f"host={LOOPBACK} port={self.port} user={self.user} dbname=postgres"

    def django_database(self, name: str = "postgres") -> dict[str, Any]:
        """A ``DATABASES["default"]`` entry for database ``name``."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "HOST": LOOPBACK,
            "PORT": self.port,
        }

    # --- life cycle ---------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{self._log_tail()}"
            )
        return result

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D", str(self.data),
            "-U", self.user,
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip
        # In postgresql.conf rather than on the command line, so a restart
        # comes back the same way.
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "shared_buffers": "16MB",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/own_services.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.initialized = True

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start (again) on the same port and data directory; returns once
        it accepts connections."""
        if not self.initialized:
            self._initdb()
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log),
            "-w", "-t", str(int(START_TIMEOUT)), "start",
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL does not listen on {self.port}")
            time.sleep(0.02)

    def stop(self, mode: str = "fast") -> None:
        """Shut down (``fast``: roll back and disconnect clients; ``immediate``:
        like a crash, recovered at the next start)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        self.stop("immediate")

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        self._run(
            "psql", "-h", LOOPBACK, "-p", str(self.port), "-U", self.user,
            "-d", "postgres", "-v", "ON_ERROR_STOP=1",
            "-c", f'CREATE DATABASE "{name}"',
        )  # fmt: skip
        return self.url_for(name)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""

    def close(self) -> None:
        """Stop the cluster (immediately) and remove it."""
        try:
            if self.running:
                try:
                    self.stop("immediate")
                except (RuntimeError, subprocess.TimeoutExpired):
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
