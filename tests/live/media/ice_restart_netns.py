"""A WebRTC viewer whose network path dies mid-show, run INSIDE a loopback-only
network namespace (see browser_netns.py).

Steps: start Daphne; the studio (Chromium's fake camera) goes live; a viewer
page plays over WebRTC and its frames advance; then every datagram to or from
the media node's port of that viewer's session is black-holed (an ``htb``
class of 8 bit/s that a ``u32`` filter sends the flow to: this kernel has no
netem and no tc actions, and no iptables), as when a phone leaves one network
for another and its old path is gone. The player sees nothing arrive and
opens a new WHEP session (a new port on the node, outside the black hole)
without a reload; its frames advance again. Before that, two things that
must not replace the session: the same flow black-holed for half a second
only (a blip), and the studio sending nothing for 4 s with its connection up
(no RTP reaches the viewer; the node's RTCP does). Prints one JSON object
with what it saw, and when (``*_ms``, ``timeline``: milliseconds from the
cut).

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
# Stamped with Date.now() on the viewer's page: each peer connection's
# creation, ICE states and video track's unmute (n: the page's nth connection),
# each POST and DELETE, and every frame its <video> presents with the id of the
# stream it came from (a new session brings a new stream).
TIMELINE = """(() => {
  const log = (window.timeline = []);
  const frames = (window.presented = []);
  const pcs = (window.pcs = []);
  const Native = window.RTCPeerConnection;
  let count = 0;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const n = (count += 1);
      log.push([Date.now(), n, "created"]);
      pcs.push(this);
      this.addEventListener("iceconnectionstatechange", () =>
        log.push([Date.now(), n, "ice " + this.iceConnectionState]));
      this.addEventListener("track", (event) => {
        if (event.track.kind !== "video") return;
        const unmuted = () => log.push([Date.now(), n, "unmute"]);
        event.track.addEventListener("unmute", unmuted);
      });
    }
  };
  const nativeFetch = window.fetch;
  window.fetch = (url, options) => {
    const method = (options && options.method) || "GET";
    if (method !== "GET") log.push([Date.now(), count, method + " " + url]);
    return nativeFetch(url, options);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("[data-player] video");
    const tick = () => {
      frames.push([Date.now(), video.srcObject ? video.srcObject.id : ""]);
      video.requestVideoFrameCallback(tick);
    };
    if (video) video.requestVideoFrameCallback(tick);
  });
})();"""
# RTP packets and bytes (RTP, RTCP) the viewer's current session received.
RECEIVED = """async () => {
  let packets = 0, bytes = 0;
  (await window.pcs[window.pcs.length - 1].getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") packets += s.packetsReceived;
    if (s.type === "transport") bytes += s.bytesReceived;
  });
  return {packets, bytes};
}"""
# The studio stops sending (and starts again): its connection stays up.
PUBLISHER_SENDS = """(on) => window.pcs.forEach((pc) => pc.getSenders().forEach((s) => {
  if (!on) s.held = s.track;
  s.replaceTrack(on ? s.held : null);
}))"""
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


def reopen() -> None:
    """Undo ``black_hole``: loopback passes everything again."""
    subprocess.run(  # nosec B603 B607 - a fixed command
        ["tc", "qdisc", "del", "dev", "lo", "root"], check=True, capture_output=True
    )


def since(cut_ms: float, timeline: list[list[Any]], n: int, what: str) -> int | None:
    """Milliseconds from the cut to connection ``n``'s first ``what`` after it."""
    return next(
        (
            round(t - cut_ms)
            for t, m, event in timeline
            if m == n and event.startswith(what) and t >= cut_ms
        ),
        None,
    )


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
                    init_script=TIMELINE,
                )
                go_live(studio)

                viewer = browser.new_context().new_page()
                viewer.add_init_script(TIMELINE)
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

                # A blip: half a second without a packet, then the path is back.
                black_hole(node_port)
                time.sleep(0.5)
                reopen()
                time.sleep(2.5)
                result["after_blip"] = viewer.evaluate(FRAMES)

                # The publisher sends nothing for 4 s, its connection up: no
                # RTP reaches the viewer, the node's RTCP still does.
                studio.evaluate(PUBLISHER_SENDS, False)
                time.sleep(1)
                start = viewer.evaluate(RECEIVED)
                time.sleep(3)
                end = viewer.evaluate(RECEIVED)
                studio.evaluate(PUBLISHER_SENDS, True)
                result["paused"] = {
                    "packets": end["packets"] - start["packets"],
                    "bytes": end["bytes"] - start["bytes"],
                }
                viewer.wait_for_function(
                    "window.presented.length > 0"
                    " && Date.now() - window.presented.at(-1)[0] < 200",
                    timeout=15000,
                )
                result["after_pause"] = viewer.evaluate(FRAMES)

                # The path dies for good.
                cut = time.time() * 1000
                black_hole(node_port)
                old_stream = viewer.evaluate(
                    "document.querySelector('[data-player] video').srcObject.id"
                )
                # Frames from another stream than the one cut: the new session's.
                viewer.wait_for_function(
                    "([old, cut]) => window.presented.some("
                    "([t, id]) => id !== old && t > cut)",
                    arg=[old_stream, cut],
                    timeout=25000,
                )
                # ... and go on advancing (a loaded machine may take a moment).
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    result["after"] = viewer.evaluate(FRAMES)
                    if result["after"]["frames"] >= 10:
                        break
                timeline = viewer.evaluate("window.timeline")
                presented = viewer.evaluate("window.presented")
                result["timeline"] = [[round(t - cut), *rest] for t, *rest in timeline]
                result["ice_disconnected_ms"] = since(
                    cut, timeline, 1, "ice disconnected"
                )
                result["second_created_ms"] = since(cut, timeline, 2, "created")
                result["second_post_ms"] = since(cut, timeline, 2, "POST")
                result["second_unmute_ms"] = since(cut, timeline, 2, "unmute")
                result["last_old_frame_ms"] = max(
                    round(t - cut) for t, stream in presented if stream == old_stream
                )
                result["first_new_frame_ms"] = min(
                    round(t - cut)
                    for t, stream in presented
                    if stream != old_stream and t > cut
                )
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
