"""Browser check of TURN, run INSIDE a loopback-only network namespace.

coturn (Debian's ``turnserver``) listens on 127.0.0.1 with the REST API scheme
(``use-auth-secret``); the server hands the pages credentials made from the
same secret (``SHOWFLOOR_TURN_URLS``/``SHOWFLOOR_TURN_SECRET``) and
``iceTransportPolicy: "relay"`` (``SHOWFLOOR_ICE_TRANSPORT_POLICY``). The
studio publishes Chromium's fake camera and a viewer page plays it over
WebRTC: both may only gather relay candidates, so every packet goes through
coturn. Loopback peers are allowed here only (``deploy/turnserver.conf`` denies
them). Prints one JSON object with what the viewer's peer connection saw.

Usage (test_turn_browser.py does this): ip netns exec NS python turn_netns.py WORKDIR
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
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

PORT = 8766
TURN_PORT = 3478
SECRET = "netns-turn-secret"

# Every peer connection a page makes, for getStats().
RECORD_PEER_CONNECTIONS = """
window.__pcs = [];
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const pc = new Original(...args);
  window.__pcs.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = Original.prototype;
"""

RELAY_STATS = """async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const stats = await pc.getStats();
  const local = [];
  let pair = null, transport = null, decoded = 0;
  stats.forEach((s) => {
    if (s.type === 'local-candidate') local.push(s.candidateType);
    if (s.type === 'transport') transport = s;
    if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = s.framesDecoded || 0;
  });
  if (transport && transport.selectedCandidatePairId) {
    pair = stats.get(transport.selectedCandidatePairId);
  }
  const selected = pair ? stats.get(pair.localCandidateId) : null;
  return {
    policy: pc.getConfiguration().iceTransportPolicy,
    turn: pc.getConfiguration().iceServers.filter(
      (s) => [].concat(s.urls).some((u) => u.startsWith('turn:'))).length,
    local_types: local,
    selected_type: selected ? selected.candidateType : null,
    selected_relay_protocol: selected ? selected.relayProtocol || null : null,
    frames_decoded: decoded,
    state: pc.connectionState,
  };
}"""


def connected_stats(page: Any, timeout: float = 20) -> dict[str, Any]:
    """The page's last peer connection's stats once it is connected (or
    whatever it is at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        stats: dict[str, Any] = page.evaluate(RELAY_STATS)
        if stats["state"] == "connected" or time.monotonic() > deadline:
            return stats
        time.sleep(0.25)


def start_coturn(workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    process = subprocess.Popen(  # nosec B603 - fixed arguments
        [
            binary,
            "--listening-ip",
            "127.0.0.1",
            "--relay-ip",
            "127.0.0.1",
            "--listening-port",
            str(TURN_PORT),
            "--use-auth-secret",
            "--static-auth-secret",
            SECRET,
            "--realm",
            "showfloor",
            "--fingerprint",
            "--allow-loopback-peers",
            "--min-port",
            "49160",
            "--max-port",
            "49260",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--pidfile",
            str(workdir / "turnserver.pid"),
            "--log-file",
            "stdout",
            "--simple-log",
        ],
        stdout=(workdir / "turn.log").open("a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited with {process.returncode}")
        # A STUN binding request on the UDP port answers once it listens.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x01" * 12
            sock.sendto(request, ("127.0.0.1", TURN_PORT))
            try:
                if sock.recv(512)[:2] == b"\x01\x01":
                    return process
            except OSError:
                time.sleep(0.2)
    process.kill()
    raise TimeoutError("turnserver did not answer")


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    env = server_env(
        workdir,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SHOWFLOOR_TURN_URLS=f"turn:127.0.0.1:{TURN_PORT}?transport=udp",
        SHOWFLOOR_TURN_SECRET=SECRET,
        SHOWFLOOR_ICE_TRANSPORT_POLICY="relay",
    )
    seeded = seed_show(env, slug="turn-show", title="TURN show")
    slug = seeded["slug"]
    base = f"http://127.0.0.1:{PORT}"
    turn = start_coturn(workdir)
    result: dict[str, Any] = {"slug": slug}
    try:
        server = start_daphne(env, PORT, workdir / "server.log")
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                try:
                    studio = studio_page(
                        browser.new_context().new_page(),
                        base,
                        slug,
                        session=seeded["session"],
                        init_script=RECORD_PEER_CONNECTIONS,
                    )
                    go_live(studio, timeout_ms=30000)
                    result["studio"] = connected_stats(studio)

                    viewer = browser.new_context().new_page()
                    viewer.add_init_script(RECORD_PEER_CONNECTIONS)
                    viewer.goto(f"{base}/shows/{slug}/")
                    viewer.wait_for_function(
                        "document.querySelector('[data-player]').dataset.mode"
                        " === 'webrtc'",
                        timeout=30000,
                    )
                    viewer.wait_for_function(
                        "document.querySelector('[data-player] video').currentTime > 1",
                        timeout=20000,
                    )
                    result["viewer"] = connected_stats(viewer)
                    result["viewer_width"] = viewer.evaluate(
                        "document.querySelector('[data-player] video').videoWidth"
                    )
                except Exception as exc:
                    result["error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    browser.close()
        finally:
            stop_daphne(server)
    finally:
        turn.terminate()
        turn.wait(timeout=10)
        if "error" in result:
            log = (workdir / "turn.log").read_text(errors="replace")
            result["turn_log"] = log[-2000:]
    return result


if __name__ == "__main__":
    script_main(run)
