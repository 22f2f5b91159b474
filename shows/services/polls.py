"""Live polls (docs/polls.md): a host or moderator asks a question with two
to four answers, viewers answer once, the host closes it.

Opening and closing are persisted room events (through the outbox); a vote
is one small insert plus the voter's private ``poll.voted``; the counts reach
the room coalesced, at most about once a second, as the ephemeral
``poll.results`` (``poll_results_broadcast``, called by the socket side's
ticker, ``live.games.polls``).

The rules live in the database: one open poll per show
(``poll_one_open_per_show``) and one vote per voter and poll
(``poll_vote_once_per_voter``), so concurrent requests cannot break them. A
vote and a close exclude each other on the poll's row: the vote's insert
reads the poll ``FOR SHARE`` (votes do not wait for each other), the close
updates it, so the counts ``poll.closed`` carries are the final ones.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from realtime import events
from shows import poll_cards
from shows.exceptions import (
    AlreadyVoted,
    InvalidInput,
    LoginRequired,
    NotFound,
    ShowEnded,
    ShowfloorError,
)
from shows.models import Poll, Show, User
from shows.services.moderation import require_staff

POLL_OPENED = "poll.opened"
POLL_CLOSED = "poll.closed"
POLL_RESULTS = "poll.results"
POLL_VOTED = "poll.voted"
POLL_RESULTS_SHOWN = "poll.results_shown"

QUESTION_MAX = 200
OPTION_MAX = 80
MIN_OPTIONS = 2
MAX_OPTIONS = poll_cards.MAX_OPTIONS


class PollAlreadyOpen(ShowfloorError):
    code = "poll_open"
    default_message = gettext_lazy(
        "A poll is already open: close it before asking another."
    )


class PollClosed(ShowfloorError):
    code = "poll_closed"
    default_message = gettext_lazy("This poll is closed.")


def _question(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(_("Write the question."))
    question = " ".join(text.split())
    if len(question) > QUESTION_MAX:
        raise InvalidInput(
            _("The question is longer than %(limit)d characters.")
            % {"limit": QUESTION_MAX}
        )
    return question


def _options(options: object) -> list[str]:
    if not isinstance(options, list | tuple) or not all(
        isinstance(o, str) for o in options
    ):
        raise InvalidInput(_("The answers must be a list of texts."))
    cleaned = [" ".join(o.split()) for o in options]
    if any(not o for o in cleaned):
        raise InvalidInput(_("An answer is empty: write it or remove it."))
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise InvalidInput(
            _("A poll has from %(low)d to %(high)d answers.")
            % {"low": MIN_OPTIONS, "high": MAX_OPTIONS}
        )
    for number, option in enumerate(cleaned, start=1):
        if len(option) > OPTION_MAX:
            raise InvalidInput(
                _("Answer %(n)d is longer than %(limit)d characters.")
                % {"n": number, "limit": OPTION_MAX}
            )
    if len({o.casefold() for o in cleaned}) < len(cleaned):
        raise InvalidInput(_("Two answers are the same."))
    return cleaned


def poll_open(
    *, show: Show, actor: User | None, question: object, options: object
) -> Poll:
    """Ask ``question`` with two to four ``options`` in the show's room. The
    brand's owners, hosts and moderators only; not once the show ended.

    Raises ``NotAHost``, ``ShowEnded``, ``InvalidInput`` (the question or an
    answer empty, too long, repeated; not two to four answers) or ``PollAlreadyOpen``.
    Broadcasts ``poll.opened`` with the poll's card.
    """
    staff = require_staff(show=show, user=actor)
    text = _question(question)
    answers = _options(options)
    try:
        with transaction.atomic():
            status = (
                Show.objects.filter(pk=show.pk).values_list("status", flat=True).get()
            )
            if status == Show.Status.ENDED:
                raise ShowEnded()
            poll = Poll.objects.create(
                show=show,
                question=text,
                options=answers,
                created_by=staff,
                opened_at=timezone.now(),
            )
            events.broadcast(
                show.pk, {"type": POLL_OPENED, "poll": poll_cards.poll_card(poll)}
            )
    except IntegrityError as exc:
        raise PollAlreadyOpen() from exc
    return poll


# One statement: the vote goes in only while the poll of this show is open
# and the answer is one of its own. ``FOR SHARE`` makes a close wait for the
# votes already under way, and a vote that comes after a close see it.
_VOTE_SQL = {
    "postgresql": (
        "INSERT INTO shows_pollvote (poll_id, voter, option, created_at) "
        "SELECT p.id, %s, %s, %s FROM shows_poll p "
        "WHERE p.id = %s AND p.show_id = %s AND p.closed_at IS NULL "
        "AND jsonb_array_length(p.options) > %s FOR SHARE"
    ),
    "sqlite": (
        "INSERT INTO shows_pollvote (poll_id, voter, option, created_at) "
        "SELECT p.id, %s, %s, %s FROM shows_poll p "
        "WHERE p.id = %s AND p.show_id = %s AND p.closed_at IS NULL "
        "AND json_array_length(p.options) > %s"
    ),
}


def poll_vote(
    *,
    show: Show,
    poll_id: int,
    option: int,
    user: User | None,
    session_key: str | None = None,
) -> None:
    """Answer the open poll ``poll_id`` with answer ``option`` (0-based), once
    per voter: the signed-in ``user``, else the guest's ``session_key``.

    Raises ``LoginRequired`` (neither), ``AlreadyVoted`` (the unique
    constraint said so), ``PollClosed``, ``NotFound`` (no such poll in this
    show) or ``InvalidInput`` (no such answer). Sends ``poll.voted`` to the
    voter's own sockets; the room's counts follow with ``poll.results``.
    """
    if user is not None and user.is_authenticated:
        voter = poll_cards.user_voter(user.pk)
        recipient = events.user_recipient(user.pk)
    elif session_key:
        voter = poll_cards.session_voter(session_key)
        recipient = events.session_recipient(session_key)
    else:
        raise LoginRequired(_("Log in to answer the poll."))
    if isinstance(option, bool) or not isinstance(option, int) or option < 0:
        raise InvalidInput(_("That answer is not in the poll."))
    if option >= MAX_OPTIONS:
        raise InvalidInput(_("That answer is not in the poll."))
    sql = _VOTE_SQL["sqlite" if connection.vendor == "sqlite" else "postgresql"]
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    sql, [voter, option, timezone.now(), poll_id, show.pk, option]
                )
                inserted = cursor.rowcount
            if inserted == 1:
                events.notify(
                    show.pk,
                    recipient,
                    {"type": POLL_VOTED, "poll_id": poll_id, "option": option},
                )
    except IntegrityError as exc:
        raise AlreadyVoted(_("You have already answered this poll.")) from exc
    if inserted != 1:
        raise _why_not(show=show, poll_id=poll_id)


def _why_not(*, show: Show, poll_id: int) -> ShowfloorError:
    """Why a vote found no open poll to go into (read after the fact: the
    insert itself decided)."""
    poll = Poll.objects.filter(pk=poll_id, show=show).only("closed_at").first()
    if poll is None:
        return NotFound(_("That poll is not in this show."))
    if poll.closed_at is not None:
        return PollClosed()
    return InvalidInput(_("That answer is not in the poll."))


def _close_locked(*, show: Show, poll: Poll) -> None:
    """Close ``poll``, whose row the caller's transaction locked, and
    broadcast ``poll.closed``."""
    poll.closed_at = timezone.now()
    poll.save(update_fields=["closed_at"])
    # After the row lock: every vote that got in is counted, none can follow.
    card = poll_cards.poll_card(poll, poll_cards.counts_of(poll.pk, len(poll.options)))
    events.broadcast(
        show.pk,
        {
            "type": POLL_CLOSED,
            "poll_id": poll.pk,
            "counts": card["counts"],
            "total": card["total"],
            "winners": card["winners"],
            "closed_at": card["closed_at"],
        },
    )


def poll_close(*, show: Show, actor: User | None, poll_id: int | None = None) -> Poll:
    """Close the poll (``poll_id``, or the show's open one): no more votes,
    and everybody sees the final counts and the winning answer(s). The
    brand's owners, hosts and moderators only.

    Raises ``NotAHost``, ``NotFound`` or ``PollClosed`` (closed already).
    Broadcasts ``poll.closed`` with the final counts and ``winners``.
    """
    require_staff(show=show, user=actor)
    with transaction.atomic():
        polls = Poll.objects.select_for_update().filter(show=show)
        if poll_id is not None:
            poll = polls.filter(pk=poll_id).first()
        else:
            poll = polls.filter(closed_at__isnull=True).first()
        if poll is None:
            raise NotFound(_("There is no such poll in this show."))
        if poll.closed_at is not None:
            raise PollClosed()
        _close_locked(show=show, poll=poll)
    return poll


def poll_results_show(
    *, show: Show, actor: User | None, poll_id: int | None = None
) -> Poll:
    """Show the open poll's live results to everybody, also to viewers who
    have not answered (they may still answer). The brand's owners, hosts and
    moderators only; once per poll (again: nothing changes).

    Raises ``NotAHost``, ``NotFound`` or ``PollClosed`` (a closed poll's
    result is shown anyway). Broadcasts ``poll.results_shown`` with the
    counts.
    """
    require_staff(show=show, user=actor)
    with transaction.atomic():
        polls = Poll.objects.select_for_update().filter(show=show)
        if poll_id is not None:
            poll = polls.filter(pk=poll_id).first()
        else:
            poll = polls.filter(closed_at__isnull=True).first()
        if poll is None:
            raise NotFound(_("There is no such poll in this show."))
        if poll.closed_at is not None:
            raise PollClosed()
        if poll.results_shown_at is not None:
            return poll
        poll.results_shown_at = timezone.now()
        poll.save(update_fields=["results_shown_at"])
        counts = poll_cards.counts_of(poll.pk, len(poll.options))
        events.broadcast(
            show.pk,
            {
                "type": POLL_RESULTS_SHOWN,
                "poll_id": poll.pk,
                "counts": counts,
                "total": sum(counts),
            },
        )
    return poll


def poll_close_for_show(*, show: Show) -> Poll | None:
    """Close the show's open poll, if any (the show ended: no actor). Call it
    in the show's end. Broadcasts ``poll.closed``."""
    with transaction.atomic():
        poll = (
            Poll.objects.select_for_update()
            .filter(show=show, closed_at__isnull=True)
            .first()
        )
        if poll is not None:
            _close_locked(show=show, poll=poll)
    return poll


def poll_results_broadcast(*, poll_id: int) -> dict[str, Any] | None:
    """Send the room the poll's current counts (``poll.results``, ephemeral):
    one aggregate query. The socket side calls it at most about once a second
    per poll while votes come in, never per vote. Nothing for a closed poll
    (``poll.closed`` carried its final counts)."""
    found = poll_cards.results(poll_id)
    if found is None or not found["open"]:
        return None
    event = {
        "type": POLL_RESULTS,
        "poll_id": found["poll_id"],
        "counts": found["counts"],
        "total": found["total"],
    }
    events.broadcast_ephemeral(found["show_id"], event)
    return event
