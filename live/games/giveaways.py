"""The giveaways game's socket interface (docs/giveaways.md): parse, check
the role, call one service of ``shows.services.giveaways``.

Besides the handlers, this module keeps two things per process:

- a timer per giveaway started or drawn here, which draws it at
  ``closes_at`` and draws again when a winner lets ``claim_by`` pass (the
  sweeper's ``giveaway_draw_due`` does the same for every giveaway, so a
  restarted process loses nothing; each draw happens once whoever asks);
- the entry count's coalescing: after entries, one ``giveaway.entries`` per
  giveaway at most every second across all processes (a shared interval in
  Redis), carrying the count read when it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext as _

from checkout.giveaway_eligibility import bought_in_show
from live.games.show_reads import ShowReads
from live.protocol import Refusal, id_field, int_field, text_field
from realtime import limiter
from shows import giveaway_cards
from shows.exceptions import ShowfloorError
from shows.models import Giveaway
from shows.services import giveaways

logger = logging.getLogger(__name__)

ENTRIES_INTERVAL_SECONDS = 1.0
# How long a process trusts its reading of a show's keyword giveaway.
KEYWORD_SECONDS = 1.0
GIVEAWAY_REFUSED = "giveaway.refused"

_timers: dict[int, asyncio.Task[None]] = {}
_flushing: set[int] = set()
_background: set[asyncio.Task[Any]] = set()
# Per show: (open keyword giveaway id or None, its keyword), show_reads.py.
_keywords: ShowReads[tuple[int | None, str]] = ShowReads(KEYWORD_SECONDS)


def _spawn(coroutine: Any) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


# --- Timers and the entry count ---------------------------------------------


def schedule(giveaway_id: int) -> None:
    """Make sure this process draws ``giveaway_id`` when it is due."""
    running = _timers.get(giveaway_id)
    if running is not None and not running.done():
        running.cancel()
    _timers[giveaway_id] = _spawn(_run_timer(giveaway_id))


async def _run_timer(giveaway_id: int) -> None:
    try:
        while True:
            due = await database_sync_to_async(giveaways.giveaway_due_at)(
                giveaway_id=giveaway_id
            )
            if due is None:
                return
            wait = (due - timezone.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait + 0.02)
                continue
            await database_sync_to_async(giveaways.giveaway_tick)(
                giveaway_id=giveaway_id
            )
    except asyncio.CancelledError:
        raise
    except Exception:
        # The sweeper's pass draws it all the same.
        logger.exception("giveaway %s timer failed", giveaway_id)
    finally:
        if _timers.get(giveaway_id) is asyncio.current_task():
            del _timers[giveaway_id]


def entries_changed(giveaway_id: int) -> None:
    """An entry went in: send the room the count within about a second, but
    never more than one ``giveaway.entries`` a second."""
    if giveaway_id in _flushing:
        return
    _flushing.add(giveaway_id)
    _spawn(_flush_entries(giveaway_id))


async def _flush_entries(giveaway_id: int) -> None:
    try:
        while True:
            wait = await asyncio.to_thread(
                limiter.take_interval,
                f"giveaway:entries:{giveaway_id}",
                seconds=ENTRIES_INTERVAL_SECONDS,
            )
            if wait <= 0:
                break
            await asyncio.sleep(wait)
    finally:
        # Entries from here on need a count read after this one.
        _flushing.discard(giveaway_id)
    with contextlib.suppress(DatabaseError):
        await database_sync_to_async(giveaways.giveaway_entries_publish)(
            giveaway_id=giveaway_id
        )


# --- Handlers -----------------------------------------------------------------


def _choice(msg: dict[str, Any], name: str, choices: list[str], default: str) -> str:
    value = msg.get(name, default)
    if value not in choices:
        raise Refusal(
            "invalid",
            _("“%(name)s” is one of: %(choices)s.")
            % {"name": name, "choices": ", ".join(choices)},
        )
    return str(value)


async def giveaway_start(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    started: list[Giveaway] = []

    def start(**kwargs: Any) -> None:
        started.append(giveaways.giveaway_start(**kwargs))

    if await consumer._service(
        "giveaway.start",
        ref,
        start,
        user=consumer.user,
        prize=text_field(msg, "prize", giveaways.MAX_PRIZE_LENGTH, required=False),
        product_id=id_field(msg, "product_id", required=False),
        eligibility=_choice(
            msg,
            "eligibility",
            list(Giveaway.Eligibility.values),
            Giveaway.Eligibility.SIGNED_IN,
        ),
        entry=_choice(msg, "entry", list(Giveaway.Entry.values), Giveaway.Entry.BUTTON),
        keyword=text_field(
            msg, "keyword", giveaways.MAX_KEYWORD_LENGTH, required=False
        ),
        duration_seconds=int_field(
            msg,
            "duration_seconds",
            low=giveaways.MIN_SECONDS,
            high=giveaways.MAX_SECONDS,
        ),
        claim_seconds=int_field(
            msg,
            "claim_seconds",
            low=giveaways.MIN_CLAIM_SECONDS,
            high=giveaways.MAX_CLAIM_SECONDS,
            required=False,
            default=600,
        ),
    ):
        _keywords.forget(consumer.show.pk)
        schedule(started[0].pk)


async def giveaway_enter(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    consumer._require_login()
    giveaway_id = id_field(msg, "giveaway_id")
    if await consumer._service(
        "giveaway.enter",
        ref,
        giveaways.giveaway_enter,
        user=consumer.user,
        giveaway_id=giveaway_id,
        bought=functools.partial(
            bought_in_show, show_id=consumer.show.pk, user_id=consumer.user.pk
        ),
    ):
        entries_changed(int(giveaway_id or 0))


async def _staff_action(
    consumer: Any, msg: dict[str, Any], ref: Any, action: str, service: Any
) -> None:
    giveaway_id = id_field(msg, "giveaway_id")
    if await consumer._service(
        action, ref, service, user=consumer.user, giveaway_id=giveaway_id
    ):
        _keywords.forget(consumer.show.pk)
        schedule(int(giveaway_id or 0))


async def giveaway_draw(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    await _staff_action(consumer, msg, ref, "giveaway.draw", giveaways.giveaway_draw)


async def giveaway_redraw(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    await _staff_action(
        consumer, msg, ref, "giveaway.redraw", giveaways.giveaway_redraw
    )


async def giveaway_cancel(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    await _staff_action(
        consumer, msg, ref, "giveaway.cancel", giveaways.giveaway_cancel
    )


async def giveaway_claim(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    consumer._require_login()
    await consumer._service(
        "giveaway.claim",
        ref,
        giveaways.giveaway_claim,
        user=consumer.user,
        giveaway_id=id_field(msg, "giveaway_id"),
    )


# --- The chat keyword ---------------------------------------------------------


def _open_keyword_giveaway(show_id: int) -> tuple[int | None, str]:
    giveaway = (
        Giveaway.objects.filter(
            show_id=show_id,
            status=Giveaway.Status.OPEN,
            entry=Giveaway.Entry.KEYWORD,
            closes_at__gt=timezone.now(),
        )
        .only("pk", "keyword")
        .first()
    )
    return (giveaway.pk, giveaway.keyword) if giveaway else (None, "")


def keyword_of(text: str) -> str:
    """The message's first word as a keyword is compared: without the
    punctuation around it, in any case."""
    words = text.split()
    return words[0].strip(".,!?;:¡¿\"'“”«»").casefold() if words else ""


async def on_chat(consumer: Any, text: str, ref: Any) -> None:
    """A chat message whose first word is the open giveaway's keyword enters
    its author (the chat's own limits applied first). A refusal reaches the
    author only, as ``giveaway.refused`` (the message itself went through)."""
    if consumer.user is None:
        return
    show_id = consumer.show.pk
    try:
        giveaway_id, keyword = await _keywords.get(
            show_id,
            lambda: database_sync_to_async(_open_keyword_giveaway)(show_id),
        )
    except DatabaseError:
        return
    if giveaway_id is None or keyword_of(text) != keyword.casefold():
        return
    try:
        await database_sync_to_async(giveaways.giveaway_enter)(
            show=consumer.show,
            user=consumer.user,
            giveaway_id=giveaway_id,
            bought=functools.partial(
                bought_in_show, show_id=show_id, user_id=consumer.user.pk
            ),
        )
    except ShowfloorError as exc:
        consumer._frame(
            {
                "type": GIVEAWAY_REFUSED,
                "giveaway_id": giveaway_id,
                "code": exc.code,
                "message": exc.message,
            }
        )
        return
    except DatabaseError:
        return
    entries_changed(giveaway_id)


# type → (hosts and moderators only, async handler(consumer, msg, ref))
HANDLERS: dict[str, tuple[bool, Any]] = {
    "giveaway.start": (True, giveaway_start),
    "giveaway.enter": (False, giveaway_enter),
    "giveaway.draw": (True, giveaway_draw),
    "giveaway.redraw": (True, giveaway_redraw),
    "giveaway.cancel": (True, giveaway_cancel),
    "giveaway.claim": (False, giveaway_claim),
}
# Called with show= and user=; each returns keys for the room snapshot.
SNAPSHOT_PARTS: tuple[Any, ...] = (giveaway_cards.room_giveaway,)
