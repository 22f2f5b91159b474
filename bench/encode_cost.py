"""What each rendition of the ladder costs to encode, in CPU cores:

    python bench/encode_cost.py --seconds 10

Encodes a synthetic 1280x720 30 fps source in real time (one frame every
1/30 s, as a live show's frames arrive) with the encoders a broadcast uses
(``live.media.codecs.VideoEncoder``: libx264 baseline, ``zerolatency``, a
keyframe every second as the HLS segment boundaries force), three times:
the 720p rendition alone, the 360p rendition alone (scaling the 720p source
included) and both from the same frame, as ``Broadcast`` does. Each run's CPU
time of this process (x264's threads included) divided by the seconds of
video is the cores that run needs. The source is a moving gradient with
``--noise-rows`` rows of fresh noise (120 by default: camera-like, the 720p
rendition runs at its 2 Mbit/s cap); ``--noise-rows 0`` is an easy picture.
The last line is one JSON object; ``goal_both_le`` is the issue's goal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT, FPS = 1280, 720, 30
DISTINCT_FRAMES = 30
GOAL_BOTH = 0.5


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def source_frames(noise_rows: int) -> list[Any]:
    """A second of distinct 1280x720 frames: a gradient moving four pixels a
    frame, with ``noise_rows`` rows of noise that changes every frame."""
    import av

    frames = []
    for index in range(DISTINCT_FRAMES):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = frame.planes[0]
        stride = luma.line_size
        row = bytes((x + 4 * index) % 256 for x in range(stride))
        plain = HEIGHT - noise_rows
        luma.update(row * plain + os.urandom(stride * noise_rows))
        for plane in frame.planes[1:]:
            plane.update(bytes([(index * 3 + 64) % 256]) * plane.buffer_size)
        frames.append(frame)
    return frames


def run(config: Any, renditions: list[Any], frames: list[Any], seconds: float) -> dict:
    """Encode ``seconds`` of video in real time with one encoder per
    rendition; cores used and each rendition's bit rate."""
    from live.media.codecs import VideoEncoder

    encoders = [VideoEncoder(config, rendition) for rendition in renditions]
    sizes = [0] * len(encoders)
    total = int(seconds * FPS)
    late = 0
    start_cpu, start = cpu(), time.monotonic()
    for number in range(total):
        due = start + number / FPS
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        else:
            late += 1
        frame = frames[number % len(frames)]
        pts = number * 90_000 // FPS
        for index, encoder in enumerate(encoders):
            for packet in encoder.encode(frame, pts, keyframe=number % FPS == 0):
                sizes[index] += packet.size
    used = cpu() - start_cpu
    for encoder in encoders:
        encoder.close()
    return {
        "cores": round(used / seconds, 3),
        "kbit": [round(size * 8 / seconds / 1000) for size in sizes],
        "frames_late": late,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--bitrate", type=int, default=2_000_000)
    parser.add_argument("--low-bitrate", type=int, default=500_000)
    parser.add_argument("--noise-rows", type=int, default=120)
    args = parser.parse_args()
    from live.media.codecs import VideoSettings

    config = VideoSettings(
        max_width=WIDTH,
        max_height=HEIGHT,
        fps=FPS,
        bitrate=args.bitrate,
        preset=args.preset,
        low_bitrate=args.low_bitrate,
    )
    high, low = config.renditions
    frames = source_frames(args.noise_rows)
    run(config, [high, low], frames, 1)  # warm up: libraries, page faults
    alone_high = run(config, [high], frames, args.seconds)
    alone_low = run(config, [low], frames, args.seconds)
    both = run(config, [high, low], frames, args.seconds)
    result = {
        "cores_720p": alone_high["cores"],
        "cores_360p": alone_low["cores"],
        "cores_both": both["cores"],
        "goal_both_le": GOAL_BOTH,
        "goal_met": both["cores"] <= GOAL_BOTH,
        "kbit_720p": both["kbit"][0],
        "kbit_360p": both["kbit"][1],
        "frames_late": alone_high["frames_late"]
        + alone_low["frames_late"]
        + both["frames_late"],
        "preset": args.preset,
        "noise_rows": args.noise_rows,
        "seconds": args.seconds,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
    print(
        f"720p alone {alone_high['cores']} cores, 360p alone {alone_low['cores']},"
        f" both {both['cores']} ({both['kbit'][0]} + {both['kbit'][1]} kbit/s)",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
