"""Reads of the live polls (docs/polls.md): the poll card every event and
snapshot carries, the counts, the room snapshot's ``poll`` part, and the
polls kept with a show for its report and replay. Writes are in
``shows.services.polls``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from shows.models import Poll, PollVote, Show, User

# A closed poll stays in the room's snapshot this long (its result on screen).
RECENT_CLOSED = timedelta(minutes=2)
MAX_OPTIONS = 4


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def user_voter(user_id: int) -> str:
    return f"u:{user_id}"


def session_voter(session_key: str) -> str:
    return f"s:{session_key}"


def winners(counts: list[int]) -> list[int]:
    """The index(es) of the answers with the most votes; none without votes."""
    top = max(counts, default=0)
    return [i for i, n in enumerate(counts) if n == top] if top else []


def counts_of(poll_id: int, options: int = MAX_OPTIONS) -> list[int]:
    """Votes per answer, in the answers' order: one aggregate query."""
    counts = [0] * options
    rows = (
        PollVote.objects.filter(poll_id=poll_id)
        .order_by()
        .values_list("option")
        .annotate(n=Count("id"))
    )
    for option, n in rows:
        if option < options:
            counts[option] = n
    return counts


def results(poll_id: int) -> dict[str, Any] | None:
    """``{poll_id, show_id, counts, total, open}`` of one poll (counts in the
    answers' order), read with one query; None when there is no such poll."""
    poll = (
        _with_counts(Poll.objects.filter(pk=poll_id))
        .only("id", "show_id", "options", "closed_at")
        .first()
    )
    if poll is None:
        return None
    counts = _counts(poll)[: len(poll.options)]
    return {
        "poll_id": poll.pk,
        "show_id": poll.show_id,
        "counts": counts,
        "total": sum(counts),
        "open": poll.closed_at is None,
    }


def poll_card(poll: Poll, counts: list[int] | None = None) -> dict[str, Any]:
    """A poll as events and snapshots carry it (docs/polls.md, "The card")."""
    options = [str(o) for o in poll.options]
    counts = (counts or [0] * len(options))[: len(options)]
    counts += [0] * (len(options) - len(counts))
    closed = poll.closed_at is not None
    return {
        "id": poll.pk,
        "question": poll.question,
        "options": options,
        "status": "closed" if closed else "open",
        "opened_at": epoch_ms(poll.opened_at),
        "closed_at": epoch_ms(poll.closed_at),
        "counts": counts,
        "total": sum(counts),
        "winners": winners(counts) if closed else [],
        # Everybody sees the results: the host showed them, or it closed.
        "results_shown": closed or poll.results_shown_at is not None,
    }


def _with_counts(queryset: Any) -> Any:
    return queryset.annotate(
        **{
            f"votes_{i}": Count("votes", filter=Q(votes__option=i))
            for i in range(MAX_OPTIONS)
        }
    )


def _counts(poll: Any) -> list[int]:
    return [int(getattr(poll, f"votes_{i}", 0) or 0) for i in range(MAX_OPTIONS)]


def room_poll(*, show: Show, user: User | None) -> dict[str, Any]:
    """The room snapshot's part: ``poll`` is the open poll, or the one closed
    in the last two minutes, with its counts and, for a signed-in viewer,
    ``my_option`` (the answer they gave, or None); None without a poll. One
    query. A guest's snapshot is shared by every guest, so a guest's page asks
    for its own answer with ``poll.mine``."""
    recent = timezone.now() - RECENT_CLOSED
    polls = Poll.objects.filter(show=show).filter(
        Q(closed_at__isnull=True) | Q(closed_at__gte=recent)
    )
    if user is not None and user.is_authenticated:
        polls = polls.annotate(
            mine=Subquery(
                PollVote.objects.filter(
                    poll=OuterRef("pk"), voter=user_voter(user.pk)
                ).values("option")[:1]
            )
        )
    # At most one is open, and it is the newest: it opened after the last closed.
    poll = (
        _with_counts(polls)
        .order_by("-opened_at", "-id")
        .only("id", "question", "options", "opened_at", "closed_at", "results_shown_at")
        .first()
    )
    if poll is None:
        return {"poll": None}
    card = poll_card(poll, _counts(poll))
    card["my_option"] = getattr(poll, "mine", None)
    return {"poll": card}


def voter_option(*, poll_id: int, voter: str) -> int | None:
    """The answer ``voter`` gave in the poll, or None."""
    return (
        PollVote.objects.filter(poll_id=poll_id, voter=voter)
        .values_list("option", flat=True)
        .first()
    )


def show_polls(*, show: Show) -> list[dict[str, Any]]:
    """Every poll of the show in the order asked, with its counts (the report
    and the replay keep them): two queries whatever their number."""
    polls = list(Poll.objects.filter(show=show).order_by("opened_at", "id"))
    counts: dict[int, list[int]] = {p.pk: [0] * len(p.options) for p in polls}
    rows = (
        PollVote.objects.filter(poll__show=show)
        .order_by()
        .values_list("poll_id", "option")
        .annotate(n=Count("id"))
    )
    for poll_id, option, n in rows:
        if poll_id in counts and option < len(counts[poll_id]):
            counts[poll_id][option] = n
    return [poll_card(poll, counts[poll.pk]) for poll in polls]
