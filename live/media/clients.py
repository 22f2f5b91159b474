"""WHIP and WHEP clients in Python (aiortc), for tests, benchmarks and smoke checks.

``StampedVideoTrack`` is a synthetic camera whose frames carry their capture time
(milliseconds since the epoch, drawn as black and white blocks along the top
rows), so a viewer can measure glass-to-glass latency with ``read_stamp``.
The HTTP part is a callable, so the same client runs against Django's test
client or a real server.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from live.media import aiortc_patches
from live.media.codecs import VideoEncoder, VideoSettings
from live.media.network import rtc_configuration

STAMP_BITS = 42
STAMP_ROWS = 16

# (status, headers with lower-case names, body) for a POST of an SDP offer.
HttpPost = Callable[[str, str, str], Awaitable[tuple[int, dict[str, str], str]]]


class StampedVideoTrack(VideoStreamTrack):
    """A ``width`` by ``height`` synthetic camera at ``fps``, each frame stamped
    with its capture time. Its picture compresses far better than a camera's;
    ``noise_rows`` rows of fresh noise under the stamp make the encoder spend
    bits like a real camera does (up to its bitrate cap)."""

    def __init__(
        self, width: int = 640, height: int = 480, fps: int = 30, noise_rows: int = 0
    ) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.noise_rows = min(noise_rows, height - STAMP_ROWS)
        self._index = 0
        self._t_start: float | None = None
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))
        self._rows = [
            bytes((x * 2 + shift * 8) % 200 + 28 for x in range(width))
            for shift in range(25)
        ]

    def _stamp_rows(self, stamp: int) -> bytes:
        # Bit i spans the i-th 42nd of the width, so the stamp reads the same
        # from a picture scaled to another size (the lower rendition).
        row = bytearray([16]) * self.width
        for bit in range(STAMP_BITS):
            if stamp >> (STAMP_BITS - 1 - bit) & 1:
                start = bit * self.width // STAMP_BITS
                end = (bit + 1) * self.width // STAMP_BITS
                row[start:end] = bytes([235]) * (end - start)
        return bytes(row) * STAMP_ROWS

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t_start is None:
            self._t_start = time.monotonic()
        due = self._t_start + self._index / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        stamp = int(time.time() * 1000)
        luma = (
            self._stamp_rows(stamp)
            + os.urandom(self.width * self.noise_rows)
            + self._rows[self._index % 25]
            * (self.height - STAMP_ROWS - self.noise_rows)
        )
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(luma)
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = self._index * (90_000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        self._index += 1
        return frame


class EncodedTrack(MediaStreamTrack):
    """``source`` encoded here (H.264, ``ultrafast``) and handed to aiortc as
    packets, so a load generator does not pay for aiortc's own encoder."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, *, bitrate: int = 1_500_000) -> None:
        super().__init__()
        self.source = source
        self.encoder = VideoEncoder(
            VideoSettings(
                max_width=1920,
                max_height=1080,
                fps=30,
                bitrate=bitrate,
                preset="ultrafast",
            )
        )
        self.keyframe = True

    async def recv(self) -> av.Packet[Any]:
        while True:
            frame = await self.source.recv()
            if not isinstance(frame, av.VideoFrame) or frame.pts is None:
                continue
            packets = self.encoder.encode(frame, frame.pts, self.keyframe)
            self.keyframe = False
            if packets:
                return packets[0]

    def stop(self) -> None:
        self.source.stop()
        self.encoder.close()
        super().stop()


def read_stamp(frame: av.VideoFrame) -> int | None:
    """The capture time drawn by ``StampedVideoTrack``, or None if unreadable."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    # A row a quarter down the stamp: inside it in a picture scaled down too.
    row = bytes(plane)[plane.line_size * (STAMP_ROWS // 4) :][: frame.width]
    if frame.width // STAMP_BITS < 2:
        return None
    stamp = 0
    for bit in range(STAMP_BITS):
        middle = row[(2 * bit + 1) * frame.width // (2 * STAMP_BITS)]
        stamp = (stamp << 1) | (1 if middle > 125 else 0)
    return stamp


async def _negotiate(
    pc: RTCPeerConnection, post: HttpPost, url: str, token: str
) -> tuple[int, str, str]:
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    status, headers, body = await post(url, pc.localDescription.sdp, token)
    if status != 201:
        return status, "", body
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return status, headers.get("location", ""), body


@dataclass
class Publisher:
    pc: RTCPeerConnection
    status: int
    location: str
    body: str

    async def close(self) -> None:
        await self.pc.close()


async def publish(
    post: HttpPost,
    url: str,
    token: str,
    *,
    video: MediaStreamTrack | None = None,
    audio: bool = True,
) -> Publisher:
    """Publish ``video`` (a stamped 640x480 camera by default) over WHIP."""
    pc = RTCPeerConnection(configuration=rtc_configuration())
    try:
        track = video or StampedVideoTrack()
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if isinstance(track, EncodedTrack):
            transceiver.setCodecPreferences(
                [
                    c
                    for c in RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType.lower() in ("video/h264", "video/rtx")
                ]
            )

            def send_keyframe() -> None:
                track.keyframe = True

            aiortc_patches.on_keyframe_request(transceiver.sender, send_keyframe)
        if audio:
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        status, location, body = await _negotiate(pc, post, url, token)
    except BaseException:
        await pc.close()
        raise
    if status != 201:
        await pc.close()
    return Publisher(pc, status, location, body)


@dataclass
class Player:
    """A WHEP viewer that reads every frame (or only counts them, ``decode=False``)."""

    pc: RTCPeerConnection
    status: int
    location: str
    body: str
    frames: int = 0
    keyframe_first: bool | None = None
    latencies_ms: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    # Each decoded frame's width and height, in order.
    sizes: list[tuple[int, int]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def watch(self, track: MediaStreamTrack, *, stamps: bool) -> None:
        """Read ``track`` until it ends (or ``close()``)."""
        self._tasks.append(asyncio.ensure_future(self._read(track, stamps)))

    async def _read(self, track: MediaStreamTrack, stamps: bool) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                self.frames += 1
                self.arrivals.append(time.monotonic())
                if isinstance(frame, av.VideoFrame):
                    self.sizes.append((frame.width, frame.height))
                if stamps and isinstance(frame, av.VideoFrame):
                    stamp = read_stamp(frame)
                    if stamp is not None and abs(now * 1000 - stamp) < 60_000:
                        self.latencies_ms.append(now * 1000 - stamp)
        except MediaStreamError:
            return

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


async def play(
    post: HttpPost, url: str, token: str = "", *, stamps: bool = True
) -> Player:
    """Play a show over WHEP; frames are counted (and stamps read) as they come."""
    pc = RTCPeerConnection(configuration=rtc_configuration())
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    player = Player(pc, 0, "", "")

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            player.watch(track, stamps=stamps)

    try:
        player.status, player.location, player.body = await _negotiate(
            pc, post, url, token
        )
    except BaseException:
        await pc.close()
        raise
    if player.status != 201:
        await pc.close()
    return player
