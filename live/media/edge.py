"""A show served by a media node that is not its origin: an **edge**
(docs/video.md, "Several media nodes").

The edge pulls the show from the origin once, as one WHEP session of its own
(``RelayBroadcast.start``: aiortc as the client, signed with
``edge_token`` so the origin serves it outside its public viewer limit and
without the viewers' access checks, which the edge has made), and forwards
what arrives to its own viewers without decoding or encoding anything:

- aiortc's receiver depayloads the RTP packets and assembles frames in its
  jitter buffer (a ``FrameJitterBuffer``: each frame as soon as its last
  packet is here), then hands them to its decoder thread through a queue.
  That queue is a ``RelayQueue`` here, which wraps each encoded frame in an
  ``av.Packet`` (pts = the RTP timestamp, time base 1/90000 for video and
  1/48000 for Opus, the keyframe flag read from the H.264 NAL units) and
  pushes it into the viewers' ``PacketTrack``\\ s, the same tracks a
  ``Broadcast`` feeds; their senders only packetize again. The decoder
  thread never gets a frame.
- Viewers' keyframe requests (PLI/FIR, a new viewer) are merged into at most
  one PLI upstream per rendition every ``KEYFRAME_MIN_INTERVAL``; the origin
  merges its own requests again before forcing a keyframe in its one encode.
- **The ladder behind an edge.** The pull offers one video m-line per
  rendition the edge knows of; the origin answers each lower one with a
  track of that rendition (``Viewer.lower``), idle until the edge asks for it
  (``PATCH`` on the pull's session, signed like the pull, with
  ``{"renditions": [1]}``). Rendition 0 always flows. The edge's viewers are
  steered by the same ``LadderPolicy`` as the origin's, from their own
  receivers' reports and what each rendition brings in, and move at the
  target rendition's keyframe; a lower rendition is asked for as soon as a
  viewer heads to it, and given up ``RELEASE_SECONDS`` after the last viewer
  left it, so an edge whose viewers all take the highest costs the origin one
  viewer's packets, not two.
- Each rendition's RTP timestamps (each with its own random origin) are put
  on the edge's clock (``Timeline``), so a viewer's pts keep rising across a
  switch.
- The pull ends ``SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS`` after the last viewer
  left, when the origin's connection fails or closes, and when the show's lock
  is no longer the origin's (the show ended, or the origin died and its lock
  expired); the edge's viewers are closed then and their players ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from django.conf import settings

from live.media import aiortc_patches
from live.media.broadcast import (
    KEYFRAME_MIN_INTERVAL,
    IngestQueue,
    Viewer,
    _is_keyframe,
    follow_feedback,
    viewer_tracks,
)
from live.media.codecs import VIDEO_CLOCK, VideoSettings
from live.media.ladder import RateMeter
from live.media.network import rtc_configuration
from live.media.registry import NodeReport, Registry, report_seconds, routed_whep_url

logger = logging.getLogger(__name__)

# The header an edge's WHEP POST to the origin carries: ``edge_token``.
EDGE_HEADER = "X-Showfloor-Edge"
# How long an edge's signed request is valid (clocks of the nodes may differ a
# little; a captured header is useless after this).
TOKEN_SECONDS = 60
HTTP_TIMEOUT = 10.0

VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_TIME_BASE = fractions.Fraction(1, 48_000)
# Each rendition's timeline is set by the frame that arrived soonest among
# its first this many (three seconds at 30 fps), then fixed.
ALIGN_FRAMES = 90
# A lower rendition none of the edge's viewers has been on or heading to for
# this long is no longer pulled.
RELEASE_SECONDS = 5.0


class EdgeRefused(Exception):
    """The origin did not accept the edge's WHEP session."""


def _signature(slug: str, node: str, expires: int) -> str:
    secret = settings.SHOWFLOOR_MEDIA_EDGE_SECRET or settings.SECRET_KEY
    message = f"showfloor.media.edge|{slug}|{node}|{expires}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def edge_token(slug: str, node: str, *, now: float | None = None) -> str:
    """``<node>:<expiry, Unix seconds>:<HMAC-SHA256>``, for one show."""
    expires = int((now if now is not None else time.time()) + TOKEN_SECONDS)
    return f"{node}:{expires}:{_signature(slug, node, expires)}"


def edge_token_valid(token: str, slug: str, *, now: float | None = None) -> bool:
    """Whether ``token`` was made by a media node for ``slug`` and is current."""
    node, _sep, rest = token.partition(":")
    expires_text, _sep, signature = rest.partition(":")
    if not node or not expires_text.isdigit() or not signature:
        return False
    expires = int(expires_text)
    now = now if now is not None else time.time()
    if not now <= expires <= now + TOKEN_SECONDS + 5:
        return False
    return hmac.compare_digest(signature, _signature(slug, node, expires))


def h264_codecs() -> list[Any]:
    """The video codecs an edge asks for: the origin encodes H.264 only, and
    its packets go on to the edge's viewers unchanged."""
    return [
        c
        for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType.lower() in ("video/h264", "video/rtx")
    ]


class RelayQueue(IngestQueue):
    """Stands where aiortc's receiver queues encoded frames for its decoder
    thread (``aiortc_patches.replace_decoder_queue``): each frame goes on to
    ``deliver`` at once, in the event loop (aiortc puts from its RTP handler),
    and the decoder thread only ever gets aiortc's stop signal."""

    def __init__(
        self, lost: threading.Event, deliver: Callable[[str, JitterFrame], None]
    ) -> None:
        super().__init__(lost, limit=0)
        self.deliver = deliver
        self.lost = lost

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
            return
        codec, frame = item
        self.deliver(codec.name, frame)


class Timeline:
    """One rendition's RTP timestamps on the edge's clock (``VIDEO_CLOCK``
    ticks since ``t0``). The origin stamps a frame the same in every
    rendition, but each of its senders adds its own random origin, so the
    edge maps each stream by the frame that came soonest (least delayed) among
    its first ``ALIGN_FRAMES``: two renditions then agree to within their
    least delays' difference, well under a frame."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.base: int | None = None
        self._last: int | None = None
        self._aligning = ALIGN_FRAMES

    def pts(self, timestamp: int, now: float) -> int:
        if self._last is None:
            unwrapped = timestamp
        else:
            step = (timestamp - self._last) % 2**32
            unwrapped = self._last + (step - 2**32 if step >= 2**31 else step)
        self._last = unwrapped
        if self._aligning > 0 or self.base is None:
            self._aligning -= 1
            candidate = unwrapped - int((now - self.t0) * VIDEO_CLOCK)
            self.base = candidate if self.base is None else max(self.base, candidate)
        return unwrapped - self.base


class RelayBroadcast:
    """One show on an edge: the pull from the origin and this node's viewers
    of it. Has the viewer side of ``Broadcast`` (``viewers``,
    ``new_viewer_tracks``, ``add_viewer``, ``remove_viewer``, ``closed``)."""

    def __init__(
        self,
        *,
        slug: str,
        origin: NodeReport,
        registry: Registry,
        node: str,
        on_closed: Callable[[RelayBroadcast], None],
    ) -> None:
        self.slug = slug
        self.origin = origin
        self.registry = registry
        self.node = node
        self.on_closed = on_closed
        self.viewers: dict[str, Viewer] = {}
        self.closed = False
        self.pc = RTCPeerConnection(configuration=rtc_configuration())
        self.session_url = ""
        self.frames_relayed = 0
        self.keyframes_relayed = 0
        self.plis_upstream = 0
        # The renditions this node knows of; ``levels``: how many the origin
        # answered (1 until it did, and when it has no ladder).
        self._configured = [r.bitrate for r in VideoSettings.from_settings().renditions]
        self.levels = 1
        t0 = time.monotonic()
        self._timelines = [Timeline(t0) for _ in self._configured]
        self._rates = [RateMeter() for _ in self._configured]
        self._lost: list[threading.Event | None] = [None for _ in self._configured]
        self._last_pli = [0.0 for _ in self._configured]
        # Lower renditions: when a viewer last needed each; what the origin
        # was last asked for.
        self._needed_at: dict[int, float] = {}
        self._asked: set[int] = set()
        self._asking: asyncio.Task[None] | None = None
        self._linger: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    # --- The pull ---------------------------------------------------------

    async def start(self) -> None:
        """Negotiate the pull with the origin. Raises ``EdgeRefused`` (and
        closes everything) when the origin does not accept it."""
        try:
            await self._negotiate()
        except BaseException:
            await self.close()
            raise
        self._watch = asyncio.create_task(self._watch_origin())

    async def _negotiate(self) -> None:
        pc = self.pc
        # Video (rendition 0), audio, then one video per lower rendition.
        kinds = [("video", 0), ("audio", 0)]
        kinds += [("video", r) for r in range(1, len(self._configured))]
        lower = []
        for kind, rendition in kinds:
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            if kind == "video":
                transceiver.setCodecPreferences(h264_codecs())
                if rendition:
                    lower.append(transceiver)
            self._relay(transceiver.receiver, kind, rendition)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and not self.closed:
                logger.warning("edge pull of %s: %s", self.slug, pc.connectionState)
                await self.close()

        await pc.setLocalDescription(await pc.createOffer())
        url = routed_whep_url(self.origin, self.slug)
        status, location, body = await asyncio.to_thread(
            _post_offer, url, pc.localDescription.sdp, edge_token(self.slug, self.node)
        )
        if status != 201:
            raise EdgeRefused(f"{url}: {status} {body[:200]}")
        self.session_url = urllib.parse.urljoin(url, location)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        # The origin sends the lower renditions it has (an origin without a
        # ladder answers their m-lines inactive).
        for transceiver in lower:
            if transceiver.currentDirection not in ("recvonly", "sendrecv"):
                break
            self.levels += 1

    def _relay(self, receiver: RTCRtpReceiver, kind: str, rendition: int) -> None:
        def deliver(codec: str, frame: JitterFrame) -> None:
            if kind == "video":
                self._deliver_video(rendition, codec, frame)
            else:
                self._deliver_audio(frame)

        relay = aiortc_patches.replace_decoder_queue(
            receiver, lambda lost: RelayQueue(lost, deliver)
        )
        if relay is None:
            raise EdgeRefused("aiortc's receiver is not as expected: cannot relay")
        if kind == "video":
            self._lost[rendition] = relay.lost
        aiortc_patches.release_complete_frames(receiver, is_video=kind == "video")
        # The origin does not adapt an edge's pull to its estimate: no need
        # to run aiortc's estimator on every packet.
        aiortc_patches.no_bandwidth_estimate(receiver)

    def _deliver_video(self, rendition: int, codec: str, frame: JitterFrame) -> None:
        """A frame of ``rendition`` to the viewers on it, and to those moving
        to it if it is a keyframe."""
        if self.closed:
            return
        now = time.monotonic()
        packet = av.Packet(frame.data)
        packet.pts = self._timelines[rendition].pts(frame.timestamp, now)
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = _is_keyframe(codec, frame.data)
        self._rates[rendition].add(now, packet.size)
        if rendition == 0:
            self.frames_relayed += 1
            self.keyframes_relayed += packet.is_keyframe
        for viewer in self.viewers.values():
            track = viewer.video
            if track.switch_to == rendition and packet.is_keyframe:
                track.switch()
            if track.rendition == rendition:
                track.push(packet)

    def _deliver_audio(self, frame: JitterFrame) -> None:
        if self.closed:
            return
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = AUDIO_TIME_BASE
        for viewer in self.viewers.values():
            viewer.audio.push(packet)

    def request_keyframe(self, rendition: int = 0) -> None:
        """Ask the origin for a keyframe of ``rendition`` (a PLI on its next
        packet), at most once every ``KEYFRAME_MIN_INTERVAL`` per rendition
        whoever asks."""
        now = time.monotonic()
        lost = self._lost[rendition] if rendition < self.levels else None
        if lost is None or now - self._last_pli[rendition] < KEYFRAME_MIN_INTERVAL:
            return
        self._last_pli[rendition] = now
        self.plis_upstream += 1
        lost.set()

    def _rendition_rates(self, now: float) -> list[float]:
        """What each rendition brings in; one not pulled now is taken to send
        its configured rate."""
        return [
            meter.rate(now) or configured
            for meter, configured in zip(
                self._rates[: self.levels], self._configured, strict=False
            )
        ]

    def _heading_to(self, rendition: int) -> None:
        if rendition:
            self._needed_at[rendition] = time.monotonic()
            self._ask_origin()
        self.request_keyframe(rendition)

    def _wanted(self, now: float) -> set[int]:
        for viewer in self.viewers.values():
            for rendition in (viewer.video.rendition, viewer.video.heading):
                if rendition:
                    self._needed_at[rendition] = now
        return {
            rendition
            for rendition, at in self._needed_at.items()
            if now - at < RELEASE_SECONDS
        }

    def _ask_origin(self) -> None:
        """Have the origin send the lower renditions the viewers need (one
        request at a time; the latest wish wins)."""
        if self.levels < 2 or self.closed or not self.session_url:
            return
        if self._asking is not None and not self._asking.done():
            return
        if self._wanted(time.monotonic()) != self._asked:
            self._asking = asyncio.create_task(self._asking_origin())

    async def _asking_origin(self) -> None:
        while not self.closed:
            wanted = self._wanted(time.monotonic())
            if wanted == self._asked:
                return
            status = await asyncio.to_thread(
                _patch_renditions,
                self.session_url,
                sorted(wanted),
                edge_token(self.slug, self.node),
            )
            if status != 204:
                logger.warning(
                    "edge pull of %s: the origin refused renditions %s (%s)",
                    self.slug,
                    sorted(wanted),
                    status,
                )
                return  # asked again at the next change or watch
            self._asked = wanted

    async def _watch_origin(self) -> None:
        """Close once the show's lock is no longer the origin's: the show
        ended there, or the origin died and its lock expired."""
        while not self.closed:
            await asyncio.sleep(report_seconds())
            self._ask_origin()  # gives up renditions no viewer needs now
            if await self.registry.holder(self.slug) != self.origin.node:
                logger.info("%s is no longer on %s", self.slug, self.origin.node)
                await self.close()
                return

    # --- Viewers ----------------------------------------------------------

    new_viewer_tracks = staticmethod(viewer_tracks)

    def add_viewer(self, viewer: Viewer) -> None:
        self.viewers[viewer.id] = viewer
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

        @viewer.pc.on("connectionstatechange")
        async def on_state() -> None:
            if viewer.pc.connectionState in ("failed", "closed"):
                await self.remove_viewer(viewer.id)

        def keyframe_for_viewer() -> None:
            self.request_keyframe(viewer.video.heading)

        for sender in viewer.pc.getSenders():
            aiortc_patches.on_keyframe_request(sender, keyframe_for_viewer)
            if sender.track is viewer.video and viewer.adaptive and self.levels > 1:
                follow_feedback(
                    viewer,
                    sender,
                    slug=self.slug,
                    levels=self.levels,
                    rates=self._rendition_rates,
                    heading_to=self._heading_to,
                )
        # A viewer started low (its player's hint) needs that rendition now.
        self._last_pli[viewer.video.heading] = 0.0
        self._heading_to(viewer.video.heading)

    async def remove_viewer(self, viewer_id: str) -> bool:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        for track in viewer.tracks():
            track.stop()
        await viewer.pc.close()
        if not self.viewers and not self.closed and self._linger is None:
            self._linger = asyncio.create_task(self._close_unwatched())
        return True

    async def _close_unwatched(self) -> None:
        await asyncio.sleep(float(settings.SHOWFLOOR_MEDIA_EDGE_LINGER_SECONDS))
        if not self.viewers:
            await self.close()

    # --- Life cycle -------------------------------------------------------

    async def close(self) -> None:
        """End the pull and close this node's viewers of the show."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in (self._linger, self._watch, self._asking):
            if task is not None and task is not current:
                task.cancel()
        for viewer_id in list(self.viewers):
            await self.remove_viewer(viewer_id)
        await self.pc.close()
        if self.session_url:
            # The origin notices the closed connection too; this is faster.
            await asyncio.to_thread(_delete, self.session_url)
        self.on_closed(self)


def _http_only(url: str) -> str:
    """``url`` if it is http(s): a node's URL comes from the registry (Redis),
    and urllib would also open ``file:`` and other schemes."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def _post_offer(url: str, sdp: str, token: str) -> tuple[int, str, str]:
    try:
        url = _http_only(url)
    except ValueError as exc:
        return 0, "", str(exc)
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url,
        data=sdp.encode(),
        headers={"Content-Type": "application/sdp", EDGE_HEADER: token},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310  # nosec B310 - http(s) only
            return (
                response.status,
                response.headers.get("Location", ""),
                response.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, "", str(exc)


def _patch_renditions(url: str, renditions: list[int], token: str) -> int:
    """Ask the origin for ``renditions`` on the pull's session; its status."""
    try:
        request = urllib.request.Request(  # noqa: S310 (http(s) only, checked)
            _http_only(url),
            data=json.dumps({"renditions": renditions}).encode(),
            headers={"Content-Type": "application/json", EDGE_HEADER: token},
            method="PATCH",
        )
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310  # nosec B310 - http(s) only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def _delete(url: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        request = urllib.request.Request(_http_only(url), method="DELETE")  # noqa: S310
        urllib.request.urlopen(request, timeout=HTTP_TIMEOUT).close()  # noqa: S310  # nosec B310 - http(s) only
