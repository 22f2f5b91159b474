"""Browser check of live video, run INSIDE a loopback-only network namespace.

Chromium offers ICE candidates on every interface it sees; in a namespace that
has only ``lo`` it offers none of the machine's addresses and connects to the
server's 127.0.0.1 candidate. PostgreSQL and Redis are not reachable from in
here, so the server uses a SQLite file and the in-memory layer, seeded here.

Steps: start Daphne; the host's studio (Chromium's fake camera) goes live over
WHIP; one viewer page plays over WebRTC, a second one (beyond
SHOWFLOOR_WEBRTC_MAX_VIEWERS=1) over HLS; the host ends the show and the first
viewer plays the recording. Prints one JSON object with what it saw.

Usage (test_browser.py does this): ip netns exec NS python browser_netns.py WORKDIR
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.netns_support import (
    go_live,
    launch_chromium,
    script_main,
    seed_show,
    server_env,
    start_daphne,
    stop_daphne,
    studio_page,
)

PORT = 8765
ENDED = "document.querySelector('[data-indicator]').dataset.state === 'ended'"


def seed(env: dict[str, str]) -> dict[str, str]:
    """The show the scripts of this folder play (``seed_show``)."""
    return seed_show(env, slug="netns-show", title="Netns show")


VIDEO_PROGRESS = """async (selector) => {
  const video = document.querySelector(selector);
  const start = video.currentTime;
  await new Promise((r) => setTimeout(r, 2000));
  return {start, end: video.currentTime, width: video.videoWidth,
          mode: document.querySelector('[data-player]').dataset.mode || null};
}"""


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(
        workdir,
        SHOWFLOOR_WEBRTC_MAX_VIEWERS="1",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    seeded = seed(env)
    slug = seeded["slug"]
    base = f"http://127.0.0.1:{PORT}"
    server = start_daphne(env, PORT, workdir / "server.log")
    result: dict[str, Any] = {"slug": slug}
    studio = None
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                studio = studio_page(
                    browser.new_context().new_page(),
                    base,
                    slug,
                    session=seeded["session"],
                )
                result["camera_options"] = studio.eval_on_selector(
                    "[data-camera]", "s => s.options.length"
                )
                go_live(studio)
                studio.wait_for_function(
                    "document.querySelector('[data-elapsed]').textContent !== ''",
                    timeout=5000,
                )
                result["studio_live"] = True

                webrtc = browser.new_context().new_page()
                webrtc.goto(f"{base}/shows/{slug}/")
                webrtc.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'webrtc'",
                    timeout=20000,
                )
                result["webrtc"] = webrtc.evaluate(
                    VIDEO_PROGRESS, "[data-player] video"
                )
                result["studio_connection"] = studio.text_content("[data-connection]")
                if shots := os.environ.get("SHOWFLOOR_SCREENSHOTS"):
                    studio.screenshot(path=f"{shots}/studio.png", full_page=True)
                    webrtc.screenshot(path=f"{shots}/viewer.png")

                hls = browser.new_context().new_page()
                hls.add_init_script(
                    """window.__playback = [];
                    document.addEventListener('showfloor:playback',
                      (e) => window.__playback.push(e.detail));"""
                )
                hls.goto(f"{base}/shows/{slug}/")
                hls.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'hls'",
                    timeout=30000,
                )
                hls.wait_for_function(
                    "document.querySelector('[data-player] video').currentTime > 0",
                    timeout=20000,
                )
                result["hls"] = hls.evaluate(VIDEO_PROGRESS, "[data-player] video")
                result["hls_program_time"] = hls.evaluate(
                    """() => {
                    const times = window.__playback.filter((d) => d.mode === 'hls')
                      .map((d) => d.programTime).filter(Boolean);
                    return {count: times.length, last: times[times.length - 1] || null,
                            now: Date.now()};
                }"""
                )

                studio.click("[data-end]")
                studio.wait_for_function(
                    ENDED,
                    timeout=20000,
                )
                result["studio_ended"] = True
                webrtc.reload()
                webrtc.wait_for_function(
                    "document.querySelector('[data-player]').dataset.replay === '1'",
                    timeout=10000,
                )
                webrtc.wait_for_function(
                    "document.querySelector('[data-player] video').readyState >= 1",
                    timeout=10000,
                )
                result["replay"] = webrtc.evaluate(
                    """async () => {
                    const v = document.querySelector('[data-player] video');
                    v.muted = true;
                    await v.play();
                    await new Promise((r) => setTimeout(r, 1500));
                    return {duration: v.duration, currentTime: v.currentTime};
                }"""
                )
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
                if studio is not None:
                    result["stream_status"] = studio.evaluate(
                        f"fetch('/live/{slug}/stream').then((r) => r.json())"
                    )
                    result["studio_connection"] = studio.text_content(
                        "[data-connection]"
                    )
                    result["studio_error"] = studio.text_content("[data-error]")
            finally:
                browser.close()
    finally:
        stop_daphne(server)
    return result


if __name__ == "__main__":
    script_main(run)
