"""HLS packaging and recording from the already-encoded packets (no encode here).

A child process per live show (``python -m live.media.muxing``) owns both
containers: the sliding HLS playlist (fMP4 segments of about one second,
``EXT-X-PROGRAM-DATE-TIME`` on each) and the recording (fragmented MP4, playable
even if a process dies mid-show). It has its own interpreter, so muxing never
waits for the media process's GIL (which the event loop holds most of the time
under load) and a segment is listed the moment the keyframe that closes it
arrives.

The broadcast writes each packet straight into the child's stdin from the
thread that produced it (a header and the packet's bytes in one ``writev``; no
queue, no extra thread hop). The pipe holds about four seconds of video; if the
child falls that far behind, packets are dropped and counted, and video resumes
at the next keyframe, so a slow disk never blocks the encoder.

With the rendition ladder each rendition gets its own HLS media playlist and
segments (the first keeps the names ``index.m3u8``, ``init.mp4``,
``seg-NNNNN.m4s``; the others are prefixed with their name, ``low-index.m3u8``
…), each with the same audio, and ``master.m3u8`` lists them all
(``#EXT-X-STREAM-INF`` with bandwidth, resolution and codecs) once each has a
segment. The recording keeps the first, highest rendition only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import struct
import subprocess  # nosec B404 - the muxer child is this module
import sys
import termios
import threading
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av

from live.media.codecs import AUDIO_BITRATE, AUDIO_RATE, VIDEO_CLOCK, Rendition

logger = logging.getLogger(__name__)

PLAYLIST_NAME = "index.m3u8"
# What players load: every rendition's media playlist.
MASTER_PLAYLIST = "master.m3u8"
# FFmpeg's own playlist, republished as ``PLAYLIST_NAME`` (never served).
FFMPEG_PLAYLIST = "ffmpeg.m3u8"
PROGRAM_DATE_TIME = re.compile(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)")
# The files players may fetch (``live/views.py``, ``deploy/nginx.conf``).
HLS_FILE = re.compile(
    r"^(master\.m3u8|(low-)?(index\.m3u8|init\.mp4|seg-\d{5,9}\.m4s))$"
)
# BANDWIDTH is a peak: the encoders' VBV cap, audio, and the container.
CONTAINER_OVERHEAD = 1.1
# One packet on the pipe: kind (0 video, 1 audio), flags (bit 0: keyframe,
# the rest: the video rendition's index), pts, length.
HEADER = struct.Struct("!BBqI")
VIDEO, AUDIO = 0, 1
# Kind of the empty message that starts the recording (after a rehearsal).
RECORD = 2
PIPE_BYTES = 1 << 20
# Room kept free in the pipe: Linux counts its capacity in pages, so a little
# less than ``capacity - queued`` may be writable without blocking.
PIPE_MARGIN = 64 * 1024
CLOSE_TIMEOUT = 10.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ShowWriter:
    """Feeds the HLS playlist and the recording of one live show to its
    packager process. ``put`` may be called from any thread."""

    def __init__(
        self,
        *,
        hls_dir: Path,
        recording_path: Path,
        fps: int,
        with_audio: bool,
        segment_seconds: int,
        playlist_size: int = 6,
        record: bool = True,
        renditions: tuple[Rendition, ...] = (),
    ) -> None:
        self.hls_dir = hls_dir
        self.recording_path = recording_path
        self._fps = fps
        self._with_audio = with_audio
        self._segment_seconds = segment_seconds
        self._playlist_size = playlist_size
        self._renditions = renditions or (Rendition("high", 0, 0, 0),)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._need_keyframe = [True] * len(self._renditions)
        self._closed = False
        self._record = record
        self.dropped = 0
        self.failed = False

    def start(
        self,
        *,
        sizes: list[tuple[int, int]],
        audio_extradata: bytes | None,
        clock_origin: float,
    ) -> None:
        """Start the packager once the video sizes (by rendition) are known.
        ``clock_origin``: the Unix time of pts 0."""
        with self._lock:
            if self._process is not None or self._closed:
                return
            config = {
                "hls_dir": str(self.hls_dir),
                "recording_path": str(self.recording_path),
                "size": list(sizes[0]),
                "renditions": [
                    {
                        "name": rendition.name,
                        "size": list(size),
                        "bitrate": rendition.bitrate,
                    }
                    for rendition, size in zip(self._renditions, sizes, strict=True)
                ],
                "audio_bitrate": AUDIO_BITRATE,
                "fps": self._fps,
                "clock_origin": clock_origin,
                "segment_seconds": self._segment_seconds,
                "playlist_size": self._playlist_size,
                "record": self._record,
                "video_clock": VIDEO_CLOCK,
                "audio_rate": AUDIO_RATE,
                "audio_extradata": (
                    audio_extradata.hex()
                    if self._with_audio and audio_extradata is not None
                    else None
                ),
            }
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
            )
            self._process = subprocess.Popen(  # nosec B603 - this module, fixed argv
                [sys.executable, "-m", "live.media.muxing"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                env=env,
            )
            self._pipe = self._process.stdin
            try:
                fcntl.fcntl(self._fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:  # pragma: no cover - a lower pipe-max-size
                logger.warning("could not enlarge the packager pipe")
            self._write([json.dumps(config).encode() + b"\n"])

    def start_recording(self) -> None:
        """Start the recording at the next keyframe (a rehearsal went live):
        the HLS playlist goes on as it was."""
        with self._lock:
            if self._record:
                return
            self._record = True
            if self._pipe is not None:
                self._write([HEADER.pack(RECORD, 0, 0, 0)])

    @property
    def recording(self) -> bool:
        return self._record

    @property
    def started(self) -> bool:
        return self._process is not None or self._closed

    def put(self, kind: str, packet: av.Packet[Any], rendition: int = 0) -> None:
        """Queue ``packet`` (of video ``rendition``) for the packager."""
        if self.failed or packet.pts is None:
            return
        keyframe = bool(packet.is_keyframe)
        with self._lock:
            if self._pipe is None:
                return
            if kind == "video":
                if rendition >= len(self._need_keyframe):
                    return
                if self._need_keyframe[rendition] and not keyframe:
                    self.dropped += 1
                    return
                self._need_keyframe[rendition] = False
            header = HEADER.pack(
                VIDEO if kind == "video" else AUDIO,
                keyframe | (rendition << 1 if kind == "video" else 0),
                int(packet.pts),
                packet.size,
            )
            if not self._has_room(HEADER.size + packet.size):
                # The packager is behind: drop rather than block the encoder.
                self.dropped += 1
                self._need_keyframe = [True] * len(self._need_keyframe)
                return
            self._write([header, memoryview(packet)])

    def _fileno(self) -> int:
        if self._pipe is None:
            raise RuntimeError("the packager is not running")
        return self._pipe.fileno()

    def _has_room(self, size: int) -> bool:
        fd = self._fileno()
        queued = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        capacity = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        return bool(capacity - queued - PIPE_MARGIN >= size)

    def _write(self, parts: list[Any]) -> None:
        try:
            total = sum(len(part) for part in parts)
            written = os.writev(self._fileno(), parts)
            if written < total:  # pragma: no cover - a signal mid-write
                os.write(self._fileno(), b"".join(bytes(p) for p in parts)[written:])
        except OSError:
            logger.exception("the HLS/recording packager of %s stopped", self.hls_dir)
            self.failed = True

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Let the packager finish both files and exit; safe to call twice."""
        with self._lock:
            process, pipe = self._process, self._pipe
            self._process = self._pipe = None
            self._closed = True
        if process is None or pipe is None:
            return
        with contextlib.suppress(OSError):
            pipe.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.error("the packager of %s did not finish; killed", self.hls_dir)
            process.kill()
            process.wait()
        if process.returncode:
            self.failed = True


# --- The packager process -------------------------------------------------


class _Output:
    """One container with a video and (optionally) an audio stream."""

    def __init__(
        self,
        path: Path,
        *,
        config: dict[str, Any],
        container_format: str,
        options: dict[str, str],
    ) -> None:
        self.container = av.open(
            str(path), "w", format=container_format, options=options
        )
        self._time_bases = (
            Fraction(1, config["video_clock"]),
            Fraction(1, config["audio_rate"]),
        )
        try:
            self.video = self.container.add_stream("h264", rate=config["fps"])
            self.video.width, self.video.height = config["size"]
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = self._time_bases[0]
            self.audio = None
            if config["audio_extradata"] is not None:
                self.audio = self.container.add_stream(
                    "opus", rate=config["audio_rate"]
                )
                self.audio.layout = "stereo"
                self.audio.time_base = self._time_bases[1]
                self.audio.codec_context.extradata = bytes.fromhex(
                    config["audio_extradata"]
                )
        except Exception:
            self.container.close()
            raise

    def write(self, kind: int, data: bytes, pts: int, keyframe: bool) -> None:
        stream = self.video if kind == 0 else self.audio
        if stream is None:
            return
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self._time_bases[kind]
        packet.is_keyframe = keyframe
        packet.stream = stream
        # ``mux_one`` interleaves (``av_interleaved_write_frame``): a packet is
        # written once the other stream has passed its time, so a segment
        # closes as soon as audio reaches the keyframe that ends it. The
        # broadcast keeps the audio clock from lagging (``catch_up``).
        self.container.mux_one(packet)

    def close(self) -> None:
        self.container.close()


class _Playlist:
    """Publishes FFmpeg's playlist as ``index.m3u8`` with program date times
    on the broadcast's clock. FFmpeg starts its program date time at the wall
    time it writes the header, a moment (and, when this process has just
    started, a few hundred milliseconds) after the first frame arrived; a pin
    shown to HLS viewers waits for that time, so it has to be the frame's."""

    def __init__(self, hls_dir: Path, clock_origin: float, prefix: str = "") -> None:
        self.source = hls_dir / (prefix + FFMPEG_PLAYLIST)
        self.target = hls_dir / (prefix + PLAYLIST_NAME)
        self.published = False
        self._clock_origin = clock_origin
        self._first_frame_at: float | None = None
        self._shift: timedelta | None = None
        self._seen: tuple[int, int, int] | None = None

    def started(self, pts_seconds: float) -> None:
        self._first_frame_at = self._clock_origin + pts_seconds

    def sync(self) -> None:
        """Republish FFmpeg's playlist if it changed (after each packet)."""
        try:
            stat = os.stat(self.source)
        except FileNotFoundError:
            return
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        text = self.source.read_text()
        if self._shift is None and self._first_frame_at is not None:
            if (first := PROGRAM_DATE_TIME.search(text)) is None:
                return
            self._shift = datetime.fromtimestamp(
                self._first_frame_at, UTC
            ) - datetime.strptime(first[1], "%Y-%m-%dT%H:%M:%S.%f%z")
        shift = self._shift or timedelta()

        def shifted(match: re.Match[str]) -> str:
            when = datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S.%f%z") + shift
            moment = when.astimezone(UTC).isoformat(timespec="milliseconds")
            return f"#EXT-X-PROGRAM-DATE-TIME:{moment}"

        temporary = self.target.with_name(self.target.name + ".tmp")
        temporary.write_text(PROGRAM_DATE_TIME.sub(shifted, text))
        temporary.replace(self.target)
        self.published = True


def rendition_prefix(index: int, name: str) -> str:
    """The first rendition's files keep their names; the others' start with
    ``<name>-``."""
    return "" if index == 0 else f"{name}-"


def avc1_codec(data: bytes) -> str | None:
    """The RFC 6381 ``avc1.PPCCLL`` string from the SPS in an Annex B
    keyframe, or None if there is none."""
    for nal in data.split(b"\x00\x00\x01"):
        if len(nal) >= 4 and nal[0] & 0x1F == 7:
            return f"avc1.{nal[1]:02x}{nal[2]:02x}{nal[3]:02x}"
    return None


class _MasterPlaylist:
    """``master.m3u8``: every rendition's media playlist with its peak and
    average bandwidth, resolution, codecs and frame rate, highest first.
    Written once every rendition has published its playlist (a player that
    picks one must find it), then left as it is."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._path = Path(config["hls_dir"]) / MASTER_PLAYLIST
        self._codecs: dict[int, str] = {}
        self.written = False

    def saw_keyframe(self, rendition: int, data: bytes) -> None:
        if rendition not in self._codecs and (codec := avc1_codec(data)):
            self._codecs[rendition] = codec

    def sync(self, playlists: list[_Playlist]) -> None:
        if self.written or not all(playlist.published for playlist in playlists):
            return
        temporary = self._path.with_name(MASTER_PLAYLIST + ".tmp")
        temporary.write_text(self.text())
        temporary.replace(self._path)
        self.written = True

    def text(self) -> str:
        config = self._config
        audio = config["audio_extradata"] is not None
        audio_bitrate = config.get("audio_bitrate", AUDIO_BITRATE) if audio else 0
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for index, rendition in enumerate(config["renditions"]):
            average = rendition["bitrate"] + audio_bitrate
            codecs = [self._codecs.get(index, "avc1.42c01f")]
            if audio:
                codecs.append("opus")
            width, height = rendition["size"]
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={int(average * CONTAINER_OVERHEAD)},"
                f"AVERAGE-BANDWIDTH={average},RESOLUTION={width}x{height},"
                f'CODECS="{",".join(codecs)}",FRAME-RATE={config["fps"]:.3f}'
            )
            lines.append(rendition_prefix(index, rendition["name"]) + PLAYLIST_NAME)
        return "\n".join(lines) + "\n"


def _open_hls(config: dict[str, Any], prefix: str = "") -> _Output:
    hls_dir = Path(config["hls_dir"])
    hls_dir.mkdir(parents=True, exist_ok=True)
    return _Output(
        hls_dir / (prefix + FFMPEG_PLAYLIST),
        config=config,
        container_format="hls",
        options={
            "hls_time": str(config["segment_seconds"]),
            "hls_list_size": str(config["playlist_size"]),
            "hls_flags": (
                "delete_segments+program_date_time+independent_segments+temp_file"
            ),
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": prefix + "init.mp4",
            "hls_segment_filename": str(hls_dir / (prefix + "seg-%05d.m4s")),
        },
    )


class _Recording:
    """The recording, opened at the first keyframe once recording is wanted
    (from the start, or when a rehearsal goes live). A recording started late
    is shifted to begin at 0, the moment the show went public."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self.wanted = bool(config.get("record", True))
        self._output: _Output | None = None
        self._origin = (0, 0)  # video pts, audio pts of the recording's 0

    def want(self) -> None:
        self.wanted = True

    def write(self, kind: int, data: bytes, pts: int, keyframe: bool) -> None:
        output = self._output
        if output is None:
            if not (self.wanted and kind == VIDEO and keyframe):
                return
            output = self._open(pts)
        pts -= self._origin[kind]
        if pts >= 0:
            output.write(kind, data, pts, keyframe)

    def _open(self, pts: int) -> _Output:
        config = self._config
        path = Path(config["recording_path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._output = _Output(
            path,
            config=config,
            container_format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
        )
        if not config.get("record", True):
            self._origin = (pts, pts * config["audio_rate"] // config["video_clock"])
        return self._output

    def close(self) -> None:
        if self._output is not None:
            self._output.close()


def package(source: IO[bytes]) -> None:
    """Read the configuration line, then packets until end of file, writing
    every output; each starts on a keyframe of its rendition."""
    config = json.loads(source.readline())
    renditions = config.get("renditions") or [
        {"name": "high", "size": config["size"], "bitrate": 0}
    ]
    config["renditions"] = renditions
    hls_dir = Path(config["hls_dir"])
    hls: list[_Output] = []
    playlists: list[_Playlist] = []
    recording = _Recording(config)
    master = _MasterPlaylist(config)
    try:
        for index, rendition in enumerate(renditions):
            prefix = rendition_prefix(index, rendition["name"])
            hls.append(_open_hls({**config, "size": rendition["size"]}, prefix))
            playlists.append(_Playlist(hls_dir, config["clock_origin"], prefix))
        started = [False] * len(renditions)
        while header := source.read(HEADER.size):
            if len(header) < HEADER.size:
                break
            kind, flags, pts, length = HEADER.unpack(header)
            data = source.read(length)
            if len(data) < length:
                break
            if kind == RECORD:
                recording.want()
                continue
            keyframe, rendition = bool(flags & 1), flags >> 1
            if kind == VIDEO:
                if rendition >= len(renditions):
                    continue
                if not started[rendition]:
                    if not keyframe:
                        continue
                    started[rendition] = True
                    playlists[rendition].started(pts / config["video_clock"])
                if keyframe:
                    master.saw_keyframe(rendition, data)
                targets = [rendition]
            else:
                targets = [i for i, on in enumerate(started) if on]
            # HLS first: a keyframe closes a segment and viewers wait for the
            # playlist (writing the recording first cost ~40 ms per segment).
            for target in targets:
                hls[target].write(kind, data, pts, keyframe)
                playlists[target].sync()
            master.sync(playlists)
            if started[0] and (kind == AUDIO or rendition == 0):
                recording.write(kind, data, pts, keyframe)
    finally:
        outputs: list[_Recording | _Output] = [recording, *hls]
        for output in outputs:
            try:
                output.close()
            except Exception:
                logger.exception("closing a media output failed")
        for playlist in playlists:
            playlist.sync()
        master.sync(playlists)


def main() -> None:
    # The media process ends us by closing the pipe (also when it dies), so
    # both files are finished; a Ctrl-C meant for the server must not cut
    # them short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    with open(sys.stdin.fileno(), "rb", buffering=PIPE_BYTES, closefd=False) as source:
        package(source)


if __name__ == "__main__":
    main()
