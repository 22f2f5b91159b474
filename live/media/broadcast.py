"""One live show on this media node.

The publisher's tracks are decoded once (by aiortc's receiver), encoded once
(``codecs``), and the same ``av.Packet[Any]`` objects go to every WebRTC viewer's
sender (which then only packetizes), to the HLS packager and to the recorder
(``muxing``). Nothing queues without bound: the encoder takes at most two frames
in flight and drops the rest, and a viewer whose queue fills up skips to the
next keyframe.

With the rendition ladder (``codecs.VideoSettings.renditions``) each frame is
encoded once per rendition, in the same encode job and with the same pts; a
WebRTC viewer gets one rendition's packets, chosen by its ``LadderPolicy``
(``ladder``) from its RTCP, and is moved to another only at that one's
keyframe, so its decoder never sees a broken picture and its RTP stream (one
sender, one SSRC) stays continuous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from live.media import aiortc_patches
from live.media.codecs import (
    AUDIO_RATE,
    VIDEO_CLOCK,
    AudioEncoder,
    VideoEncoder,
    VideoSettings,
)
from live.media.ladder import LadderPolicy, RateMeter
from live.media.muxing import ShowWriter

logger = logging.getLogger(__name__)

# Packets a viewer may have waiting before it skips to the next keyframe (one
# second of video, half a second of audio): a viewer that falls behind freezes
# briefly instead of drifting seconds behind the host. Much shorter limits make
# every viewer skip whenever the process is briefly busy.
VIDEO_QUEUE_LIMIT = 30
AUDIO_QUEUE_LIMIT = 25

# Encoded frames the publisher's decoder may fall behind (a third of a second
# at 30 fps) before the backlog is dropped and a keyframe asked for.
INGEST_BACKLOG = 10
AUDIO_INGEST_BACKLOG = 25
INGEST_POLL_SECONDS = 0.5
# Frames the encoder may hold (one encoding, one waiting); newer ones are dropped.
ENCODE_IN_FLIGHT = 2
# A keyframe costs several normal frames: viewers' requests are merged.
KEYFRAME_MIN_INTERVAL = 0.25

StateCallback = Callable[[str], Awaitable[None]]


def _is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame (as aiortc's depayloader assembles it) starts a
    picture that decodes on its own; ``True`` for codecs not looked into."""
    name = codec_name.lower()
    if name == "h264":
        # Annex B: any IDR slice (5) or SPS (7) after a start code.
        return any(
            chunk and chunk[0] & 0x1F in (5, 7) for chunk in data.split(b"\x00\x00\x01")
        )
    if name == "vp8":
        return bool(data) and not data[0] & 0x01
    return True


class IngestQueue(queue.Queue[Any]):
    """Stands in for the unbounded queue between aiortc's RTP receiver and its
    decoder thread (``aiortc_patches.replace_decoder_queue``). When the decoder
    falls ``limit`` frames behind (this process was starved), what waits is
    dropped, aiortc is told the picture was lost (its receiver then sends the
    publisher a PLI) and frames are skipped until a keyframe: the broadcast
    resumes a moment later instead of staying seconds behind the host."""

    def __init__(self, lost: threading.Event, *, limit: int) -> None:
        super().__init__()
        self._lost = lost
        self._limit = limit
        self._waiting = False
        self.skipped = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """As ``queue.Queue.get``, but with no timeout it also ends (returns
        None, aiortc's stop signal) once the main thread has finished: aiortc's
        decoder threads are not daemons, and a server stopped while a publisher
        is connected would otherwise wait for them forever."""
        if not block or timeout is not None:
            return super().get(block, timeout)
        while True:
            try:
                return super().get(timeout=INGEST_POLL_SECONDS)
            except queue.Empty:
                if not threading.main_thread().is_alive():
                    return None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, frame = item
            if self.qsize() >= self._limit:
                with self.mutex:
                    dropped = [task for task in self.queue if task is not None]
                    stop = len(dropped) < len(self.queue)
                    self.queue.clear()
                    if stop:
                        self.queue.append(None)
                self.skipped += len(dropped)
                self._waiting = True
                self._lost.set()
            if self._waiting:
                if not _is_keyframe(codec.name, frame.data):
                    self.skipped += 1
                    return
                self._waiting = False
        super().put(item, block, timeout)


def bound_ingest(pc: RTCPeerConnection, track: MediaStreamTrack) -> IngestQueue | None:
    """Give the receiver of ``track`` an ``IngestQueue`` and a
    ``FrameJitterBuffer`` (``aiortc_patches``); call it before the peer
    connection starts receiving (in its ``track`` event). None if aiortc's
    internals are not as expected (nothing is bounded then)."""
    for receiver in pc.getReceivers():
        if receiver.track is track:
            return _bound_receiver(receiver, track.kind)
    return None


def _bound_receiver(receiver: RTCRtpReceiver, kind: str) -> IngestQueue | None:
    limit = INGEST_BACKLOG if kind == "video" else AUDIO_INGEST_BACKLOG
    bounded = aiortc_patches.replace_decoder_queue(
        receiver, lambda lost: IngestQueue(lost, limit=limit)
    )
    if bounded is None:
        logger.warning("cannot bound aiortc's %s decoder queue", kind)
        return None
    if not aiortc_patches.release_complete_frames(receiver, is_video=kind == "video"):
        logger.warning("cannot replace aiortc's %s jitter buffer", kind)
    return bounded


def viewer_tracks() -> tuple[PacketTrack, PacketTrack]:
    """A new WebRTC viewer's video and audio tracks (a show's broadcast's or an
    edge's)."""
    return (
        PacketTrack("video", limit=VIDEO_QUEUE_LIMIT),
        PacketTrack("audio", limit=AUDIO_QUEUE_LIMIT),
    )


def rendition_track() -> PacketTrack:
    """One lower rendition's track of an edge's pull, idle until the edge asks
    for that rendition (``PacketTrack.active``)."""
    track = PacketTrack("video", limit=VIDEO_QUEUE_LIMIT)
    track.active = False
    return track


def _restamped(packet: av.Packet[Any], pts: int) -> av.Packet[Any]:
    copy = av.Packet(bytes(packet))
    copy.pts = pts
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy


class PublisherState:
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    LOST = "lost"
    # The encoder said it stopped (WHIP DELETE): the show waits for it.
    STOPPED = "stopped"
    ENDED = "ended"


class PacketTrack(MediaStreamTrack):
    """A viewer's track: ``recv()`` returns already-encoded ``av.Packet[Any]`` objects,
    so aiortc's ``RTCRtpSender`` only packetizes them."""

    def __init__(self, kind: str, *, limit: int) -> None:
        super().__init__()
        self.kind = kind
        self._limit = limit
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()
        self._need_keyframe = kind == "video"
        self.delivered = 0
        self.skipped = 0
        # The rendition this viewer gets (0, the highest, to start with), and
        # the one it moves to at that rendition's next keyframe.
        self.rendition = 0
        self.switch_to: int | None = None
        # Whether the first packet this viewer got was a keyframe (video).
        self.first_keyframe: bool | None = None
        # Called as the first packet of another rendition leaves for the
        # sender (``switch``): its sender stops resending the old one's.
        self.on_switch: Callable[[], None] | None = None
        self._switch_packet: av.Packet[Any] | None = None
        self._mark_next = False
        # False: nothing is pushed (an edge's idle rendition); on again, it
        # starts at a keyframe.
        self.active = True
        self._last_pts: int | None = None

    @property
    def heading(self) -> int:
        """The rendition this viewer is on, or moving to."""
        return self.rendition if self.switch_to is None else self.switch_to

    def switch(self) -> None:
        """Move to ``switch_to`` now; the next packet pushed is its first."""
        if self.switch_to is not None:
            self.rendition, self.switch_to = self.switch_to, None
            self._mark_next = True

    def set_active(self, active: bool) -> None:
        if active and not self.active:
            self._need_keyframe = self.kind == "video"
        self.active = active

    def push(self, packet: av.Packet[Any]) -> None:
        if self.readyState != "live" or not self.active:
            return
        if self._queue.qsize() >= self._limit:
            # Fallen behind: drop what waits and resume at the next keyframe.
            while not self._queue.empty():
                self._queue.get_nowait()
                self.skipped += 1
            self._need_keyframe = self.kind == "video"
        if self._need_keyframe:
            if not packet.is_keyframe:
                self.skipped += 1
                return
            self._need_keyframe = False
        if self.first_keyframe is None:
            self.first_keyframe = bool(packet.is_keyframe)
        if self.kind == "video" and packet.pts is not None:
            if self._last_pts is not None and packet.pts <= self._last_pts:
                # An edge's renditions are each on the edge's clock to within
                # their arrival jitter: at a switch the new one's keyframe
                # may be stamped at or before the last frame sent. A
                # receiver drops a frame whose timestamp goes back.
                packet = _restamped(packet, self._last_pts + 1)
            self._last_pts = packet.pts
        if self._mark_next:
            self._switch_packet, self._mark_next = packet, False
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.delivered += 1
        if packet is self._switch_packet:
            self._switch_packet = None
            if self.on_switch is not None:
                self.on_switch()
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()


@dataclass
class Viewer:
    id: str
    pc: RTCPeerConnection
    video: PacketTrack
    audio: PacketTrack
    # False: always the highest rendition (an edge node pulling the show
    # for viewers of its own).
    adaptive: bool = True
    # Which rendition suits the viewer's link (None: one rendition only).
    ladder: LadderPolicy | None = None
    # An edge's pull: the tracks of renditions 1, 2, … (``video`` is
    # rendition 0), each sent only while the edge asks for it.
    lower: tuple[PacketTrack, ...] = ()

    def tracks(self) -> tuple[PacketTrack, ...]:
        return (self.video, self.audio, *self.lower)

    def rendition_of(self, track: object) -> int:
        """The rendition ``track`` (one of this viewer's) carries now."""
        if track in self.lower:
            return self.lower.index(track) + 1
        return self.video.heading


def follow_feedback(
    viewer: Viewer,
    sender: RTCRtpSender,
    *,
    slug: str,
    levels: int,
    rates: Callable[[float], list[float]],
    heading_to: Callable[[int], None],
) -> None:
    """Move ``viewer`` between ``levels`` renditions by what its receiver
    reports about ``sender`` (REMB, receiver reports): its ``LadderPolicy``
    decides from ``rates(now)``, what each rendition sends; the move happens
    at the target rendition's next keyframe, which ``heading_to(level)``
    asks for. A show's broadcast and an edge's relay both steer so."""
    policy = LadderPolicy(levels=levels, level=viewer.video.rendition)

    def steer() -> None:
        now = time.monotonic()
        level = policy.decide(now, rates(now))
        track = viewer.video
        if level == track.heading:
            return
        if level == track.rendition:
            track.switch_to = None  # changed its mind before the keyframe
            return
        track.switch_to = level
        heading_to(level)
        logger.info(
            "viewer %s of %s moves to rendition %d (estimate %s bit/s)",
            viewer.id,
            slug,
            level,
            policy.estimate,
        )

    def on_estimate(bitrate: int) -> None:
        policy.on_estimate(time.monotonic(), bitrate)
        steer()

    def on_loss(fraction: float) -> None:
        policy.on_loss(time.monotonic(), fraction)
        steer()

    if aiortc_patches.on_feedback(sender, estimate=on_estimate, loss=on_loss):
        viewer.ladder = policy
    else:
        logger.warning("cannot read viewers' RTCP: no rendition ladder")


@dataclass
class _Rendition:
    """One rung of the ladder: its encoder (used in the encode thread only),
    and, in the event loop, its keyframe requests and what it sends."""

    encoder: VideoEncoder
    keyframe_wanted: bool = True
    last_keyframe_at: float = 0.0
    rate: RateMeter = field(default_factory=RateMeter)


@dataclass
class _Counters:
    frames_in: int = 0
    frames_dropped: int = 0
    frames_encoded: int = 0
    keyframes: int = 0


@dataclass
class Broadcast:
    """The media state of one live show. Create it in the event loop it lives in;
    ``close()`` releases every peer connection, encoder, thread and file."""

    show_id: int
    slug: str
    config: VideoSettings
    with_audio: bool
    hls_dir: Path
    recording_path: Path
    segment_seconds: int
    grace_seconds: float
    on_publisher_state: StateCallback
    # False while the show rehearses: HLS and WebRTC run for the staff, and
    # the recording starts when the show goes public (``start_recording``).
    record: bool = True
    viewers: dict[str, Viewer] = field(default_factory=dict)
    publisher_id: str | None = None
    publisher_pc: RTCPeerConnection | None = None
    publisher_state: str = PublisherState.CONNECTING
    closed: bool = False
    counters: _Counters = field(default_factory=_Counters)

    def __post_init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"showfloor-encode-{self.slug}"
        )
        self._renditions = [
            _Rendition(VideoEncoder(self.config, rendition))
            for rendition in self.config.renditions
        ]
        self._video = self._renditions[0].encoder
        self._audio = AudioEncoder() if self.with_audio else None
        self.writer = ShowWriter(
            hls_dir=self.hls_dir,
            recording_path=self.recording_path,
            fps=self.config.fps,
            with_audio=self.with_audio,
            segment_seconds=self.segment_seconds,
            record=self.record,
            renditions=self.config.renditions,
        )
        self._t0 = time.monotonic()
        self.started_at = time.time()
        self._last_pts = -1
        self._in_flight = 0
        self._segment_ticks = self.segment_seconds * VIDEO_CLOCK
        self._segment_due: int | None = None
        self._ingest: IngestQueue | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._grace_task: asyncio.Task[None] | None = None

    # --- Publisher --------------------------------------------------------

    @property
    def publisher_active(self) -> bool:
        return self.publisher_state in (
            PublisherState.CONNECTING,
            PublisherState.CONNECTED,
        )

    async def attach_publisher(self, publisher_id: str, pc: RTCPeerConnection) -> None:
        """Make ``pc`` the publisher, replacing one that was lost."""
        old = self.publisher_pc
        self.publisher_id, self.publisher_pc = publisher_id, pc
        self.publisher_state = PublisherState.CONNECTING
        self._cancel_grace()

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            await self._publisher_state_changed(pc)

        if old is not None:
            await old.close()

    async def detach_publisher(self) -> None:
        """The publisher stopped streaming on purpose (OBS's "Stop streaming"
        sends WHIP DELETE): close its connection and wait for the next one. The
        broadcast, its HLS and its recording go on where they were; the show
        is not ended (the host or the sweeper does that)."""
        old, self.publisher_pc, self.publisher_id = self.publisher_pc, None, None
        self._cancel_grace()
        await self._set_publisher_state(PublisherState.STOPPED)
        if old is not None:
            await old.close()

    def add_publisher_track(
        self, pc: RTCPeerConnection, track: MediaStreamTrack
    ) -> None:
        if track.kind == "video":
            self._ingest = bound_ingest(pc, track)
            self._spawn(self._pump_video(pc, track))
        elif track.kind == "audio" and self._audio is not None:
            bound_ingest(pc, track)
            self._spawn(self._pump_audio(pc, track))

    async def _publisher_state_changed(self, pc: RTCPeerConnection) -> None:
        if pc is not self.publisher_pc or self.closed:
            return
        state = pc.connectionState
        if state == "connected":
            self._cancel_grace()
            await self._set_publisher_state(PublisherState.CONNECTED)
        elif state in ("failed", "closed", "disconnected"):
            if self.publisher_state in (
                PublisherState.RECONNECTING,
                PublisherState.LOST,
            ):
                return
            await self._set_publisher_state(PublisherState.RECONNECTING)
            self._grace_task = asyncio.create_task(self._grace_expiry())

    async def _grace_expiry(self) -> None:
        await asyncio.sleep(self.grace_seconds)
        if not self.closed and self.publisher_state == PublisherState.RECONNECTING:
            await self._set_publisher_state(PublisherState.LOST)

    def _cancel_grace(self) -> None:
        if self._grace_task is not None:
            self._grace_task.cancel()
            self._grace_task = None

    async def _set_publisher_state(self, state: str) -> None:
        self.publisher_state = state
        try:
            await self.on_publisher_state(state)
        except Exception:
            logger.exception("could not report the publisher state of %s", self.slug)

    def start_recording(self) -> None:
        """Record from the next keyframe on (asked for now), without touching
        the publisher's connection: a rehearsal just went public."""
        self.record = True
        self.writer.start_recording()
        self.request_keyframe(0)

    # --- Encode once ------------------------------------------------------

    def request_keyframe(self, rendition: int | None = None) -> None:
        """Ask for a keyframe from one rendition's encoder, or every one's."""
        for index, wanted in enumerate(self._renditions):
            if rendition is None or index == rendition:
                wanted.keyframe_wanted = True

    def _next_pts(self) -> int:
        pts = max(self._last_pts + 1, int((time.monotonic() - self._t0) * VIDEO_CLOCK))
        self._last_pts = pts
        return pts

    async def _pump_video(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while not self.closed and pc is self.publisher_pc:
                frame = await track.recv()
                if not isinstance(frame, av.VideoFrame):
                    continue
                self.counters.frames_in += 1
                if aiortc_patches.frames_waiting(track):
                    # A newer frame is already waiting (this process was
                    # starved for a moment): skip to it instead of encoding a
                    # backlog that would put every viewer behind.
                    self.counters.frames_dropped += 1
                    continue
                if self._in_flight >= ENCODE_IN_FLIGHT:
                    self.counters.frames_dropped += 1
                    continue
                pts = self._next_pts()
                now = time.monotonic()
                # A keyframe on every segment boundary of the show's clock, so
                # each HLS segment closes on time whatever frames were dropped;
                # and soon after a viewer asks for one.
                # Every rendition, so their HLS segments line up.
                segment = self._segment_due is None or pts >= self._segment_due
                if segment:
                    due = self._segment_due or pts
                    while due <= pts:
                        due += self._segment_ticks
                    self._segment_due = due
                keyframes = [
                    self._keyframe_due(rendition, segment, now)
                    for rendition in self._renditions
                ]
                self._in_flight += 1
                future = self._loop.run_in_executor(
                    self._executor, self._encode_video, frame, pts, keyframes
                )
                future.add_done_callback(self._video_encoded)

    @staticmethod
    def _keyframe_due(rendition: _Rendition, segment: bool, now: float) -> bool:
        """Whether this frame is a keyframe in ``rendition``: on a segment
        boundary, and soon after one of its viewers asked (requests merged)."""
        if segment or (
            rendition.keyframe_wanted
            and now - rendition.last_keyframe_at >= KEYFRAME_MIN_INTERVAL
        ):
            rendition.keyframe_wanted = False
            rendition.last_keyframe_at = now
            return True
        return False

    def _encode_video(
        self, frame: av.VideoFrame, pts: int, keyframes: list[bool]
    ) -> list[list[av.Packet[Any]]]:
        """In the encode thread: encode the frame once per rendition (each
        scales it to its own size), and hand the packets to the HLS and
        recording packager right here (a pipe write), without waiting for the
        event loop, which may be busy with the viewers. The packets, by
        rendition."""
        encoded: list[list[av.Packet[Any]]] = []
        for index, rendition in enumerate(self._renditions):
            packets = rendition.encoder.encode(frame, pts, keyframes[index])
            if (
                index == 0
                and not self.writer.started
                and any(packet.is_keyframe for packet in packets)
            ):
                self.writer.start(
                    sizes=[
                        r.encoder.open_for(frame.width, frame.height)
                        for r in self._renditions
                    ],
                    audio_extradata=self._audio.extradata if self._audio else None,
                    clock_origin=self.started_at,
                )
            for packet in packets:
                self.writer.put("video", packet, rendition=index)
            encoded.append(packets)
        return encoded

    def _video_encoded(
        self, future: asyncio.Future[list[list[av.Packet[Any]]]]
    ) -> None:
        self._in_flight -= 1
        if future.cancelled() or self.closed:
            return
        if (error := future.exception()) is not None:
            logger.error("video encode failed for %s: %s", self.slug, error)
            return
        self.deliver_video(future.result())

    def deliver_video(self, encoded: list[list[av.Packet[Any]]]) -> None:
        """Hand one frame's packets (by rendition, highest first) to the
        WebRTC viewers, each the rendition it is on. A viewer waiting to move
        to another rendition moves at this frame if that rendition's packet
        is a keyframe; the packets of a frame share their pts in every
        rendition, so each viewer's pts keep rising across a switch."""
        now = time.monotonic()
        for index, packets in enumerate(encoded):
            for packet in packets:
                self._renditions[index].rate.add(now, packet.size)
                if index == 0:
                    self.counters.frames_encoded += 1
                    if packet.is_keyframe:
                        self.counters.keyframes += 1
        for viewer in self.viewers.values():
            track = viewer.video
            target = track.switch_to
            if (
                target is not None
                and target < len(encoded)
                and any(packet.is_keyframe for packet in encoded[target])
            ):
                track.switch()
            if track.rendition < len(encoded):
                for packet in encoded[track.rendition]:
                    track.push(packet)
            for rendition, lower in enumerate(viewer.lower, start=1):
                if rendition < len(encoded):
                    for packet in encoded[rendition]:
                        lower.push(packet)

    async def _pump_audio(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        encoder = self._audio
        if encoder is None:
            return
        with contextlib.suppress(MediaStreamError):
            while not self.closed and pc is self.publisher_pc:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                # Stamped like video, by arrival on this show's clock.
                duration = (
                    frame.samples * AUDIO_RATE // (frame.sample_rate or AUDIO_RATE)
                )
                encoder.catch_up(
                    int((time.monotonic() - self._t0) * AUDIO_RATE) - duration
                )
                # Opus on 20 ms of audio takes well under a millisecond.
                for packet in encoder.encode(frame):
                    self.writer.put("audio", packet)
                    for viewer in self.viewers.values():
                        viewer.audio.push(packet)

    # --- Viewers ----------------------------------------------------------

    new_viewer_tracks = staticmethod(viewer_tracks)

    def add_viewer(self, viewer: Viewer) -> None:
        self.viewers[viewer.id] = viewer

        @viewer.pc.on("connectionstatechange")
        async def on_state() -> None:
            if viewer.pc.connectionState in ("failed", "closed"):
                await self.remove_viewer(viewer.id)

        for sender in viewer.pc.getSenders():
            # A viewer's PLI/FIR reaches its sender, which would force a
            # keyframe on its own encoder; our packets come from the shared
            # encoder instead, so the request is passed on to it (merged with
            # everybody else's), to the rendition the sender carries now.
            def keyframe_for_viewer(track: object = sender.track) -> None:
                self.request_keyframe(viewer.rendition_of(track))

            aiortc_patches.on_keyframe_request(sender, keyframe_for_viewer)
            if (
                sender.track is viewer.video
                and viewer.adaptive
                and len(self._renditions) > 1
            ):
                follow_feedback(
                    viewer,
                    sender,
                    slug=self.slug,
                    levels=len(self._renditions),
                    rates=self._rates,
                    heading_to=self.request_keyframe,
                )
        self.request_keyframe(viewer.video.rendition)

    def _rates(self, now: float) -> list[float]:
        return [rendition.rate.rate(now) for rendition in self._renditions]

    @property
    def rendition_count(self) -> int:
        return len(self._renditions)

    def set_link_renditions(self, viewer_id: str, wanted: set[int]) -> bool:
        """Send an edge's pull the lower renditions it asks for (``wanted``;
        rendition 0 always flows), each starting at a keyframe. False if
        ``viewer_id`` is not a pull with lower renditions."""
        viewer = self.viewers.get(viewer_id)
        if viewer is None or not viewer.lower:
            return False
        for rendition, track in enumerate(viewer.lower, start=1):
            if rendition in wanted and not track.active:
                self.request_keyframe(rendition)
            track.set_active(rendition in wanted)
        return True

    async def remove_viewer(self, viewer_id: str) -> bool:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        for track in viewer.tracks():
            track.stop()
        await viewer.pc.close()
        return True

    # --- Life cycle -------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def status(self) -> dict[str, Any]:
        return {
            "publisher": self.publisher_state,
            "viewers_webrtc": len(self.viewers),
            "started_at": int(self.started_at * 1000),
            "frames_in": self.counters.frames_in,
            "frames_encoded": self.counters.frames_encoded,
            "frames_dropped": self.counters.frames_dropped,
            "viewer_packets_skipped": sum(
                v.video.skipped + v.audio.skipped for v in self.viewers.values()
            ),
            "hls_packets_dropped": self.writer.dropped,
            "ingest_frames_skipped": self._ingest.skipped if self._ingest else 0,
            "size": list(self._video.size) if self._video.size else None,
            "renditions": [
                {
                    "size": list(r.encoder.size) if r.encoder.size else None,
                    "bitrate": int(r.rate.rate(time.monotonic())),
                    "viewers": sum(
                        1 for v in self.viewers.values() if v.video.rendition == index
                    ),
                }
                for index, r in enumerate(self._renditions)
            ],
            "recording": self.record,
        }

    async def close(self) -> None:
        """End the broadcast: every peer connection, task, encoder and file."""
        if self.closed:
            return
        self.closed = True
        self.publisher_state = PublisherState.ENDED
        self._cancel_grace()
        for viewer_id in list(self.viewers):
            await self.remove_viewer(viewer_id)
        if self.publisher_pc is not None:
            await self.publisher_pc.close()
            self.publisher_pc = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        for rendition in self._renditions:
            rendition.encoder.close()
        if self._audio is not None:
            self._audio.close()
        await asyncio.to_thread(self.writer.close)
