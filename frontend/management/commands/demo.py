"""``manage.py demo``: the embedded default in one process.

Migrates, seeds a brand with staff, products and a show, starts localstripe as
a child process on loopback, runs the sweeper and the background tasks' worker
(the buyer's emails, printed on the console) in threads and serves the whole
ASGI application (pages, websockets, media routes, static files) with Daphne
on 127.0.0.1. Ctrl-C stops everything, the child process included.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import signal
import socket
import subprocess  # nosec B404 - starts the demo's own processes
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import OperationalError, close_old_connections
from django.urls import reverse

from frontend import demo

if TYPE_CHECKING:
    from django_tasks.backends.database.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SWEEP_INTERVAL_SECONDS = 5.0
# How often the worker looks for due tasks. Each look takes SQLite's one write
# lock for a moment, so the demo's worker looks every two seconds, not every
# one as ``db_worker`` does: an email reaches the console within two seconds.
TASKS_INTERVAL_SECONDS = 2.0
# How long Ctrl-C waits for each background thread's pass under way. The
# threads are daemons: one still busy after that ends with the process (a
# database transaction is all or nothing), and Ctrl-C stays quick on a
# loaded machine.
STOP_WAIT_SECONDS = 3.0


@contextlib.contextmanager
def _localstripe(webhook_url: str) -> Iterator[str]:
    """localstripe on a free loopback port, its webhook pointed at this demo,
    for as long as the block runs."""
    from checkout.devstripe import start_for_demo

    child, url = start_for_demo(webhook_url, settings.STRIPE_WEBHOOK_SECRET)
    try:
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def _sweeper() -> Iterator[None]:
    """The checkout sweeper (expired holds, stale payments) in a thread."""
    from checkout import sweeper

    stop = threading.Event()
    thread = threading.Thread(
        target=sweeper.run,
        kwargs={"interval": SWEEP_INTERVAL_SECONDS, "stop": stop},
        name="showfloor-sweeper",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=STOP_WAIT_SECONDS)


@contextlib.contextmanager
def _task_worker(interval: float = TASKS_INTERVAL_SECONDS) -> Iterator[None]:
    """The background tasks' worker (``manage.py db_worker``: the buyer's
    emails) in a thread, for as long as the block runs. Stopping waits up to
    ``STOP_WAIT_SECONDS`` for the task under way, if any."""
    from django_tasks.backends.database.management.commands.db_worker import Worker

    worker = Worker(
        queue_names=["*"],
        interval=interval,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="demo",
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=_run_worker,
        args=(worker, stop, interval),
        name="showfloor-tasks",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        worker.running = False
        thread.join(timeout=STOP_WAIT_SECONDS)


def _run_worker(worker: Worker, stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        try:
            worker.run()
        except OperationalError as error:
            # The web's writes hold SQLite's lock longer than the worker
            # waits: look again later.
            if "locked" not in str(error):
                logger.exception("the task worker stopped; starting it again")
        except Exception:
            logger.exception("the task worker stopped; starting it again")
        stop.wait(interval)
    close_old_connections()


class Command(BaseCommand):
    help = (
        "Run Showfloor's embedded demo on 127.0.0.1: migrate, seed a brand and a "
        "show, start localstripe, the sweeper and the task worker, serve with "
        "Daphne."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-serve",
            action="store_true",
            help="Migrate and seed, then exit (no server).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # SIGUSR1 prints every thread's stack: what a demo that hangs waits on.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        # Started from a shell's background (``cmd &``) or by a process that
        # ignores SIGINT, this process inherits the ignoring: then neither
        # Python nor Daphne's reactor would install a handler, and Ctrl-C (or
        # ``kill -INT``) would never stop the demo.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        port: int = options["port"]
        (settings.BASE_DIR / "var").mkdir(exist_ok=True)
        # WhiteNoise also serves collected files from here when there are any.
        settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
        self.stdout.write("Preparing the database…")
        call_command("migrate", interactive=False, verbosity=0)
        data = demo.seed_demo()
        if options["no_serve"]:
            self.stdout.write(self.style.SUCCESS("Demo data is ready."))
            return
        if not _port_is_free(port):
            raise CommandError(
                f"Port {port} on 127.0.0.1 is in use; pick another with --port."
            )

        base = f"http://{LOOPBACK}:{port}"
        settings.SHOWFLOOR_MEDIA_ADDRESSES = [LOOPBACK]
        settings.SHOWFLOOR_PUBLIC_URL = base
        webhook_url = base + reverse("stripe_webhook")
        with _localstripe(webhook_url) as stripe_url, _sweeper(), _task_worker():
            settings.STRIPE_API_BASE = stripe_url
            self._announce(data, base, stripe_url)
            self._serve(port)
        self.stdout.write("Stopped.")

    def _announce(self, data: demo.DemoData, base: str, stripe_url: str) -> None:
        show, private = data.show, data.private_show
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS("Showfloor demo is running."))
        write(f"  Viewer page:  {base}/shows/{show.slug}/")
        write(f"  Host studio:  {base}/shows/{show.slug}/studio/")
        write(f"  Workspace:    {base}/brand/{data.brand.slug}/")
        write(f"  Admin:        {base}/admin/")
        write(
            f"  Private show: {base}/shows/{private.slug}/ "
            f"(access code {demo.PRIVATE_SHOW_CODE})"
        )
        write(f"  Home:         {base}/")
        write("")
        write(f"  Logins (password “{demo.DEMO_PASSWORD}” for all):")
        write(f"    host       {data.host.email}")
        write(f"    moderator  {data.moderator.email}")
        write(f"    viewer     {data.viewer.email}")
        write(f"    admin      {data.admin.email}")
        write("")
        write(f"  Payments go to localstripe at {stripe_url} (test cards only).")
        write("  Press Ctrl-C to stop.")
        write("")
        self.stdout.flush()

    def _serve(self, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from config.asgi import application

        Server(
            application=application,
            # A listen backlog of 1,024: a crowd of buyers or viewers arriving
            # at once is queued by the kernel, not reset (Twisted's default: 50).
            endpoints=[
                f"{endpoint}:backlog=1024"
                for endpoint in build_endpoint_description_strings(
                    host=LOOPBACK, port=port
                )
            ],
            signal_handlers=True,
            verbosity=0,
        ).run()


def _port_is_free(port: int) -> bool:
    """Whether nothing listens on the port. Connections of a demo just stopped
    linger in TIME-WAIT for a minute; the server binds with SO_REUSEADDR
    (Twisted does on POSIX), so the check does too."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True
