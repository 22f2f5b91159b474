"""A WebRTC viewer behind a 600 kbit/s bottleneck, run INSIDE a loopback-only
network namespace (see browser_netns.py).

The show is encoded in two renditions, 640x480 at 2 Mbit/s and 320x240 at
400 kbit/s, so the cap carries the lower one (with audio and retransmissions)
but not the higher. Chromium's fake camera plays a file whose lower third is
fresh noise in every frame: its own drawing compresses so well that the
higher rendition would fit under the cap and prove nothing.

Every datagram the media node sends from the port of the viewer's session
goes through an ``htb`` class of 600 kbit/s (a 10 kB burst) with a byte
queue of 200 ms at that rate behind it (tail drop, as ``tbf`` does; this
kernel has no netem): the cap is put on the moment the node answers the
viewer's WHEP offer, before Chromium has the answer, so it holds from the
first packet. The studio's stream to the node and the viewer's RTCP back
pass uncapped; the node's answer to the studio has the studio's Chromium send
2 Mbit/s from the start (``sending_at_once``). The viewer comes once the
higher rendition runs at more than twice the cap.

Prints one JSON object: what the viewer's <video> presented (``playback``;
``frames``: ms from its first frame, size, presentedFrames), the frame rates
the node encoded and the viewer decoded once it settled, each rendition's bit
rate while it played, the capped queue's counters and the viewer's receive
statistics.

Usage (test_browser.py does this): ip netns exec NS python capped_netns.py WORKDIR
"""

from __future__ import annotations

import itertools
import json
import random
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

CAP_KBIT = 600
# 200 ms of the cap, in bytes: the queue of a real bottleneck's router.
QUEUE_BYTES = CAP_KBIT * 1000 // 8 // 5
HIGH = (640, 480, 2_000_000)
LOW = (320, 240, 400_000)
# The viewer has settled a second after its first frame of the lower
# rendition (the frames held up behind the queue come then); it is watched
# for 6 s from then.
SETTLE_MS = 1000
WINDOW_MS = 6000
CANDIDATE_PORT = re.compile(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ", re.IGNORECASE)
WHEP = re.compile(r"/whep(\?.*)?$")
WHIP = re.compile(r"/whip$")
VIDEO_PAYLOAD = re.compile(r"^a=rtpmap:(\d+) (?:VP8|VP9|H264|AV1)/90000", re.MULTILINE)

# Every frame the viewer's <video> presents: when, its size, and Chromium's
# count of presented frames (callbacks may coalesce under load; the count
# does not).
PRESENTED = """(() => {
  const frames = (window.presented = []);
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("[data-player] video");
    const tick = (_now, meta) => {
      frames.push([Date.now(), meta.width, meta.height, meta.presentedFrames]);
      video.requestVideoFrameCallback(tick);
    };
    if (video) video.requestVideoFrameCallback(tick);
  });
})();"""
RECEIVE_STATS = """async () => {
  const pc = window.pcs.at(-1);
  const out = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      for (const key of ["framesDecoded", "framesDropped", "freezeCount",
                         "totalFreezesDuration", "packetsLost", "nackCount",
                         "pliCount", "bytesReceived", "packetsReceived"]) {
        out[key] = s[key];
      }
    }
  });
  return out;
}"""
SEND_STATS = """async () => {
  const out = {};
  (await window.pcs.at(-1).getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      for (const key of ["framesPerSecond", "frameWidth", "frameHeight", "framesSent",
                         "qualityLimitationReason", "targetBitrate", "bytesSent",
                         "encoderImplementation", "qualityLimitationDurations"]) {
        out[key] = s[key];
      }
    }
  });
  return out;
}"""
PEER_CONNECTIONS = """(() => {
  const pcs = (window.pcs = []);
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); pcs.push(this); }
  };
})();"""


def fake_camera(path: Path, frames: int = 30) -> Path:
    """A 640x480 y4m of ``frames`` frames that Chromium's fake camera loops: a
    gradient moving across the upper two thirds, fresh noise (seeded) in the
    lower third, grey chroma. A camera's picture costs its encoder bits
    likewise; Chromium's own fake picture hardly any."""
    width, height, noisy = HIGH[0], HIGH[1], HIGH[1] // 3
    rng = random.Random(600)
    chroma = bytes([128]) * (width * height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            row = bytes((x * 2 + index * 8) % 200 + 28 for x in range(width))
            out.write(b"FRAME\n")
            out.write(row * (height - noisy) + rng.randbytes(width * noisy) + chroma)
    return path


def sending_at_once(answer: str) -> str:
    """The node's answer to the studio, telling the studio's Chromium to send
    video at 1.5 Mbit/s or more from the start (``x-google-min-bitrate``,
    ``x-google-start-bitrate``), not from the 300 kbit/s its estimate starts
    at: ramping up would take it 20 s, and its encoder would meanwhile send
    320x240 and drop frames. A real camera on a studio's link sends its
    full rate; the cap here is the viewer's."""
    extra = "x-google-min-bitrate=1500;x-google-start-bitrate=2000"
    for payload in set(VIDEO_PAYLOAD.findall(answer)):
        fmtp = f"a=fmtp:{payload} "
        if fmtp in answer:
            answer = re.sub(
                rf"^{fmtp}.*?(?=\r?$)",
                lambda line: f"{line.group(0)};{extra}",
                answer,
                flags=re.MULTILINE,
            )
        else:
            rtpmap = re.search(rf"^a=rtpmap:{payload} .*?\r?\n", answer, re.MULTILINE)
            assert rtpmap is not None
            answer = (
                f"{answer[: rtpmap.end()]}{fmtp}{extra}\r\n{answer[rtpmap.end() :]}"
            )
    return answer


def tc(*commands: str) -> None:
    for command in commands:
        subprocess.run(command.split(), check=True, capture_output=True)  # nosec B603 - fixed commands


def prepare_bottleneck() -> None:
    """Everything on ``lo`` passes (class 1:10) until ``cap`` sends a flow to
    class 1:20: 600 kbit/s, a 10 kB burst, then a 200 ms byte queue."""
    tc(
        "tc qdisc add dev lo root handle 1: htb default 10",
        "tc class add dev lo parent 1: classid 1:10 htb rate 10gbit",
        f"tc class add dev lo parent 1: classid 1:20 htb rate {CAP_KBIT}kbit"
        f" ceil {CAP_KBIT}kbit burst 10k cburst 10k",
        f"tc qdisc add dev lo parent 1:20 handle 20: bfifo limit {QUEUE_BYTES}",
    )


def cap(port: int) -> None:
    """What the node sends from ``port`` (one viewer session's) goes through
    the bottleneck; what comes to it (the viewer's RTCP) does not."""
    tc(
        "tc filter add dev lo parent 1: protocol ip prio 1 u32"
        f" match ip protocol 17 0xff match ip sport {port} 0xffff flowid 1:20"
    )


def bottleneck_counters() -> dict[str, Any]:
    """The capped queue's counters (``tc -s``): bytes and packets sent, dropped."""
    out = subprocess.run(  # nosec B603 B607 - a fixed command
        ["tc", "-s", "-j", "qdisc", "show", "dev", "lo"],
        check=True,
        capture_output=True,
        text=True,
    )
    queue = next(q for q in json.loads(out.stdout) if q.get("handle") == "20:")
    return {key: queue.get(key) for key in ("bytes", "packets", "drops")}


def playback(presented: list[list[int]], low: list[int]) -> dict[str, Any]:
    """What the viewer's <video> showed (``presented``: Date.now(), width,
    height, presentedFrames per callback): the size it started at; when it
    first showed the lower rendition (``moved_down_ms``, from its first
    frame); the longest wait for a frame from the first frame until it had
    settled, ``SETTLE_MS`` after that (``start_freeze_ms``: the switch's
    own freeze included); and over ``WINDOW_MS`` from then, the frames
    presented a second, the longest wait (the window's edges included) and
    the frames of another size."""
    start = presented[0]
    out: dict[str, Any] = {"started": start[1:3], "frames": len(presented)}
    down = next((f[0] for f in presented if f[1:3] == low), None)
    if down is None:
        return out
    settled = down + SETTLE_MS
    window = [f for f in presented if settled <= f[0] <= settled + WINDOW_MS]
    if not window:
        return out
    until = [f for f in presented if f[0] < settled] + window[:1]
    times = [settled, *(f[0] for f in window), settled + WINDOW_MS]
    out.update(
        moved_down_ms=down - start[0],
        start_freeze_ms=max(b[0] - a[0] for a, b in itertools.pairwise(until)),
        fps=round((window[-1][3] - window[0][3]) * 1000 / WINDOW_MS, 1),
        max_gap_ms=max(b - a for a, b in itertools.pairwise(times)),
        other_size=sum(1 for f in window if f[1:3] != low),
        window_ms=window[-1][0] - settled,
        ended=presented[-1][1:3],
    )
    return out


def rate(counts: list[tuple[int, int]]) -> float | None:
    """Per second, from the first to the last of (Date.now(), count) samples."""
    if len(counts) < 2:
        return None
    (t0, n0), (t1, n1) = counts[0], counts[-1]
    return round((n1 - n0) * 1000 / (t1 - t0), 1)


def run(workdir: Path) -> dict[str, Any]:
    from playwright.sync_api import Route, sync_playwright

    env = server_env(
        workdir,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SHOWFLOOR_VIDEO_LADDER="true",
        SHOWFLOOR_VIDEO_MAX_WIDTH=str(HIGH[0]),
        SHOWFLOOR_VIDEO_MAX_HEIGHT=str(HIGH[1]),
        SHOWFLOOR_VIDEO_BITRATE=str(HIGH[2]),
        SHOWFLOOR_VIDEO_LOW_MAX_WIDTH=str(LOW[0]),
        SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT=str(LOW[1]),
        SHOWFLOOR_VIDEO_LOW_BITRATE=str(LOW[2]),
    )
    began = time.monotonic()
    phases: dict[str, float] = {}
    seeded = seed(env)
    phases["seeded"] = time.monotonic() - began
    slug = seeded["slug"]
    base = f"http://127.0.0.1:{PORT}"
    camera = fake_camera(workdir / "camera.y4m")
    prepare_bottleneck()
    server = start_daphne(env, PORT, workdir / "server.log")
    phases["daphne"] = time.monotonic() - began
    result: dict[str, Any] = {
        "slug": slug,
        "capped_ports": [],
        "status": [],
        "phases": phases,
    }

    def stream_status(page: Any) -> dict[str, Any]:
        status: dict[str, Any] = page.evaluate(
            f"fetch('/live/{slug}/stream').then((r) => r.json())"
        )
        result["status"].append(
            [
                int(time.time() * 1000),
                status.get("renditions"),
                status["frames_in"],
                status["frames_encoded"],
            ]
        )
        return status

    def capped_answer(route: Route) -> None:
        """The node's answer reaches the viewer only once its port is capped."""
        if route.request.method != "POST":
            route.fallback()
            return
        response = route.fetch()
        port = int(CANDIDATE_PORT.findall(response.text())[0])
        cap(port)
        result["capped_ports"].append(port)
        result["whep_url"] = route.request.url.removeprefix(base)
        route.fulfill(response=response)

    def studio_answer(route: Route) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        response = route.fetch()
        route.fulfill(response=response, body=sending_at_once(response.text()))

    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, f"--use-file-for-fake-video-capture={camera}")
            try:
                studio = browser.new_context().new_page()
                studio.route(WHIP, studio_answer)
                studio = studio_page(
                    studio,
                    base,
                    slug,
                    session=seeded["session"],
                    init_script=PEER_CONNECTIONS,
                )
                go_live(studio)
                phases["live"] = time.monotonic() - began
                # The viewer comes once the higher rendition runs at well over
                # the cap, as on a show under way (the studio's Chromium needs
                # a few seconds to reach it).
                deadline = time.monotonic() + 25
                while time.monotonic() < deadline:
                    renditions = stream_status(studio).get("renditions") or []
                    if renditions and renditions[0]["bitrate"] > 2 * CAP_KBIT * 1000:
                        break
                    studio.wait_for_timeout(500)

                phases["viewer"] = time.monotonic() - began
                viewer = browser.new_context().new_page()
                viewer.add_init_script(PEER_CONNECTIONS)
                viewer.add_init_script(PRESENTED)
                viewer.route(WHEP, capped_answer)
                viewer.goto(f"{base}/shows/{slug}/")
                viewer.wait_for_function(
                    "document.querySelector('[data-player]').dataset.mode === 'webrtc'",
                    timeout=20000,
                )
                sizes = [r["size"] for r in stream_status(studio)["renditions"]]
                result["high_size"], result["low_size"] = sizes
                low = sizes[1]
                settled_at = None
                decoded: list[Any] = []
                deadline = time.monotonic() + 45
                while time.monotonic() < deadline:
                    viewer.wait_for_timeout(500)
                    stream_status(studio)
                    decoded.append(
                        [int(time.time() * 1000), viewer.evaluate(RECEIVE_STATS)]
                    )
                    if settled_at is None:
                        settled_at = viewer.evaluate(
                            "(low) => (window.presented.find("
                            "([, w, h]) => w === low[0] && h === low[1]) || [null])[0]",
                            low,
                        )
                    if settled_at is not None and (
                        time.time() * 1000 > settled_at + SETTLE_MS + WINDOW_MS + 300
                    ):
                        break
                phases["watched"] = time.monotonic() - began
                presented = viewer.evaluate("window.presented")
                result["playback"] = playback(presented, low)
                result["settled_at"] = settled_at
                result["receive"] = viewer.evaluate(RECEIVE_STATS)
                result["mode"] = viewer.evaluate(
                    "document.querySelector('[data-player]').dataset.mode || null"
                )
                result["sessions"] = viewer.evaluate(
                    "Number(document.querySelector('[data-player]')"
                    ".dataset.whepSessions || 0)"
                )
                result["bottleneck"] = bottleneck_counters()
                result["publisher"] = studio.evaluate(SEND_STATS)
                # Each rendition's bit rate (the node's 2 s window) while the
                # viewer played.
                result["rates_watched"] = [
                    [r["bitrate"] for r in renditions]
                    for t, renditions, *_ in result["status"]
                    if presented and t > presented[0][0]
                ]

                # The frame rate the node encoded over the same window: on a
                # busy machine it, not the link, may bound the viewer's.
                def settled(t: int) -> bool:
                    return settled_at is not None and (
                        settled_at + SETTLE_MS
                        <= t
                        <= settled_at + SETTLE_MS + WINDOW_MS + 500
                    )

                result["node_fps"] = rate(
                    [
                        (t, encoded)
                        for t, _, _, encoded in result["status"]
                        if settled(t)
                    ]
                )
                # ... and the frames the viewer decoded (what its link
                # delivered whole; a busy renderer presents fewer).
                result["decoded_fps"] = rate(
                    [(t, stats["framesDecoded"]) for t, stats in decoded if settled(t)]
                )
                result["frames"] = [
                    [t - presented[0][0], *rest] for t, *rest in presented
                ]
                del result["status"]
            except Exception as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                browser.close()
    finally:
        stop_daphne(server)
    return result


if __name__ == "__main__":
    script_main(run)
