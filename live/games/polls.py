"""The polls game's socket interface (docs/polls.md): ask, close, vote, and
the coalesced live results.

A vote is one insert (``shows.services.polls.poll_vote``); it only marks its
poll "changed" in this process. Each process's ``ResultsTicker`` then sends
the room the poll's counts at most once per ``RESULTS_SECONDS`` (the first
change of a quiet poll leaves after ``LEADING_SECONDS``): one aggregate
query per changed poll per tick, published as the ephemeral ``poll.results``
on the bus, so every process's viewers get it. With several processes, the
one that claims the poll's window in Redis (``SET NX PX``) publishes; the
others keep their change for the next tick, so the last counts always leave
and a socket gets about one ``poll.results`` a second whatever the number of
processes and votes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils.translation import gettext as _

from live.protocol import Refusal, id_field, int_field, text_field
from realtime import redis as rclient
from realtime.limiter import Bucket
from shows import poll_cards
from shows.services import polls

logger = logging.getLogger(__name__)

RESULTS_SECONDS = 1.0
LEADING_SECONDS = 0.1
# Votes and "which did I answer?" a socket may send: a burst, then one a second.
VOTE_BURST = 5
VOTE_RATE = 1.0
# Bounds on the raw message; the service has the rules (2 to 4 answers, 80 chars).
OPTIONS_LIMIT = 8
OPTION_CHARS = 400


class ResultsTicker:
    """One event loop's changed polls and the task that publishes their
    counts, at most once per ``RESULTS_SECONDS`` each."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.changed: set[int] = set()
        self.task: asyncio.Task[None] | None = None
        self.last: dict[int, float] = {}

    def mark(self, poll_id: int) -> None:
        self.changed.add(poll_id)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        while self.changed:
            soonest = min(
                self.last.get(p, -RESULTS_SECONDS) + RESULTS_SECONDS
                for p in self.changed
            )
            await asyncio.sleep(max(LEADING_SECONDS, soonest - self.loop.time()))
            now = self.loop.time()
            due = {
                p
                for p in self.changed
                if self.last.get(p, -RESULTS_SECONDS) + RESULTS_SECONDS <= now + 0.01
            }
            self.changed -= due
            for poll_id in due:
                self.last[poll_id] = now
                try:
                    if await _claim(poll_id):
                        await database_sync_to_async(polls.poll_results_broadcast)(
                            poll_id=poll_id
                        )
                    else:
                        self.changed.add(poll_id)  # another process has this window
                except Exception:
                    logger.exception("could not send poll %s's results", poll_id)
                    self.changed.add(poll_id)
            if len(self.last) > 1000:
                self.last = {p: t for p, t in self.last.items() if now - t < 60}


async def _claim(poll_id: int) -> bool:
    """Whether this process sends the poll's counts in this window: the first
    to set the Redis key does; without Redis (one process), always."""
    if not rclient.url() or rclient.is_down():
        return True
    try:
        claimed = await rclient.async_client().set(
            rclient.key("poll", poll_id, "results"),
            "1",
            nx=True,
            px=int(RESULTS_SECONDS * 900),
        )
    except rclient.ERRORS:
        rclient.mark_down()
        return True
    return bool(claimed)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultsTicker] = (
    weakref.WeakKeyDictionary()
)


def ticker() -> ResultsTicker:
    """The running event loop's ticker (one per process in production)."""
    loop = asyncio.get_running_loop()
    found = _tickers.get(loop)
    if found is None:
        found = _tickers[loop] = ResultsTicker(loop)
    return found


def _take(consumer: Any) -> None:
    bucket = consumer.__dict__.get("poll_bucket")
    if bucket is None:
        bucket = consumer.poll_bucket = Bucket(VOTE_BURST)
    if bucket.take(capacity=VOTE_BURST, rate=VOTE_RATE):
        raise Refusal("rate_limited", _("You are sending too fast. Please wait."))


def _session_key(consumer: Any) -> str | None:
    viewer = getattr(consumer, "viewer", None)
    return getattr(viewer, "session_key", None) or None


async def poll_open(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    question = text_field(msg, "question", 1000)
    options = msg.get("options")
    if (
        not isinstance(options, list)
        or len(options) > OPTIONS_LIMIT
        or not all(isinstance(o, str) and len(o) <= OPTION_CHARS for o in options)
    ):
        raise Refusal("invalid", _("“options” must be a list of two to four texts."))
    await consumer._service(
        "poll.open",
        ref,
        polls.poll_open,
        actor=consumer.user,
        question=question,
        options=options,
    )


async def poll_close(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    await consumer._service(
        "poll.close",
        ref,
        polls.poll_close,
        actor=consumer.user,
        poll_id=id_field(msg, "poll_id", required=False),
    )


async def poll_show_results(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    await consumer._service(
        "poll.show_results",
        ref,
        polls.poll_results_show,
        actor=consumer.user,
        poll_id=id_field(msg, "poll_id", required=False),
    )


async def poll_vote(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    poll_id = id_field(msg, "poll_id")
    option = int_field(msg, "option", low=0, high=polls.MAX_OPTIONS - 1)
    _take(consumer)
    if await consumer._service(
        "poll.vote",
        ref,
        polls.poll_vote,
        poll_id=poll_id,
        option=option,
        user=consumer.user,
        session_key=_session_key(consumer),
    ):
        ticker().mark(int(poll_id or 0))


async def poll_mine(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    """Which answer this viewer gave (a guest's snapshot is shared, so it
    cannot say): a private ``poll.voted`` when they answered, then ``ack``."""
    poll_id = int(id_field(msg, "poll_id") or 0)
    _take(consumer)
    if consumer.user is not None:
        voter = poll_cards.user_voter(consumer.user.pk)
    elif key := _session_key(consumer):
        voter = poll_cards.session_voter(key)
    else:
        consumer._frame({"type": "ack", "ref": ref})
        return
    try:
        option = await database_sync_to_async(poll_cards.voter_option)(
            poll_id=poll_id, voter=voter
        )
    except DatabaseError:
        consumer._error(ref, "unavailable", _("The show is briefly unavailable."), 2)
        return
    if option is not None:
        consumer._frame(
            {"type": polls.POLL_VOTED, "poll_id": poll_id, "option": option}
        )
    consumer._frame({"type": "ack", "ref": ref})


# type → (hosts and moderators only, async handler(consumer, msg, ref))
HANDLERS: dict[str, tuple[bool, Any]] = {
    "poll.open": (True, poll_open),
    "poll.close": (True, poll_close),
    "poll.show_results": (True, poll_show_results),
    "poll.vote": (False, poll_vote),
    "poll.mine": (False, poll_mine),
}
# Called with show= and user=; each returns keys for the room snapshot.
SNAPSHOT_PARTS: tuple[Any, ...] = (poll_cards.room_poll,)
