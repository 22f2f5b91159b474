"""What the browser checks share, in pytest and inside a loopback-only network
namespace (where the scripts run as plain programs, without Django set up):
Chromium's flags, a server's environment there, and waiting for it to answer."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
# Inside the namespace loopback is the only interface: let WebRTC use it.
NETNS_CHROMIUM_ARGS = [*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection"]
# The studio's indicator once the show is live.
LIVE = "document.querySelector('[data-indicator]').dataset.state === 'live'"


def policy_bypassed(browser: Any) -> Any:
    """``browser`` whose new contexts bypass the pages' Content-Security-Policy
    unless a test asks otherwise: tests drive pages with Playwright's string
    evaluations (``wait_for_function``) and injected scripts (axe), which the
    strict policy rightly refuses. ``tests/frontend/test_csp.py`` checks the
    pages with the policy in force (``bypass_csp=False``)."""
    original = browser.new_context

    def new_context(**options: Any) -> Any:
        options.setdefault("bypass_csp", True)
        return original(**options)

    browser.new_context = new_context
    return browser


def server_env(workdir: Path, **extra: str) -> dict[str, str]:
    """A Showfloor server's environment inside the namespace: PostgreSQL and
    Redis are outside it, so SQLite in ``workdir`` and the in-memory layer;
    media gathers and announces 127.0.0.1 only, with no ICE servers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DATABASE_URL", "REDIS_URL", "PYTEST", "DJANGO_SETTINGS", "SHOWFLOOR_")
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "SHOWFLOOR_HLS_DIR": str(workdir / "hls"),
            "SHOWFLOOR_RECORDINGS_DIR": str(workdir / "recordings"),
            "SHOWFLOOR_MEDIA_ADDRESSES": "127.0.0.1",
            "SHOWFLOOR_ICE_SERVERS": "[]",
            "SHOWFLOOR_VIDEO_MAX_WIDTH": "640",
            "SHOWFLOOR_VIDEO_MAX_HEIGHT": "480",
            "SHOWFLOOR_VIDEO_PRESET": "ultrafast",
            "STATIC_ROOT": str(workdir / "static"),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def wait_for_server(
    url: str, *, timeout: float = 30, server: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once ``url`` answers; fail early if ``server`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def run_python(
    code: str, env: dict[str, str], *, timeout: float = 120
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with ``env`` (Django set up by the
    code itself) and return the JSON object its last line prints."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _migrated_template() -> Path:
    """Where this process's scripts keep an empty migrated SQLite database:
    the first ``seed_show`` migrates and leaves a copy there, the next ones
    start from it (migrating SQLite takes ~10 s of CPU). Removed at exit."""
    path = Path(tempfile.gettempdir()) / f"showfloor-netns-{os.getpid()}.sqlite3"
    if path.name not in _TEMPLATES:
        _TEMPLATES.add(path.name)
        atexit.register(path.unlink, missing_ok=True)
    return path


_TEMPLATES: set[str] = set()


def run_in_namespace(
    namespace: str, script: Path, workdir: Path, *, timeout: float = 280
) -> dict[str, Any]:
    """Run a ``*_netns.py`` script inside ``namespace`` (it imports
    ``tests.netns_support`` from this checkout) and return the JSON object its
    last line prints; fail with its stderr when it printed nothing."""
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(ROOT),
        "NETNS_DB_TEMPLATE": str(_migrated_template()),
    }
    done = subprocess.run(  # nosec B603 B607 - fixed arguments, our own script
        ["ip", "netns", "exec", namespace, sys.executable, str(script), str(workdir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    return dict(json.loads(lines[-1]))


def start_daphne(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Daphne serving the whole application on 127.0.0.1:``port`` (stderr
    appended to ``log``), once ``/healthz`` answers."""
    server = subprocess.Popen(  # nosec B603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
    )
    try:
        wait_for_server(f"http://127.0.0.1:{port}/healthz", timeout=90, server=server)
    except BaseException:
        stop_daphne(server)
        raise
    return server


def stop_daphne(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def script_main(run: Callable[[Path], dict[str, Any]]) -> None:
    """A ``*_netns.py`` script's entry: ``run(WORKDIR)`` (``sys.argv[1]``),
    printing what it returns as one JSON line, or the error and the end of
    the server's log."""
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        output = run(workdir)
    except Exception as exc:
        log = workdir / "server.log"
        output = {
            "error": f"{type(exc).__name__}: {exc}",
            "server_log": log.read_text()[-3000:] if log.exists() else "",
        }
    print(json.dumps(output))


def studio_page(
    page: Any,
    base: str,
    slug: str,
    *,
    session: str = "",
    log_in: Callable[[Any, str], None] | None = None,
    init_script: str = "",
) -> Any:
    """``page`` on the studio of show ``slug`` at ``base``, once Chromium's
    fake camera shows in its preview. The host comes in with ``session`` (a
    session cookie, ``seed_show``'s) or through ``log_in(page, path)``, which
    must end on the studio's ``path``. ``init_script`` runs before the
    studio's own scripts; dialogs are accepted (ending a show asks first)."""
    path = f"/shows/{slug}/studio/"
    if init_script:
        page.add_init_script(init_script)
    page.on("dialog", lambda dialog: dialog.accept())
    if log_in is not None:
        log_in(page, path)
    else:
        page.context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        page.goto(f"{base}{path}")
    page.wait_for_function(
        "document.querySelector('[data-preview]').videoWidth > 0", timeout=15000
    )
    return page


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """Debian's Chromium for the namespace (WebRTC over loopback), its pages'
    policy bypassed (``policy_bypassed``); ``extra_args`` are added to its
    flags (a file for the fake camera, say)."""
    return policy_bypassed(
        playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*NETNS_CHROMIUM_ARGS, *extra_args],
        )
    )


def go_live(studio: Any, *, timeout_ms: int = 20000) -> None:
    """Press the studio's Go live and wait until its indicator says live."""
    studio.click("[data-go-live]")
    studio.wait_for_function(LIVE, timeout=timeout_ms)


def seed_show(env: dict[str, str], *, slug: str, title: str) -> dict[str, str]:
    """Migrate the server's SQLite database and create a brand, a host and a
    show scheduled in five minutes; the show's slug and a logged-in session
    cookie for the host. Under ``run_in_namespace`` the database starts as a
    copy of the migrated one an earlier seed of the same test run left
    (``NETNS_DB_TEMPLATE``), so ``migrate`` finds nothing to do."""
    template = os.environ.get("NETNS_DB_TEMPLATE", "")
    database = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
    if template and Path(template).exists() and not database.exists():
        shutil.copyfile(template, database)
    code = f"""
import json
import os
import shutil
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from shows import services
call_command("migrate", verbosity=0)
template = {template!r}
if template and not os.path.exists(template):
    shutil.copyfile({str(database)!r}, template + ".part")
    os.replace(template + ".part", template)
brand = services.brand_create(name="Acme Audio", slug="acme")
host = services.user_signup(
    email="host@example.test", display_name="Hana", password="a-long-password-1"
)
services.membership_set(brand=brand, user=host, role="host")
show = services.show_create(
    brand=brand, slug={slug!r}, title={title!r},
    scheduled_at=timezone.now() + timedelta(minutes=5),
)
client = Client()
client.force_login(host)
print(json.dumps({{"slug": show.slug, "session": client.cookies["sessionid"].value}}))
"""
    return {key: str(value) for key, value in run_python(code, env).items()}
