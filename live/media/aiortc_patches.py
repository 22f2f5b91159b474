"""Everything this project reads or replaces inside aiortc, and why.

aiortc has no public hook for any of these, so they live here and nowhere else
(``tests/live/media/test_patches.py`` fails if another media module reaches
into aiortc). They were checked against the aiortc in
``live.versions.CHECKED_VERSIONS``, which the process asserts at startup; the
tests named below fail if a name moves.

- The publisher's ``RTCRtpReceiver``: its decoder queue
  (``__decoder_queue``, with ``__decoder_error`` and ``__decoder_thread``) is
  unbounded, so a starved process fell seconds behind the host; the broadcast
  puts its bounded ``IngestQueue`` there (``replace_decoder_queue``). Its
  jitter buffer (``__jitter_buffer``) releases each frame late; it becomes a
  ``FrameJitterBuffer`` (``release_complete_frames``), which subclasses
  aiortc's ``JitterBuffer`` and reads its state (``_origin``, ``_capacity``,
  ``_packets``, ``_is_video``) and the depayloaded ``RtpPacket._data``.
  ``test_broadcast.py``: ``test_ingest_bound_reaches_aiortcs_decoder_queue``.
- The receiving track's queue (``RemoteStreamTrack._queue``): how many decoded
  frames wait, so the ingest skips a backlog (``frames_waiting``).
  ``test_backlog_detection_still_sees_aiortcs_receiving_queue``.
- A sender's keyframe requests (``RTCRtpSender._send_keyframe``, called on a
  PLI or FIR): our viewers' packets come from one shared encoder, so the
  request has to reach it (``on_keyframe_request``).
- A sender's RTCP (``RTCRtpSender._handle_rtcp_packet``): the viewer's
  bandwidth estimates (REMB) and receiver reports' fraction lost, which
  aiortc reads for its own encoder only; the rendition ladder needs them
  (``on_feedback``; ``test_ladder.py``).
- A sender's retransmissions (``RTCRtpSender._retransmit``, called for
  each packet a NACK names, and its RTT ``__rtt``): limited per packet and
  per second (``limit_retransmissions``; ``test_networks.py``).
- The ICE transport's aioice connection (``RTCIceTransport._connection``), to
  find the publisher's sockets (``ice_connection``; ``test_network.py``).

Nothing here is patched globally, so there is no ``apply()``: each change is
made on one object when the media code asks for it, and reports failure (the
caller keeps aiortc's behaviour) when aiortc's internals are not as expected.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import aioice
from aiortc import MediaStreamTrack, RTCIceTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

QueueT = TypeVar("QueueT", bound="queue.Queue[Any]")
# Retransmissions one viewer's sender may make a second (a 2 Mbit/s stream
# is about 200 packets a second).
RETRANSMIT_PER_SECOND = 100.0


class FrameJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer for what the publisher sends, releasing each
    frame as soon as it is complete and every frame before it has been
    released. aiortc releases a video frame only when the next frame's first
    packet arrives (33 ms later at 30 fps), and an audio frame once four more
    have arrived (80 ms); so video reached viewers and HLS a frame late, and
    audio was stamped well after video captured at the same moment.

    Here a video frame is complete at its packet with the RTP marker bit
    (RFC 6184, RFC 7741), an audio frame is its one packet. Order is kept: a
    packet that arrives late but within the buffer still holds back what
    follows it; a frame without a marker bit is released the old way, by the
    next frame; a lost packet holds things up as in aiortc, until a NACK, a
    PLI or the buffer's capacity moves on. This process re-encodes what it
    receives rather than playing it, so it needs no playout delay; the
    viewers' players keep their own jitter buffers."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is None and self._origin is not None:
            frame = self._complete_frame(self._origin)
        return pli_flag, frame

    def _complete_frame(self, origin: int) -> JitterFrame | None:
        """The frame at the head of the buffer (``origin``), removed, if every
        packet of it is here up to its last."""
        parts: list[bytes] = []
        timestamp = None
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is not None and packet.timestamp != timestamp:
                return None
            timestamp = packet.timestamp
            parts.append(packet._data)  # type: ignore[attr-defined]
            if packet.marker or not self._is_video:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(parts), timestamp=timestamp)
        return None


def replace_decoder_queue(
    receiver: RTCRtpReceiver, make: Callable[[threading.Event], QueueT]
) -> QueueT | None:
    """Put ``make(lost)`` where the receiver queues encoded frames for its
    decoder thread; ``lost`` is the event that, once set, makes the receiver
    send a PLI. Call it before the receiver starts (in the peer connection's
    ``track`` event); None, and nothing changed, if it has started or aiortc's
    internals are not as expected."""
    lost = getattr(receiver, "_RTCRtpReceiver__decoder_error", None)
    current = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
    started = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
    if (
        not isinstance(lost, threading.Event)
        or not isinstance(current, queue.Queue)
        or not current.empty()
        or started is not None
    ):
        return None
    replacement = make(lost)
    receiver._RTCRtpReceiver__decoder_queue = replacement  # type: ignore[attr-defined]
    return replacement


def release_complete_frames(receiver: RTCRtpReceiver, *, is_video: bool) -> bool:
    """Give the receiver a ``FrameJitterBuffer`` of the same capacity; False,
    and aiortc's own stays, if its internals are not as expected or it has
    received something already."""
    current = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
    if type(current) is not JitterBuffer or current._origin is not None:
        return False
    receiver._RTCRtpReceiver__jitter_buffer = FrameJitterBuffer(  # type: ignore[attr-defined]
        capacity=current.capacity, is_video=is_video
    )
    return True


def frames_waiting(track: MediaStreamTrack) -> int:
    """Decoded frames queued behind the one just received from a remote
    track (aiortc keeps them in an unbounded ``asyncio.Queue``); 0 if the
    track has no such queue."""
    frames = getattr(track, "_queue", None)
    return frames.qsize() if isinstance(frames, asyncio.Queue) else 0


def no_bandwidth_estimate(receiver: RTCRtpReceiver) -> bool:
    """Stop ``receiver`` estimating the bandwidth (aiortc's receive-side
    estimator runs in Python on every packet, to send REMB nobody reads on a
    link between media nodes). False if aiortc's internals are not as
    expected."""
    name = "_RTCRtpReceiver__remote_bitrate_estimator"
    if not hasattr(receiver, name):
        return False
    setattr(receiver, name, None)
    return True


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the remote side asks ``sender`` for a
    keyframe (a PLI or FIR), after aiortc's own handling (which only forces a
    keyframe on the sender's encoder, unused when a track yields packets)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def on_feedback(
    sender: RTCRtpSender,
    *,
    estimate: Callable[[int], None],
    loss: Callable[[float], None],
) -> bool:
    """Call ``estimate(bits_per_second)`` for every REMB the remote side sends
    about ``sender``'s stream, and ``loss(fraction)`` for every receiver
    report block about it, before aiortc's own handling. False, and nothing
    changed, if aiortc's internals are not as expected."""
    original = getattr(sender, "_handle_rtcp_packet", None)
    if original is None or not isinstance(getattr(sender, "_ssrc", None), int):
        return False

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == sender._ssrc:
                    loss(report.fraction_lost / 256)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if sender._ssrc in ssrcs:
                estimate(bitrate)
        await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    return True


def limit_retransmissions(
    sender: RTCRtpSender,
    *,
    per_second: float = RETRANSMIT_PER_SECOND,
    default_rtt: float = 0.05,
) -> Callable[[], None] | None:
    """Resend a packet a NACK names (aiortc's ``RTCRtpSender._retransmit``)
    at most once per round trip (the sender's RTT from receiver reports,
    ``default_rtt`` until one is known), and at most ``per_second`` packets a
    second in all (a token bucket holding half a second), as browsers'
    senders do. aiortc resends every packet every time it is named: a
    receiver that lists all it misses at every new gap (aiortc's own does)
    turned a rate-capped viewer's losses into a retransmission storm on its
    link. What is not resent is asked for again or ends in a PLI.

    Returns ``forget``: once called, no packet sent before the call is resent
    (a viewer moved to another rendition needs none of the old one's: behind
    a capped link their resends took the budget's 0.9 Mbit/s and kept the new
    rendition's keyframe out for seconds). None, and nothing changed, if
    aiortc's internals are not as expected."""
    original = getattr(sender, "_retransmit", None)
    history = getattr(sender, "_RTCRtpSender__rtp_history", None)
    if original is None or not isinstance(history, dict):
        return None
    resent: dict[int, float] = {}
    bucket = {"tokens": per_second / 2, "at": time.monotonic()}
    # The RTP timestamp of the last packet sent when ``forget`` was called.
    floor: dict[str, int | None] = {"timestamp": None}

    def forget() -> None:
        last = getattr(sender, "_RTCRtpSender__rtp_timestamp", None)
        floor["timestamp"] = last if isinstance(last, int) else None

    def forgotten(sequence_number: int) -> bool:
        stop = floor["timestamp"]
        packet = history.get(sequence_number % RTP_HISTORY_SIZE)
        if stop is None or not isinstance(packet, RtpPacket):
            return False
        # At or before ``stop``, in RTP's wrapping 32-bit arithmetic.
        return (stop - packet.timestamp) % 2**32 < 2**31

    async def retransmit(sequence_number: int) -> None:
        if forgotten(sequence_number):
            return
        now = time.monotonic()
        rtt = getattr(sender, "_RTCRtpSender__rtt", None)
        interval = max(0.01, rtt if isinstance(rtt, float) else default_rtt)
        if now - resent.get(sequence_number, -interval) < interval:
            return
        tokens = min(
            per_second / 2, bucket["tokens"] + (now - bucket["at"]) * per_second
        )
        bucket["at"] = now
        if tokens < 1:
            bucket["tokens"] = tokens
            return
        bucket["tokens"] = tokens - 1
        resent[sequence_number] = now
        if len(resent) > 1024:
            for seq, at in list(resent.items()):
                if now - at > 1.0:
                    del resent[seq]
        await original(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]
    return forget


def ice_connection(transport: RTCIceTransport) -> aioice.Connection | None:
    """The aioice connection behind an ICE transport, or None."""
    connection = getattr(transport, "_connection", None)
    return connection if isinstance(connection, aioice.Connection) else None
