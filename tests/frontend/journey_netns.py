"""The whole journey of a show in Chromium, run INSIDE a loopback-only network
namespace (Chromium offers WebRTC candidates on every interface it sees; here
it sees only ``lo``).

The server is the README's demo, ``manage.py demo``: SQLite, the in-memory
channel layer, localstripe and the sweeper, seeded with the demo brand, its
staff and a scheduled show. Then, as its users live it:

1. the host logs in, opens the studio and goes live with the fake camera;
2. two viewers open the show page and see the video advance;
3. viewer A signs up in one step and chats; B sees the message;
4. viewer B logs in, asks a question and votes for it;
5. the host answers it and pins a product; both viewers see the answer and
   the pin;
6. A buys the pinned product through the quick checkout; both viewers see the
   stock drop;
7. the host sees the order and ends the show; the replay plays.

Screenshots (a phone at 390 by 844 and desktop viewer pages, the studio) go to
WORKDIR/screenshots. Prints one JSON object: what each step saw, the step
timings and the whole duration, or ``error`` with the step that failed.

Usage (test_journey.py does this): ip netns exec NS python journey_netns.py WORKDIR
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.netns_support import (
    ROOT,
    go_live,
    launch_chromium,
    run_python,
    server_env,
    studio_page,
    wait_for_server,
)

PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SECONDS = 1000  # Playwright timeouts are in milliseconds

VIDEO_ADVANCES = """async () => {
  const video = document.querySelector('[data-player] video');
  const start = video.currentTime;
  await new Promise((r) => setTimeout(r, 1500));
  return {mode: document.querySelector('[data-player]').dataset.mode || null,
          start, end: video.currentTime, width: video.videoWidth,
          height: video.videoHeight};
}"""


class Journey:
    """The steps, sharing one browser; ``step`` records timings and the step
    name, so a failure says where the journey broke."""

    def __init__(self, browser: Any, workdir: Path) -> None:
        self.browser = browser
        self.shots = workdir / "screenshots"
        self.shots.mkdir(parents=True, exist_ok=True)
        self.result: dict[str, Any] = {"steps": {}}
        self.current = ""
        self.started = time.monotonic()
        self.pages: dict[str, Any] = {}

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.current = name
        self.result["steps"][name] = round(now - self.started, 2)

    def page(self, name: str, viewport: dict[str, int]) -> Any:
        context = self.browser.new_context(viewport=viewport, locale="en-GB")
        page = context.new_page()
        page.set_default_timeout(15 * SECONDS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        self.result.setdefault("page_errors", {})[name] = errors
        self.pages[name] = page
        return page

    def login(self, page: Any, email: str, password: str, next_url: str) -> None:
        page.goto(f"{BASE}/login/?next={next_url}")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{BASE}{next_url}")

    def run(self, data: dict[str, Any]) -> dict[str, Any]:
        slug = data["slug"]
        show_url = f"/shows/{slug}/"
        r = self.result

        self.step("host_goes_live")
        studio = studio_page(
            self.page("studio", {"width": 1280, "height": 1000}),
            BASE,
            slug,
            log_in=lambda page, path: self.login(
                page, data["host_email"], data["password"], path
            ),
        )
        go_live(studio, timeout_ms=30 * SECONDS)
        r["studio_live"] = True

        self.step("viewers_watch")
        phone = self.page("viewer_phone", PHONE)
        desktop = self.page("viewer_desktop", DESKTOP)
        for viewer in (phone, desktop):
            viewer.goto(f"{BASE}{show_url}")
        for name, viewer in (("phone", phone), ("desktop", desktop)):
            viewer.wait_for_function(
                "document.querySelector('[data-player]').dataset.mode === 'webrtc'"
                " && document.querySelector('[data-player] video').currentTime > 0",
                timeout=30 * SECONDS,
            )
            r[f"video_{name}"] = viewer.evaluate(VIDEO_ADVANCES)
        r["badge"] = phone.inner_text("[data-show-status]").strip().lower()

        self.step("viewer_signs_up_and_chats")
        phone.click(".room-join a[href*='signup']")
        phone.get_by_label("Email").fill("ada@example.test")
        phone.get_by_label("Display name").fill("Ada Lovelace")
        phone.get_by_label("Password").fill("a-long-passphrase-42")
        phone.get_by_role("button", name="Create account").click()
        phone.wait_for_url(f"{BASE}{show_url}")
        phone.wait_for_selector("#room-conn[data-state='live']")
        phone.fill("#room-chat-input", "Does the mic work with a phone?")
        phone.press("#room-chat-input", "Enter")
        desktop.wait_for_function(
            "document.getElementById('room-chat').textContent"
            ".includes('Does the mic work with a phone?')"
        )
        r["chat_seen_by_other"] = desktop.inner_text("#room-chat .room-msg:last-child")
        r["chat_author"] = phone.inner_text(
            "#room-chat .room-msg:last-child .room-author"
        )

        self.step("viewer_asks_and_votes")
        self.login(desktop, data["viewer_email"], data["password"], show_url)
        desktop.wait_for_selector("#room-conn[data-state='live']")
        desktop.click("#room-tab-qa")
        desktop.fill("#room-ask-input", "How long does the battery last?")
        desktop.press("#room-ask-input", "Enter")
        question = desktop.locator(
            ".room-q", has_text="How long does the battery last?"
        )
        question.wait_for()
        question.locator(".room-vote").click()
        desktop.wait_for_function(
            "[...document.querySelectorAll('.room-q')].some((q) =>"
            " q.textContent.includes('How long does the battery last?')"
            " && q.querySelector('.room-vote').textContent.includes('1'))"
        )
        r["vote_pressed"] = question.locator(".room-vote").get_attribute("aria-pressed")

        self.step("host_answers_and_pins")
        asked = studio.locator(".room-q", has_text="How long does the battery last?")
        asked.wait_for()
        r["studio_votes"] = asked.locator(".room-badge").inner_text()
        asked.locator("input").fill("About 40 hours with noise cancelling on.")
        asked.get_by_role("button", name="Answer", exact=True).click()
        desktop.locator(".room-q-answer", has_text="About 40 hours").wait_for()
        studio.locator(".studio-lineup-item", has_text="Polar USB microphone").locator(
            "button.studio-pin"
        ).click()
        for viewer in (phone, desktop):
            viewer.locator(".room-pin", has_text="Polar USB microphone").wait_for()
        r["pin_stock_before"] = desktop.inner_text(".room-pin .room-stock")
        phone.click("#room-tab-qa")
        phone.locator(".room-q-answer", has_text="About 40 hours").wait_for()
        r["answer_seen_by_asker_and_other"] = True
        phone.click("#room-tab-chat")
        phone.screenshot(path=str(self.shots / "viewer-phone.png"))
        desktop.screenshot(path=str(self.shots / "viewer-desktop.png"))

        self.step("viewer_buys")
        phone.click(".room-pin .room-buy")
        phone.wait_for_selector("#buy-sheet[open]")
        r["sheet_product"] = phone.inner_text("#buy-product")
        # The demo brand ships: the first order asks where it goes.
        phone.fill("#buy-addr-name", "Vera Viewer")
        phone.fill("#buy-addr-line1", "Torstraße 1")
        phone.fill("#buy-addr-postal", "10119")
        phone.fill("#buy-addr-city", "Berlin")
        phone.select_option("#buy-addr-country", "DE")
        phone.wait_for_function(
            "document.getElementById('buy-breakdown').textContent.includes('19 %')"
        )
        r["sheet_breakdown"] = phone.inner_text("#buy-breakdown")
        phone.screenshot(path=str(self.shots / "checkout-phone.png"))
        phone.click("#buy-primary")  # reserve
        phone.wait_for_selector("#buy-sheet[data-order-id]")
        phone.click("#buy-primary")  # pay with the demo's test card
        phone.wait_for_selector(
            "#buy-sheet[data-order-status='paid']", timeout=30 * SECONDS
        )
        r["buy_status"] = phone.inner_text("#buy-status")
        for viewer in (phone, desktop):
            viewer.wait_for_function(
                "document.querySelector('.room-pin .room-stock')"
                ".textContent.includes('9 left')"
            )
        r["pin_stock_after"] = desktop.inner_text(".room-pin .room-stock")
        phone.keyboard.press("Escape")

        self.step("host_sees_order_and_ends")
        studio.wait_for_function(
            "document.getElementById('studio-paid').textContent.trim() === '1'"
        )
        r["studio_revenue"] = studio.inner_text("#studio-revenue")
        r["studio_order_row"] = studio.inner_text("#studio-orders-rows tr")
        studio.evaluate("window.scrollTo(0, 0)")
        studio.screenshot(path=str(self.shots / "studio.png"))
        studio.click("[data-end]")
        studio.wait_for_function(
            "document.querySelector('[data-indicator]').dataset.state === 'ended'",
            timeout=30 * SECONDS,
        )
        desktop.locator("[data-show-status].badge-ended").wait_for()

        self.step("replay_plays")
        desktop.reload()
        desktop.wait_for_function(
            "document.querySelector('[data-player]').dataset.replay === '1'"
            " && document.querySelector('[data-player] video').readyState >= 1"
        )
        r["replay"] = desktop.evaluate(
            """async () => {
            const v = document.querySelector('[data-player] video');
            v.muted = true;
            await v.play();
            await new Promise((r) => setTimeout(r, 1500));
            return {duration: v.duration, currentTime: v.currentTime};
        }"""
        )
        self.step("done")
        r["duration_s"] = round(time.monotonic() - self.started, 1)
        return r


def demo_logins(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, django; django.setup()\n"
        "from frontend import demo\n"
        "print(json.dumps({'slug': demo.SHOW_SLUG, 'password': demo.DEMO_PASSWORD,"
        " 'host_email': demo.HOST_EMAIL, 'viewer_email': demo.VIEWER_EMAIL}))"
    )
    return run_python(code, env, timeout=60)


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(workdir, PYTHONUNBUFFERED="1")
    data = demo_logins(env)
    log = (workdir / "demo.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(PORT)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    journey: Journey | None = None
    try:
        wait_for_server(f"{BASE}/healthz", timeout=90, server=server)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            journey = Journey(browser, workdir)
            try:
                return journey.run(data)
            except Exception as exc:
                journey.result["error"] = f"{journey.current}: {type(exc).__name__}"
                journey.result["detail"] = str(exc)[:2000]
                for name, page in journey.pages.items():
                    page.screenshot(path=str(journey.shots / f"failed-{name}.png"))
                return journey.result
            finally:
                browser.close()
    finally:
        # The demo stops on Ctrl-C (SIGINT), closing localstripe too.
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


if __name__ == "__main__":
    workdir = Path(sys.argv[1])
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        output = run(workdir)
    except Exception as exc:
        output = {"error": f"setup: {type(exc).__name__}: {exc}"}
    log_file = workdir / "demo.log"
    if "error" in output and log_file.exists():
        output["demo_log"] = log_file.read_text()[-3000:]
    print(json.dumps(output))
