"""A show's replay (docs/replay.md): what the replay page needs, read from
what the show left behind. Chapters and the product cards come from the pin
log (``Pin``), chat and answered questions from the room's tables; every time
is in seconds of the *replay*, that is of the recording after the host's trim
(``Show.replay_start_seconds``; the recording starts when the show went live,
``Show.started_at``).

Nothing here writes: the trim and the hidden chapters are saved by
``shows.services.brand_shows.show_replay_update``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from shows import poll_cards
from shows.models import ChatMessage, Pin, Poll, Question, Show
from shows.services.stream import stream_recording_path

# The chat the page replays: the last messages of the show, at most this many.
CHAT_MAX = 2000
# Answered questions replayed, at most.
ANSWERS_MAX = 500


@dataclass(frozen=True, slots=True)
class Chapter:
    """A pin of a product: where it starts in the replay, in seconds."""

    pin_id: int
    product_id: int
    name: str
    at: int
    hidden: bool


def has_replay(show: Show) -> bool:
    """Whether ``show`` has a replay page: it ended and its recording exists."""
    return (
        show.status == Show.Status.ENDED
        and show.started_at is not None
        and stream_recording_path(show=show) is not None
    )


def recording_duration(show: Show) -> int | None:
    """The recording's length in whole seconds as its container says (PyAV
    reads the header only), or None when there is none or it cannot tell."""
    path = stream_recording_path(show=show)
    if path is None:
        return None
    import av  # loaded only where a recording is measured

    try:
        with av.open(str(path)) as container:
            length = container.duration
    except (av.FFmpegError, OSError):
        return None
    return None if not length else int(length // av.time_base)


def replay_seconds(show: Show, moment: datetime | None) -> float | None:
    """``moment`` of the show as a position in its replay (may be negative
    or past the end: the caller decides), or None without a start."""
    if moment is None or show.started_at is None:
        return None
    return (moment - show.started_at).total_seconds() - show.replay_start_seconds


def _in_replay(show: Show, seconds: float | None) -> bool:
    if seconds is None:
        return False
    end = show.replay_end_seconds
    return end is None or seconds + show.replay_start_seconds < end


def replay_length(show: Show) -> int | None:
    """How long the trimmed replay is, when the end is set."""
    if show.replay_end_seconds is None:
        return None
    return show.replay_end_seconds - show.replay_start_seconds


def chapters(
    show: Show, *, include_hidden: bool = False, untrimmed: bool = False
) -> list[Chapter]:
    """Each pin of a product is a chapter, in order. A pin made before the
    trimmed start begins the replay (0); one after the trimmed end is left
    out, and so are hidden ones unless ``include_hidden``. ``untrimmed``:
    times in the whole recording, every pin (the host's form)."""
    found = []
    pins = Pin.objects.filter(show=show).select_related("product")
    for pin in pins.order_by("pinned_at", "id"):
        seconds = replay_seconds(show, pin.pinned_at)
        if untrimmed and seconds is not None:
            seconds += show.replay_start_seconds
        elif not _in_replay(show, seconds):
            continue
        if pin.hidden_in_replay and not include_hidden:
            continue
        found.append(
            Chapter(
                pin_id=pin.pk,
                product_id=pin.product_id,
                name=pin.product.name,
                at=max(0, int(seconds or 0)),
                hidden=pin.hidden_in_replay,
            )
        )
    return found


def pin_spans(show: Show) -> list[dict[str, Any]]:
    """When each product card was up, in seconds of the replay: ``from`` and
    ``to`` (None: until the end). Pins the host hid are left out."""
    spans = []
    pins = Pin.objects.filter(show=show, hidden_in_replay=False)
    for pin in pins.order_by("pinned_at", "id"):
        start = replay_seconds(show, pin.pinned_at)
        if not _in_replay(show, start):
            continue
        end = replay_seconds(show, pin.unpinned_at)
        if end is not None and end <= 0:
            continue
        spans.append(
            {
                "product_id": pin.product_id,
                "from": max(0.0, round(start or 0.0, 1)),
                "to": None if end is None else round(end, 1),
            }
        )
    return spans


def _at(show: Show, moment: datetime | None) -> float | None:
    seconds = replay_seconds(show, moment)
    if seconds is None or not _in_replay(show, seconds):
        return None
    return round(max(0.0, seconds), 1)


def timeline(show: Show) -> dict[str, list[dict[str, Any]]]:
    """The chat (visible messages, the last ``CHAT_MAX``) and the answered
    questions with their answers, each with ``at``: when it was written, in
    seconds of the replay. What was written before the trimmed start shows
    from the start (0); what came after the trimmed end is left out."""
    messages = (
        ChatMessage.objects.filter(show=show, hidden=False, deleted_at__isnull=True)
        .select_related("author")
        .order_by("-id")[:CHAT_MAX]
    )
    chat = []
    for message in reversed(list(messages)):
        at = _at(show, message.created_at)
        if at is not None:
            chat.append(
                {
                    "id": message.pk,
                    "at": at,
                    "author": _name(message.author),
                    "text": message.text,
                }
            )
    questions = (
        Question.objects.filter(show=show, status=Question.Status.ANSWERED)
        .filter(~Q(answer=""), answered_at__isnull=False)
        .select_related("author")
        .order_by("answered_at", "id")[:ANSWERS_MAX]
    )
    answers = []
    for question in questions:
        at = _at(show, question.answered_at)
        if at is not None:
            answers.append(
                {
                    "id": question.pk,
                    "at": at,
                    "author": _name(question.author),
                    "text": question.text,
                    "answer": question.answer,
                }
            )
    chat.sort(key=lambda m: (m["at"], m["id"]))
    return {"chat": chat, "answers": answers}


def polls(show: Show) -> list[dict[str, Any]]:
    """The polls asked in the replay, each with ``at`` (when it was asked, in
    seconds of the replay) and its final counts and ``winners``; one asked
    before the trimmed start shows from the start, one after the end not."""
    asked = {
        p.pk: p.opened_at for p in Poll.objects.filter(show=show).only("opened_at")
    }
    found = []
    for card in poll_cards.show_polls(show=show):
        at = _at(show, asked.get(card["id"]))
        if at is not None:
            found.append(
                {**card, "at": at, "winners": poll_cards.winners(card["counts"])}
            )
    return found


def _name(user: Any) -> str:
    return user.display_name or str(user.pk)
