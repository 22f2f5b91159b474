"""The shared-packet tracks and the encoder, without any network."""

from __future__ import annotations

import fractions
import itertools
from typing import Any

import av
import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from live.media.aiortc_patches import FrameJitterBuffer, frames_waiting
from live.media.broadcast import PacketTrack
from live.media.codecs import VideoEncoder, VideoSettings, fit_size


def _packet(keyframe: bool, pts: int) -> av.Packet:
    packet = av.Packet(b"\x00\x00\x00\x01" + bytes(10))
    packet.pts = pts
    packet.time_base = fractions.Fraction(1, 90_000)
    packet.is_keyframe = keyframe
    return packet


async def test_viewer_starts_at_a_keyframe_and_skips_to_the_next_when_behind():
    """A video track drops everything before its first keyframe; when its queue
    is full it empties it and waits for the next keyframe instead of queueing."""
    track = PacketTrack("video", limit=3)
    track.push(_packet(False, 1))
    track.push(_packet(True, 2))
    track.push(_packet(False, 3))
    assert track.first_keyframe is True
    assert (await track.recv()).pts == 2
    track.push(_packet(False, 4))
    track.push(_packet(False, 5))  # queue: 3, 4, 5 (full)
    track.push(_packet(False, 6))  # behind: drop all, wait for a keyframe
    track.push(_packet(False, 7))
    track.push(_packet(True, 8))
    assert (await track.recv()).pts == 8
    assert track.skipped >= 5
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_audio_track_sheds_old_packets_without_waiting_for_keyframes():
    """Audio has no keyframes: a full queue is emptied and playback goes on."""
    track = PacketTrack("audio", limit=2)
    for pts in range(5):
        track.push(_packet(True, pts))
    assert (await track.recv()).pts == 4
    track.stop()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (1280, 720)),
        ((640, 480), (640, 480)),
        # A phone held upright keeps its orientation at the full size.
        ((1081, 1921), (720, 1278)),
        ((1080, 1920), (720, 1280)),
        ((480, 640), (480, 640)),
        ((2000, 2000), (720, 720)),
    ],
)
def test_fit_size_keeps_aspect_and_even_dimensions(size, expected):
    assert fit_size(*size, max_width=1280, max_height=720) == expected


def test_encoder_makes_keyframes_on_demand_and_every_two_seconds():
    """H.264 packets carry their time base; the first frame, a requested one
    and, as a fallback, every 60th after it are keyframes, each starting with
    in-band SPS (the broadcast asks for one on every segment boundary)."""
    encoder = VideoEncoder(
        VideoSettings(
            max_width=320, max_height=240, fps=30, bitrate=300_000, preset="ultrafast"
        )
    )
    keyframes = []
    for index in range(105):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([index * 5 % 256]) * plane.buffer_size)
        for packet in encoder.encode(frame, index * 3000, keyframe=index == 40):
            assert packet.time_base == fractions.Fraction(1, 90_000)
            if packet.is_keyframe:
                keyframes.append((packet.pts or 0) // 3000)
                assert bytes(packet)[4] & 0x1F == 7  # SPS first
    encoder.close()
    assert keyframes == [0, 40, 100]


async def test_backlog_detection_still_sees_aiortcs_receiving_queue():
    """The ingest skips to the newest waiting frame by looking at aiortc's
    receiving track queue; this fails if aiortc renames it."""
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    track = RemoteStreamTrack(kind="video")
    assert frames_waiting(track) == 0
    await track._queue.put(av.VideoFrame(16, 16, "yuv420p"))
    await track._queue.put(av.VideoFrame(16, 16, "yuv420p"))
    await track.recv()
    assert frames_waiting(track) == 1


def _encoded(data: bytes) -> tuple[object, object]:
    from aiortc.codecs import get_capabilities
    from aiortc.jitterbuffer import JitterFrame

    h264 = next(
        c for c in get_capabilities("video").codecs if c.mimeType == "video/H264"
    )
    return h264, JitterFrame(data, 0)


def test_ingest_queue_drops_a_backlog_and_resumes_at_a_keyframe():
    """When the decoder falls behind by the limit, the waiting frames are
    dropped, the picture is reported lost (aiortc then sends a PLI) and frames
    are skipped until the next keyframe."""
    import threading

    from live.media.broadcast import IngestQueue

    lost = threading.Event()
    ingest = IngestQueue(lost, limit=3)
    delta = b"\x00\x00\x00\x01\x41" + bytes(20)
    key = b"\x00\x00\x00\x01\x67" + bytes(8) + b"\x00\x00\x00\x01\x65" + bytes(20)
    for _ in range(3):
        ingest.put(_encoded(delta))
    assert ingest.qsize() == 3
    assert not lost.is_set()

    ingest.put(_encoded(delta))
    ingest.put(_encoded(delta))
    assert ingest.qsize() == 0
    assert lost.is_set()
    ingest.put(_encoded(key))
    ingest.put(_encoded(delta))
    assert ingest.qsize() == 2
    assert ingest.skipped == 5
    assert ingest.get_nowait()[1].data == key


async def test_ingest_bound_reaches_aiortcs_decoder_queue():
    """The bound replaces the publisher receiver's decoder queue before it
    starts; this fails if aiortc renames what it relies on."""
    from aiortc import RTCPeerConnection

    from live.media.broadcast import IngestQueue, _bound_receiver

    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        bounded = _bound_receiver(transceiver.receiver, "video")
        assert isinstance(bounded, IngestQueue)
        receiver: Any = transceiver.receiver  # the queue is private to aiortc
        assert receiver._RTCRtpReceiver__decoder_queue is bounded
        assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, FrameJitterBuffer)
    finally:
        await pc.close()


def _rtp(sequence: int, timestamp: int, *, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(sequence_number=sequence, timestamp=timestamp, marker=marker)
    packet._data = bytes([sequence % 256])  # type: ignore[attr-defined]  # aiortc's depayloader sets it
    return packet


def test_a_video_frame_is_released_at_its_last_packet_not_the_next_frames():
    """Three packets, the last with the marker bit: the frame comes out with
    that packet (aiortc waits for the next frame's first packet)."""
    buffer = FrameJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_rtp(10, 3000))[1] is None
    assert buffer.add(_rtp(11, 3000))[1] is None
    frame = buffer.add(_rtp(12, 3000, marker=True))[1]
    assert frame is not None
    assert (frame.timestamp, frame.data) == (3000, bytes([10, 11, 12]))
    plain = JitterBuffer(capacity=128, is_video=True)
    assert [plain.add(_rtp(n, 3000, marker=n == 12))[1] for n in (10, 11, 12)] == [
        None
    ] * 3


def test_frames_come_out_whole_and_in_order_when_packets_arrive_out_of_order():
    """The marker arrives before a packet of its frame: nothing until the
    frame is whole. A sender that sets no marker bits gets aiortc's way: the
    frame comes out with the next frame's first packet."""
    buffer = FrameJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_rtp(20, 6000))[1] is None
    assert buffer.add(_rtp(22, 6000, marker=True))[1] is None
    frame = buffer.add(_rtp(21, 6000))[1]
    assert frame is not None
    assert frame.data == bytes([20, 21, 22])
    assert buffer.add(_rtp(23, 9000))[1] is None
    assert buffer.add(_rtp(24, 9000))[1] is None  # no marker bit
    unmarked = buffer.add(_rtp(25, 12000))[1]
    assert unmarked is not None
    assert (unmarked.timestamp, unmarked.data) == (9000, bytes([23, 24]))


def test_an_audio_frame_is_released_as_its_packet_arrives():
    """Audio: one packet, one frame, out at once (aiortc holds four back);
    one that overtook a late packet waits for it."""
    buffer = FrameJitterBuffer(capacity=16)
    frame = buffer.add(_rtp(1, 960))[1]
    assert frame is not None
    assert frame.timestamp == 960
    assert buffer.add(_rtp(3, 2880))[1] is None
    assert buffer.add(_rtp(2, 1920))[1].timestamp == 1920
    assert buffer.add(_rtp(4, 3840))[1].timestamp == 2880
    plain = JitterBuffer(capacity=16, prefetch=4)
    assert plain.add(_rtp(1, 960))[1] is None


def _audio(samples: int = 960) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = 48_000
    return frame


def test_the_audio_clock_follows_arrival_when_every_frame_of_a_window_lagged():
    """Audio stamped from its first frame, which came early (a burst): the
    clock moves up by the smallest lag of a window of frames, not by each
    frame's own delay, and a single late frame moves nothing."""
    from live.media.codecs import (
        AUDIO_LAG_WINDOW,
        AUDIO_MAX_LAG,
        AUDIO_MIN_LAG,
        AudioEncoder,
    )

    encoder = AudioEncoder()
    try:
        stamps: list[int] = []

        def arrive(arrival: int) -> None:
            encoder.catch_up(arrival - 960)
            stamps.extend(int(packet.pts or 0) for packet in encoder.encode(_audio()))

        arrive(10_000)
        lag = 40 * 48  # 40 ms, under AUDIO_MAX_LAG
        assert AUDIO_MIN_LAG < lag < AUDIO_MAX_LAG
        arrivals = [10_000 + 960 * n + lag for n in range(1, AUDIO_LAG_WINDOW + 3)]
        arrivals[5] += 20 * 48  # one frame later still
        for arrival in arrivals:
            arrive(arrival)
        # Opus may hand a packet out a frame later; the steps are what count.
        steps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
        assert stamps[0] + 312 == 9_040  # Opus's pre-skip
        assert sorted(set(steps)) == [960, 960 + lag]
        assert steps.count(960 + lag) == 1
        assert steps.index(960 + lag) >= AUDIO_LAG_WINDOW - 2
    finally:
        encoder.close()


def test_ingest_queue_ends_aiortcs_decoder_thread_when_the_process_exits(
    monkeypatch,
):
    """aiortc's decoder threads are not daemons: once the main thread has
    finished, a blocking get returns aiortc's stop signal instead of waiting
    forever (a stopped server would never exit)."""
    import threading

    from live.media import broadcast

    finished = threading.Thread(target=lambda: None)
    finished.start()
    finished.join()
    monkeypatch.setattr(broadcast, "INGEST_POLL_SECONDS", 0.05)
    ingest = broadcast.IngestQueue(threading.Event(), limit=3)
    ingest.put(_encoded(b"\x00\x00\x00\x01\x65"))
    assert ingest.get() is not None
    monkeypatch.setattr(threading, "main_thread", lambda: finished)
    assert ingest.get() is None
