"""Retake docs/screenshot-show.png: the demo show page, live, with chat and a pin.

    python docs/screenshot.py

Runs ``manage.py demo`` on a scratch SQLite database and a free loopback port,
puts the demo show live with a pinned product and a few chat lines (through the
services), photographs the viewer page with Debian's Chromium and stops the demo.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshot-show.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

STAGE = """
from frontend import demo
from shows import services
from shows.services import room
data = demo.seed_demo()
show = services.show_start(show=data.show)
lineup = [item.product for item in show.lineup.all()]
room.product_pin(show=show, actor=data.host, product_id=lineup[0].pk)
for user, text in [
    (data.viewer, "Does the Sand colour come with the same case?"),
    (data.host, "Yes! Same hard case, in a lighter grey."),
    (data.moderator, "Launch price holds until the end of the show."),
    (data.viewer, "Ordered the black one, can't wait"),
]:
    room.chat_send(show=show, user=user, text=text)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{scratch}/demo.sqlite3",
            "REDIS_URL": "",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "demo", "--no-serve"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "shell", "-c", STAGE], cwd=ROOT, env=env, check=True)
        demo = subprocess.Popen(
            [*manage, "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-quic"],
                )
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"http://127.0.0.1:{port}/shows/nordlicht-launch-night/")
                page.wait_for_timeout(3000)
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=20)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
