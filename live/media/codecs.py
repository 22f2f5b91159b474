"""The one video and one audio encoder of a live show (PyAV).

Each instance is confined to one worker thread: the broadcast calls ``encode``
from its encode executor only. Packets come out with ``time_base`` set, which is
all aiortc's packetizer (``H264Encoder.pack`` / ``OpusEncoder.pack``) needs.
"""

from __future__ import annotations

import fractions
from collections import deque
from dataclasses import dataclass
from typing import Any

import av
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler
from av.video.frame import PictureType
from django.conf import settings

VIDEO_CLOCK = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48_000
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AUDIO_BITRATE = 64_000
# 20 ms of audio per Opus packet, as WebRTC expects.
OPUS_FRAME_SAMPLES = 960
# How far the audio clock may fall behind the arrival of one frame before it
# is moved up at once (100 ms: a pause, a reconnect).
AUDIO_MAX_LAG = AUDIO_RATE // 10
# Smaller lags are corrected once they hold for a whole window of frames (the
# least-delayed frame of the window sets the lag: the event loop's own delays
# come and go, a clock that runs behind stays).
AUDIO_LAG_WINDOW = 50
AUDIO_MIN_LAG = AUDIO_RATE // 200


@dataclass(frozen=True)
class Rendition:
    """One rung of the ladder: its name (in HLS file names), size cap and
    bit rate."""

    name: str
    max_width: int
    max_height: int
    bitrate: int


@dataclass(frozen=True)
class VideoSettings:
    max_width: int
    max_height: int
    fps: int
    bitrate: int
    preset: str
    # The lower rendition's bit rate; 0: no ladder, one rendition as before.
    low_bitrate: int = 0
    low_max_width: int = 640
    low_max_height: int = 360

    @classmethod
    def from_settings(cls) -> VideoSettings:
        return cls(
            max_width=settings.SHOWFLOOR_VIDEO_MAX_WIDTH,
            max_height=settings.SHOWFLOOR_VIDEO_MAX_HEIGHT,
            fps=settings.SHOWFLOOR_VIDEO_FPS,
            bitrate=settings.SHOWFLOOR_VIDEO_BITRATE,
            preset=settings.SHOWFLOOR_VIDEO_PRESET,
            low_bitrate=(
                settings.SHOWFLOOR_VIDEO_LOW_BITRATE
                if settings.SHOWFLOOR_VIDEO_LADDER
                else 0
            ),
            low_max_width=settings.SHOWFLOOR_VIDEO_LOW_MAX_WIDTH,
            low_max_height=settings.SHOWFLOOR_VIDEO_LOW_MAX_HEIGHT,
        )

    @property
    def renditions(self) -> tuple[Rendition, ...]:
        """Highest first: the first is what the recording keeps."""
        high = Rendition("high", self.max_width, self.max_height, self.bitrate)
        if self.low_bitrate <= 0:
            return (high,)
        low = Rendition(
            "low",
            min(self.low_max_width, self.max_width),
            min(self.low_max_height, self.max_height),
            self.low_bitrate,
        )
        return (high, low)


def fit_size(
    width: int, height: int, *, max_width: int, max_height: int
) -> tuple[int, int]:
    """The largest even size within the limits that keeps the aspect ratio.
    The limits bound the long and the short side, whichever way the camera is
    held: a phone upright gets 720 x 1280, not a 404 x 720 picture that
    viewers' upright screens show small."""
    long_side, short_side = max(max_width, max_height), min(max_width, max_height)
    if height > width:
        max_width, max_height = short_side, long_side
    else:
        max_width, max_height = long_side, short_side
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


class VideoEncoder:
    """H.264 (libx264, baseline, ``zerolatency``): a keyframe whenever
    ``keyframe=True`` is asked for (the broadcast asks on every HLS segment
    boundary), and at least every two seconds. SPS/PPS are repeated in-band
    with every keyframe, so a viewer that joins decodes from its first one.
    One per rendition (``config.renditions``), each scaling the decoded
    frame to its own size."""

    def __init__(
        self, config: VideoSettings, rendition: Rendition | None = None
    ) -> None:
        self.config = config
        self.rendition = rendition or config.renditions[0]
        self._codec: av.VideoCodecContext | None = None
        self.size: tuple[int, int] | None = None

    def open_for(self, width: int, height: int) -> tuple[int, int]:
        """Open the encoder for a source of this size (once); its output size."""
        if self._codec is None:
            self._codec = self._open(width, height)
        return self._codec.width, self._codec.height

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        size = fit_size(
            width,
            height,
            max_width=self.rendition.max_width,
            max_height=self.rendition.max_height,
        )
        bitrate = self.rendition.bitrate
        codec = av.VideoCodecContext.create("libx264", "w")
        codec.width, codec.height = size
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = fractions.Fraction(self.config.fps, 1)
        codec.bit_rate = bitrate
        # A fallback only: x264 counting frames would put its own keyframe
        # just before a segment boundary whenever frames arrive early.
        gop = 2 * self.config.fps
        codec.options = {
            "preset": self.config.preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "level": "31" if size[0] * size[1] <= 1280 * 720 else "40",
            "x264-params": (
                f"keyint={gop}:min-keyint={self.config.fps}:scenecut=0"
                ":repeat-headers=1"
                f":vbv-maxrate={bitrate // 1000}"
                f":vbv-bufsize={bitrate // 1000}"
            ),
        }
        codec.open()
        self.size = size
        return codec

    def encode(
        self, frame: av.VideoFrame, pts: int, keyframe: bool
    ) -> list[av.Packet[Any]]:
        codec = self._codec
        if codec is None:
            codec = self._codec = self._open(frame.width, frame.height)
        width, height = codec.width, codec.height
        if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        packets = codec.encode(frame)
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
        return packets

    def close(self) -> None:
        self._codec = None


class AudioEncoder:
    """Opus, 48 kHz stereo, 20 ms packets, with its own sample clock."""

    def __init__(self, bitrate: int = AUDIO_BITRATE) -> None:
        self._codec = av.AudioCodecContext.create("libopus", "w")
        self._codec.sample_rate = AUDIO_RATE
        self._codec.layout = "stereo"
        self._codec.format = "s16"
        self._codec.time_base = AUDIO_TIME_BASE
        self._codec.bit_rate = bitrate
        self._codec.open()
        self._resampler = AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)
        self._fifo = AudioFifo()
        self._samples = 0
        self._lags: deque[int] = deque(maxlen=AUDIO_LAG_WINDOW)
        self.extradata = self._codec.extradata

    def encode(self, frame: av.AudioFrame) -> list[av.Packet[Any]]:
        packets: list[av.Packet[Any]] = []
        frame.pts = None
        for resampled in self._resampler.resample(frame):
            resampled.pts = None
            self._fifo.write(resampled)
        while (chunk := self._fifo.read(OPUS_FRAME_SAMPLES)) is not None:
            chunk.pts = self._samples
            chunk.time_base = AUDIO_TIME_BASE
            self._samples += OPUS_FRAME_SAMPLES
            packets.extend(self._codec.encode(chunk))
        for packet in packets:
            packet.time_base = AUDIO_TIME_BASE
        return packets

    def catch_up(self, samples: int) -> None:
        """Align the next frame with ``samples``, its arrival on the show's
        clock, if the sample clock has fallen behind: at once by more than
        ``AUDIO_MAX_LAG`` (audio starts flowing a moment after it is
        negotiated, pauses when the publisher reconnects), and by the smallest
        lag of the last ``AUDIO_LAG_WINDOW`` frames when all of them lagged
        ``AUDIO_MIN_LAG`` or more (the first frames arrived in a burst, or the
        publisher's clock runs slow). Audio behind video puts the two out of
        sync and makes the HLS and recording muxers hold every video packet
        back until audio passes it."""
        queued = self._fifo.samples
        lag = samples - (self._samples + queued)
        if lag > AUDIO_MAX_LAG:
            self._samples += lag
            self._lags.clear()
            return
        self._lags.append(lag)
        if len(self._lags) == AUDIO_LAG_WINDOW and min(self._lags) >= AUDIO_MIN_LAG:
            self._samples += min(self._lags)
            self._lags.clear()

    def close(self) -> None:
        self._fifo = AudioFifo()
