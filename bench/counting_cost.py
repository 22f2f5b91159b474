"""What the show's counting (``realtime.counting``) costs one web process, in
CPU, without the noise of a fan-out run:

    python bench/counting_cost.py --viewers 5000 --rate 20

Times ``counting.add`` and ``counting.unique_key`` per call, a second's worth
of counting at ``--rate`` chat messages (the adds, the heartbeat's peak and
watch time, the flush to Redis), and the once-a-minute count of everybody
present with its flush. Uses the Redis at ``BENCH_REDIS_URL`` (default
127.0.0.1:6379) under a key prefix of its own. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["REDIS_URL"] = os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
    )
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    os.environ["SHOWFLOOR_REDIS_PREFIX"] = prefix
    import django

    django.setup()
    from realtime import counting
    from realtime import redis as rclient

    counter = counting.Counter()
    counting._counter = counter
    counter.start = lambda: None  # type: ignore[method-assign]  # flushed by hand
    show = 1
    calls = 200_000
    started = cpu()
    for _ in range(calls):
        counting.add(show, "chat")
    add_us = (cpu() - started) / calls * 1e6
    counter.flush()
    keys = [counting.visitor_key(show, f"conn{i}") for i in range(args.viewers)]
    started = cpu()
    for key in keys:
        counting.unique_key(show, "viewers", key, whole_show=False)
    minute_count_ms = (cpu() - started) * 1e3
    started = cpu()
    counter.flush()
    minute_flush_ms = (cpu() - started) * 1e3
    started = cpu()
    for _ in range(args.seconds):
        for _ in range(args.rate):
            counting.add(show, "chat")
        counting.peak(show, "viewers", args.viewers)
        counting.add(show, "watch_seconds", args.viewers)
        counter.flush()
    second_ms = (cpu() - started) / args.seconds * 1e3
    per_second_ms = second_ms + (minute_count_ms + minute_flush_ms) / 60
    client = rclient.sync_client()
    stale = list(client.scan_iter(f"{prefix}:*"))
    if stale:
        client.delete(*stale)
    print(
        json.dumps(
            {
                "viewers": args.viewers,
                "rate": args.rate,
                "add_us": round(add_us, 2),
                "unique_key_us": round(minute_count_ms * 1e3 / args.viewers, 2),
                "second_ms": round(second_ms, 3),
                "minute_present_ms": round(minute_count_ms, 1),
                "minute_flush_ms": round(minute_flush_ms, 1),
                "cpu_share_of_a_core": round(per_second_ms / 1e3, 5),
            }
        )
    )


if __name__ == "__main__":
    main()
