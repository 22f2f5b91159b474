"""HLS packaging and recording from the already-encoded packets (no encode here).

One writer thread per live show owns both containers: the sliding HLS playlist
(fMP4 segments of about one second, ``EXT-X-PROGRAM-DATE-TIME`` on each) and the
recording (fragmented MP4, playable even if the process dies mid-show). The
broadcast hands packets over through a bounded queue; if the disk cannot keep
up, packets are dropped and counted rather than queued without bound.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from live.media.codecs import AUDIO_RATE, AUDIO_TIME_BASE, VIDEO_TIME_BASE

logger = logging.getLogger(__name__)

PLAYLIST_NAME = "index.m3u8"
QUEUE_LIMIT = 900


@dataclass(frozen=True)
class _Item:
    kind: str  # "video" or "audio"
    data: bytes
    pts: int
    keyframe: bool


class _Output:
    """One container with a video and (optionally) an audio stream."""

    def __init__(
        self,
        path: Path,
        *,
        size: tuple[int, int],
        fps: int,
        audio_extradata: bytes | None,
        container_format: str | None,
        options: dict[str, str],
    ) -> None:
        self.container = av.open(
            str(path), "w", format=container_format, options=options
        )
        try:
            self.video = self.container.add_stream("h264", rate=fps)
            self.video.width, self.video.height = size
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = VIDEO_TIME_BASE
            self.audio = None
            if audio_extradata is not None:
                self.audio = self.container.add_stream("opus", rate=AUDIO_RATE)
                self.audio.layout = "stereo"
                self.audio.time_base = AUDIO_TIME_BASE
                self.audio.codec_context.extradata = audio_extradata
        except Exception:
            self.container.close()
            raise

    def write(self, item: _Item) -> None:
        stream = self.video if item.kind == "video" else self.audio
        if stream is None:
            return
        packet = av.Packet(item.data)
        packet.pts = packet.dts = item.pts
        packet.time_base = VIDEO_TIME_BASE if item.kind == "video" else AUDIO_TIME_BASE
        packet.is_keyframe = item.keyframe
        packet.stream = stream
        # ``mux_one`` writes straight through: no interleaving buffer that would
        # hold video back while waiting for audio.
        self.container.mux_one(packet)

    def close(self) -> None:
        self.container.close()


class ShowWriter:
    """Writes the HLS playlist and the recording of one live show."""

    def __init__(
        self,
        *,
        hls_dir: Path,
        recording_path: Path,
        fps: int,
        with_audio: bool,
        segment_seconds: int,
        playlist_size: int = 6,
    ) -> None:
        self.hls_dir = hls_dir
        self.recording_path = recording_path
        self._fps = fps
        self._with_audio = with_audio
        self._segment_seconds = segment_seconds
        self._playlist_size = playlist_size
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._size: tuple[int, int] | None = None
        self._audio_extradata: bytes | None = None
        self.dropped = 0
        self.failed = False

    def start(self, *, size: tuple[int, int], audio_extradata: bytes | None) -> None:
        """Open the containers in the writer thread once the video size is known."""
        if self._thread is not None:
            return
        self._size = size
        self._audio_extradata = audio_extradata if self._with_audio else None
        self._thread = threading.Thread(
            target=self._run, name=f"showfloor-mux-{self.hls_dir.name}", daemon=True
        )
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def put(self, kind: str, packet: av.Packet[Any]) -> None:
        if self._thread is None or self.failed or packet.pts is None:
            return
        item = _Item(kind, bytes(packet), int(packet.pts), bool(packet.is_keyframe))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Flush and close both containers; safe to call more than once."""
        if self._thread is None:
            return
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:  # pragma: no cover - a stuck disk
                self._queue.get_nowait()
        self._thread.join(timeout=timeout)
        self._thread = None

    def _open_outputs(self) -> list[_Output]:
        if self._size is None:
            raise RuntimeError("start() sets the video size first")
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        self.recording_path.parent.mkdir(parents=True, exist_ok=True)
        outputs: list[_Output] = []
        try:
            outputs.append(
                _Output(
                    self.recording_path,
                    size=self._size,
                    fps=self._fps,
                    audio_extradata=self._audio_extradata,
                    container_format="mp4",
                    options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
                )
            )
            outputs.append(
                _Output(
                    self.hls_dir / PLAYLIST_NAME,
                    size=self._size,
                    fps=self._fps,
                    audio_extradata=self._audio_extradata,
                    container_format="hls",
                    options={
                        "hls_time": str(self._segment_seconds),
                        "hls_list_size": str(self._playlist_size),
                        "hls_flags": (
                            "delete_segments+program_date_time"
                            "+independent_segments+temp_file"
                        ),
                        "hls_segment_type": "fmp4",
                        "hls_fmp4_init_filename": "init.mp4",
                        "hls_segment_filename": str(self.hls_dir / "seg-%05d.m4s"),
                    },
                )
            )
        except Exception:
            for output in outputs:
                output.close()
            raise
        return outputs

    def _run(self) -> None:
        outputs: list[_Output] = []
        try:
            outputs = self._open_outputs()
        except Exception:
            logger.exception("could not open the HLS or recording output")
            self.failed = True
        started = False
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if not outputs:
                    continue
                # Both containers start on a keyframe so they decode from the top.
                if not started and not (item.kind == "video" and item.keyframe):
                    continue
                started = True
                for output in outputs:
                    output.write(item)
        except Exception:
            logger.exception("writing the HLS or recording output failed")
            self.failed = True
        finally:
            for output in outputs:
                try:
                    output.close()
                except Exception:
                    logger.exception("closing a media output failed")
