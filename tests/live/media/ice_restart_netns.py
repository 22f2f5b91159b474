"""A WebRTC viewer whose network path dies mid-show, run INSIDE a loopback-only
network namespace (see browser_netns.py).

Steps: start Daphne; the studio (Chromium's fake camera) goes live; a viewer
page plays over WebRTC and its frames advance; then every datagram to or from
the media node's port of that viewer's session is black-holed (an ``htb``
class of 8 bit/s that a ``u32`` filter sends the flow to: this kernel has no
netem and no tc actions, and no iptables), as when a phone leaves one network
for another and its old path is gone. The player sees ICE disconnected and
opens a new WHEP session (a new port on the node, outside the black hole)
without a reload; its frames advance again. Prints one JSON object with what
it saw.

Usage (test_browser.py does this): ip netns exec NS python ice_restart_netns.py WORKDIR
"""

from __future__ import annotations

import re
import subprocess
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

# Frames the viewer's <video> presented in one second, and its WHEP sessions.
FRAMES = """async () => {
  const video = document.querySelector('[data-player] video');
  let frames = 0;
  const tick = () => { frames += 1; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
  await new Promise((r) => setTimeout(r, 1000));
  const player = document.querySelector('[data-player]');
  return {frames, mode: player.dataset.mode || null,
          sessions: Number(player.dataset.whepSessions || 0)};
}"""
CANDIDATE_PORT = re.compile(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", re.IGNORECASE)


def black_hole(port: int) -> None:
    """Send every UDP datagram from or to ``port`` on ``lo`` to a class that
    passes 8 bit/s, behind a one-packet queue: the flow is cut, the rest of
    loopback (HTTP, the studio's stream, new sessions) is not."""
    commands = [
        "tc qdisc add dev lo root handle 1: htb default 10",
        "tc class add dev lo parent 1: classid 1:10 htb rate 10gbit",
        "tc class add dev lo parent 1: classid 1:99 htb rate 8bit ceil 8bit",
        "tc qdisc add dev lo parent 1:99 handle 99: pfifo limit 1",
        *(
            "tc filter add dev lo parent 1: protocol ip prio 1 u32 "
            f"match ip protocol 17 0xff match ip {side} {port} 0xffff flowid 1:99"
            for side in ("sport", "dport")
        ),
    ]
    for command in commands:
        subprocess.run(command.split(), check=True, capture_output=True)  # nosec B603 - fixed commands


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(workdir, ALLOWED_HOSTS="127.0.0.1,localhost")
    seeded = seed(env)
    slug = seeded["slug"]
    base = f"http://127.0.0.1:{PORT}"
    server = start_daphne(env, PORT, workdir / "server.log")
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
                answers: list[Any] = []
                deleted: list[str] = []
                navigations: list[str] = []
                viewer.on(
                    "response",
                    lambda r: (
                        answers.append(r)
                        if r.request.method == "POST" and r.url.endswith("/whep")
                        else None
                    ),
                )
                viewer.on(
                    "request",
                    lambda r: deleted.append(r.url) if r.method == "DELETE" else None,
                )
                viewer.goto(f"{base}/shows/{slug}/")
                viewer.on("framenavigated", lambda frame: navigations.append(frame.url))
                viewer.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'webrtc'",
                    timeout=20000,
                )
                result["before"] = viewer.evaluate(FRAMES)
                first = answers[0]
                node_port = int(CANDIDATE_PORT.findall(first.text())[0])
                result["first_session"] = first.headers.get("location")
                # Chromium offers RTX for H.264; the node's answer keeps it, so
                # what Chromium's NACKs ask for comes back on its own stream.
                result["rtx_negotiated"] = "rtx/90000" in first.text()

                black_hole(node_port)
                cut = time.monotonic()
                deadline = cut + 25
                while time.monotonic() < deadline:
                    after = viewer.evaluate(FRAMES)
                    if after["sessions"] >= 2 and after["frames"] >= 10:
                        result["resumed_after_s"] = round(time.monotonic() - cut, 1)
                        break
                result["after"] = after
                result["second_session"] = (
                    answers[-1].headers.get("location") if len(answers) > 1 else None
                )
                result["second_port_differs"] = len(answers) > 1 and (
                    int(CANDIDATE_PORT.findall(answers[-1].text())[0]) != node_port
                )
                # The old session is ended on the server, the new one serves.
                viewer.wait_for_timeout(500)
                result["deleted"] = [url.removeprefix(base) for url in deleted]
                result["stream"] = studio.evaluate(
                    f"fetch('/live/{slug}/stream').then((r) => r.json())"
                )
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
