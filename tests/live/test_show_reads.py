"""A process's brief copy of what a chat hook reads about a show."""

from __future__ import annotations

import asyncio

from live.games.show_reads import ShowReads


async def test_a_reading_is_kept_until_it_is_stale_or_forgotten(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("live.games.show_reads.time.monotonic", lambda: clock[0])
    reads = ShowReads[str](1.0)
    answers = iter(["a", "b", "c"])

    async def read():
        return next(answers)

    assert await reads.get(7, read) == "a"
    clock[0] += 0.9
    assert await reads.get(7, read) == "a"
    clock[0] += 0.2
    assert await reads.get(7, read) == "b"
    reads.forget(7)
    assert await reads.get(7, read) == "c"


async def test_a_reading_under_way_when_the_words_change_is_not_kept():
    """A viewer's chat read the show's keywords just before a host on this
    process set one (CI saw it, at 71362bb): that reading answers its own
    message, but the next message reads afresh rather than trust it for a
    second more."""
    reads = ShowReads[frozenset[str]](60.0)
    started, changed = asyncio.Event(), asyncio.Event()
    stored = [frozenset[str]()]

    async def slow_read():
        found = stored[0]
        started.set()
        await changed.wait()
        return found

    async def read():
        return stored[0]

    under_way = asyncio.ensure_future(reads.get(7, slow_read))
    await started.wait()
    stored[0] = frozenset({"+1"})
    reads.forget(7)
    changed.set()
    assert await under_way == frozenset()
    assert await reads.get(7, read) == frozenset({"+1"})


async def test_forgetting_one_show_keeps_the_others():
    reads = ShowReads[int](60.0)
    calls = []

    async def read():
        calls.append(1)
        return len(calls)

    assert await reads.get(1, read) == 1
    assert await reads.get(2, read) == 2
    reads.forget(1)
    assert await reads.get(2, read) == 2
    assert await reads.get(1, read) == 3
