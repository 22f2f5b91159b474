"""A server restart in the middle of a show, as an HLS viewer meets it; run
INSIDE a loopback-only network namespace (see browser_netns.py).

Steps: start Daphne; the studio (Chromium's fake camera) goes live; a viewer
beyond the WebRTC limit (0 here) plays HLS and its video advances; its
playlists are closed (#EXT-X-ENDLIST, as a stopping server writes them) until
its video has played to that end, and it must play on again; Daphne is
stopped and started again on the same port while both pages stay open; the
studio publishes again by itself; the viewer's video advances again without
a reload. Prints one JSON object with what it saw.

Usage (test_browser.py does this): ip netns exec NS python restart_netns.py WORKDIR
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.live.media.browser_netns import PORT, seed
from tests.netns_support import (
    go_live,
    launch_chromium,
    script_main,
    server_env,
    start_daphne,
    stop_daphne,
    studio_page,
)

# The video's position now and a few seconds later, and how the page plays.
ADVANCES = """async () => {
  const video = document.querySelector('[data-player] video');
  const start = video.currentTime;
  await new Promise((r) => setTimeout(r, 3000));
  return {start, end: video.currentTime,
          mode: document.querySelector('[data-player]').dataset.mode || null};
}"""


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(
        workdir,
        SHOWFLOOR_WEBRTC_MAX_VIEWERS="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    seeded = seed(env)
    slug = seeded["slug"]
    base = f"http://127.0.0.1:{PORT}"
    log = workdir / "server.log"
    server = start_daphne(env, PORT, log)
    result: dict[str, Any] = {"slug": slug}
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
                go_live(studio)

                viewer = browser.new_context().new_page()
                viewer.goto(f"{base}/shows/{slug}/")
                viewer.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'hls'",
                    timeout=30000,
                )
                viewer.wait_for_function(
                    "document.querySelector('[data-player] video').currentTime > 0",
                    timeout=20000,
                )
                result["before"] = viewer.evaluate(ADVANCES)
                navigations: list[str] = []
                viewer.on("framenavigated", lambda frame: navigations.append(frame.url))

                # A stopping server closes its playlists, and a viewer that
                # reads one then plays to that end and stops, its video paused
                # by itself (CI saw the player stand still there for good).
                # Close them for sure until the video has ended, then no more.
                closing = {"on": True}

                def close_playlist(route: Any) -> None:
                    try:
                        response = route.fetch()
                        body = response.text()
                    except Exception:
                        # Never leave the page's request hanging.
                        route.continue_()
                        return
                    if closing["on"] and "#EXTINF" in body:
                        body = body.replace("#EXT-X-ENDLIST\n", "")
                        body += "#EXT-X-ENDLIST\n"
                    route.fulfill(response=response, body=body)

                viewer.evaluate(
                    """() => { window.endedCount = 0;
                      document.querySelector('[data-player] video')
                        .addEventListener('ended', () => { window.endedCount += 1; });
                    }"""
                )
                playlists = re.compile(r"index\.m3u8(\?.*)?$")
                viewer.route(playlists, close_playlist)
                viewer.wait_for_function("window.endedCount > 0", timeout=30000)
                result["ended"] = True
                # While its playlists stay closed the player waits: replaying
                # their last seconds would only end again.
                viewer.wait_for_timeout(6000)
                result["mode_while_closed"] = viewer.evaluate(
                    "document.querySelector('[data-player]').dataset.mode"
                )
                closing["on"] = False
                viewer.unroute(playlists, close_playlist)
                deadline = time.monotonic() + 30
                while True:
                    result["after_end"] = viewer.evaluate(ADVANCES)
                    moving = result["after_end"]["end"] - result["after_end"]["start"]
                    if moving > 1.0 or time.monotonic() > deadline:
                        break

                stop_daphne(server)
                stopped = time.monotonic()
                server = start_daphne(env, PORT, log)
                result["down_seconds"] = round(time.monotonic() - stopped, 1)

                # What the viewer had buffered is played out by now: a player
                # left on the dead stream stands still from here on. The
                # studio publishes again by itself; the viewer's video must
                # move on again, without a reload.
                viewer.wait_for_timeout(12000)
                deadline = time.monotonic() + 60
                while True:
                    result["after"] = viewer.evaluate(ADVANCES)
                    after = result["after"]
                    moving = after["end"] - after["start"] > 1.0
                    if moving and after["mode"] == "hls":
                        break
                    if time.monotonic() > deadline:
                        break
                result["reloaded"] = bool(navigations)
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                browser.close()
    finally:
        stop_daphne(server)
    return result


if __name__ == "__main__":
    script_main(run)
