"""Browser check of a rehearsal, run INSIDE a loopback-only network namespace
(see tests/live/media/browser_netns.py for why, and for the server set-up).

Steps: the host's studio (Chromium's fake camera) starts a rehearsal; a
signed-out viewer's show page stays scheduled, plays nothing, and its browser
is refused WHEP and HLS; the staff preview page plays the stream; the host
clicks Go live; the viewer's page goes live and plays over WebRTC, while the
studio's one RTCPeerConnection was never closed or replaced and kept sending
frames. Prints one JSON object with what it saw.

Usage (test_rehearsal_browser.py does this):
ip netns exec NS python rehearsal_netns.py WORKDIR
"""

from __future__ import annotations

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

PORT = 8767
SLUG = "rehearsal-show"


# Every RTCPeerConnection the studio makes, and every close() of one.
PEERS_WATCHED = """
window.__peers = [];
window.__closes = 0;
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Native {
  constructor(...args) { super(...args); window.__peers.push(this); }
  close() { window.__closes += 1; return super.close(); }
};
"""

PUBLISHER = """async () => {
  const pc = window.__peers[window.__peers.length - 1];
  let sent = 0;
  if (pc) {
    for (const report of (await pc.getStats()).values()) {
      if (report.type === "outbound-rtp" && report.kind === "video") {
        sent += report.framesSent || 0;
      }
    }
  }
  return {peers: window.__peers.length, closes: window.__closes,
          state: pc ? pc.connectionState : null, framesSent: sent};
}"""

VIDEO_PROGRESS = """async () => {
  const video = document.querySelector('[data-player] video');
  const start = video.currentTime;
  await new Promise((r) => setTimeout(r, 2000));
  return {start, end: video.currentTime, width: video.videoWidth,
          mode: document.querySelector('[data-player]').dataset.mode || null};
}"""

# What a viewer's page shows and what its browser may fetch (same origin, the
# viewer's own cookies): the WHEP offer is a real one from this browser.
VIEWER_SEES = """async (slug) => {
  const player = document.querySelector('[data-player]');
  const video = player.querySelector('video');
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  await pc.setLocalDescription(await pc.createOffer());
  const whep = await fetch(`/live/${slug}/whep`, {
    method: 'POST', headers: {'Content-Type': 'application/sdp'},
    body: pc.localDescription.sdp,
  });
  pc.close();
  const hls = await fetch(`/live/${slug}/hls/index.m3u8`);
  return {
    mode: player.dataset.mode || 'none',
    state: player.querySelector('[data-state]').textContent.trim(),
    badgeHidden: player.querySelector('[data-badge]').hidden,
    width: video.videoWidth,
    currentTime: video.currentTime,
    whep: whep.status,
    hls: hls.status,
    body: document.body.innerText,
  };
}"""


def _recordings(workdir: Path) -> list[str]:
    folder = workdir / "recordings"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(workdir, ALLOWED_HOSTS="127.0.0.1,localhost")
    seeded = seed_show(env, slug=SLUG, title="Launch show")
    base = f"http://127.0.0.1:{PORT}"
    server = start_daphne(env, PORT, workdir / "server.log")
    result: dict[str, Any] = {}
    studio = None
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                studio = studio_page(
                    browser.new_context().new_page(),
                    base,
                    SLUG,
                    session=seeded["session"],
                    init_script=PEERS_WATCHED,
                )
                staff_ctx = studio.context
                studio.click("[data-rehearse]")
                studio.wait_for_function(
                    "document.querySelector('[data-indicator]').dataset.state"
                    " === 'rehearsal'",
                    timeout=20000,
                )
                studio.wait_for_function(
                    "window.__peers.length === 1"
                    " && window.__peers[0].connectionState === 'connected'",
                    timeout=20000,
                )
                result["studio_rehearsal_text"] = studio.text_content(
                    "[data-indicator-text]"
                )
                result["studio_end_label"] = studio.text_content("[data-end]")
                result["rehearsal_publisher"] = studio.evaluate(PUBLISHER)

                viewer = browser.new_context().new_page()
                viewer.goto(f"{base}/shows/{SLUG}/")
                viewer.wait_for_function(
                    "document.querySelector('[data-player]') !== null"
                )
                result["viewer_in_rehearsal"] = viewer.evaluate(VIEWER_SEES, SLUG)

                preview = staff_ctx.new_page()
                preview.goto(f"{base}/live/{SLUG}/preview")
                preview.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'webrtc'",
                    timeout=20000,
                )
                result["preview"] = preview.evaluate(VIDEO_PROGRESS)
                result["recordings_in_rehearsal"] = _recordings(workdir)
                # The viewer's page has seen the whole rehearsal go by.
                result["viewer_after_preview"] = viewer.evaluate(VIEWER_SEES, SLUG)

                before = studio.evaluate(PUBLISHER)
                go_live(studio)
                viewer.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'webrtc'",
                    timeout=20000,
                )
                result["viewer_live"] = viewer.evaluate(VIDEO_PROGRESS)
                result["publisher_before_go_live"] = before
                result["publisher_after_go_live"] = studio.evaluate(PUBLISHER)
                result["studio_live_text"] = studio.text_content(
                    "[data-indicator-text]"
                )
                result["recordings_live"] = _recordings(workdir)
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
                if studio is not None:
                    result["stream_status"] = studio.evaluate(
                        f"fetch('/live/{SLUG}/stream').then((r) => r.json())"
                    )
                    result["studio_error"] = studio.text_content("[data-error]")
            finally:
                browser.close()
    finally:
        stop_daphne(server)
    return result


if __name__ == "__main__":
    script_main(run)
