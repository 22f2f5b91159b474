"""Giveaways with an auditable draw (docs/giveaways.md).

A host or moderator opens a giveaway on a prize (a line-up product or a named
prize) with its rules: who may enter, how (a button or a chat keyword) and
until when. Opening publishes the commitment, the SHA-256 of a secret seed;
at ``closes_at`` (or when the host draws early) the seed and the sorted list
of entry tokens decide the winner (``shows.giveaway_draw``), and both are
published so that anybody can recompute it. The winner claims within
``claim_seconds``; an unclaimed prize is drawn again among the others by the
same method, round after round.

Every write checks its preconditions, changes rows in one transaction and
broadcasts through ``realtime.events`` in it (so only after commit). Drawing
is once per giveaway and round: a conditional update opens the draw, and
``GiveawayDraw`` is unique per giveaway and round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from realtime import events
from shows import giveaway_cards as cards
from shows import giveaway_draw as method
from shows import selectors
from shows.exceptions import (
    InvalidInput,
    LoginRequired,
    NotFound,
    NotInLineup,
    ShowfloorError,
    ShowNotLive,
)
from shows.models import (
    Follow,
    Giveaway,
    GiveawayDraw,
    GiveawayEntry,
    LineupItem,
    Show,
    User,
)
from shows.services.moderation import require_staff

logger = logging.getLogger(__name__)

GIVEAWAY_STARTED = "giveaway.started"
GIVEAWAY_ENTRIES = "giveaway.entries"
GIVEAWAY_DRAWN = "giveaway.drawn"
GIVEAWAY_REDRAWN = "giveaway.redrawn"
GIVEAWAY_CLAIMED = "giveaway.claimed"
GIVEAWAY_CANCELLED = "giveaway.cancelled"
GIVEAWAY_ENTERED = "giveaway.entered"
GIVEAWAY_WON = "giveaway.won"

MIN_SECONDS = 10
MAX_SECONDS = 3600
MIN_CLAIM_SECONDS = 60
MAX_CLAIM_SECONDS = 86400
MAX_PRIZE_LENGTH = 200
MAX_KEYWORD_LENGTH = 20


class GiveawayRunning(ShowfloorError):
    code = "giveaway_running"
    default_message = gettext_lazy(
        "A giveaway is already open in this show: draw or cancel it first."
    )


class GiveawayClosed(ShowfloorError):
    code = "giveaway_closed"
    default_message = gettext_lazy("This giveaway is closed.")


class NotEligible(ShowfloorError):
    code = "not_eligible"
    default_message = gettext_lazy("You cannot enter this giveaway.")


class NotTheWinner(ShowfloorError):
    code = "not_the_winner"
    default_message = gettext_lazy("Only the winner can claim the prize.")


class ClaimExpired(ShowfloorError):
    code = "claim_expired"
    default_message = gettext_lazy("The time to claim this prize has passed.")


class NothingToRedraw(ShowfloorError):
    code = "nothing_to_redraw"
    default_message = gettext_lazy(
        "There is nothing to draw again: the prize was claimed, or its winner "
        "still has time to claim it."
    )


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _giveaway_of_show(*, show: Show, giveaway_id: int) -> Giveaway:
    giveaway = Giveaway.objects.filter(pk=giveaway_id, show=show).first()
    if giveaway is None:
        raise NotFound()
    return giveaway


def _lock_open(giveaway_id: int) -> bool:
    """Hold the giveaway open for this transaction: a shared lock on its row
    while its status is open (PostgreSQL). Entries take it side by side; the
    draw's update waits for them, so no entry commits after the list was
    read. SQLite writes one transaction at a time and needs none."""
    if connection.vendor != "postgresql":
        return Giveaway.objects.filter(
            pk=giveaway_id, status=Giveaway.Status.OPEN
        ).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM shows_giveaway WHERE id = %s AND status = %s FOR SHARE",
            [giveaway_id, Giveaway.Status.OPEN.value],
        )
        return cursor.fetchone() is not None


# --- Starting ---------------------------------------------------------------


def _clean_rules(
    *,
    show: Show,
    prize: str,
    product_id: int | None,
    eligibility: str,
    entry: str,
    keyword: str,
    duration_seconds: int,
    claim_seconds: int,
) -> tuple[str, int | None, str]:
    """The prize's name, its product and the keyword, checked."""
    if eligibility not in Giveaway.Eligibility.values:
        raise InvalidInput(_("Choose who may enter."))
    if entry not in Giveaway.Entry.values:
        raise InvalidInput(_("Choose how viewers enter."))
    if not MIN_SECONDS <= duration_seconds <= MAX_SECONDS:
        raise InvalidInput(_("A giveaway is open from 10 seconds to an hour."))
    if not MIN_CLAIM_SECONDS <= claim_seconds <= MAX_CLAIM_SECONDS:
        raise InvalidInput(_("The winner has from a minute to a day to claim."))
    name = prize.strip()
    if product_id is not None:
        item = (
            LineupItem.objects.filter(show=show, product_id=product_id)
            .select_related("product")
            .first()
        )
        if item is None:
            raise NotInLineup()
        name = name or item.product.name
    if not name:
        raise InvalidInput(_("Name the prize or choose a product."))
    if len(name) > MAX_PRIZE_LENGTH:
        raise InvalidInput(_("The prize's name is longer than 200 characters."))
    word = keyword.strip()
    if entry == Giveaway.Entry.KEYWORD:
        if not word or len(word) > MAX_KEYWORD_LENGTH or len(word.split()) != 1:
            raise InvalidInput(_("The keyword is one word of at most 20 characters."))
    else:
        word = ""
    return name, product_id, word


def giveaway_start(
    *,
    show: Show,
    user: User | None,
    prize: str = "",
    product_id: int | None = None,
    eligibility: str = Giveaway.Eligibility.SIGNED_IN,
    entry: str = Giveaway.Entry.BUTTON,
    keyword: str = "",
    duration_seconds: int,
    claim_seconds: int = 600,
) -> Giveaway:
    """Open a giveaway in a live show, now, for ``duration_seconds``. The
    brand's hosts and moderators may. The prize is a line-up product (its name
    unless ``prize`` names it otherwise) or a named prize.

    Raises ``NotAHost``, ``ShowNotLive``, ``NotInLineup``, ``InvalidInput`` or
    ``GiveawayRunning`` (one open giveaway per show). Broadcasts
    ``giveaway.started`` with the card, whose ``seed_hash`` is the commitment.
    """
    actor = require_staff(show=show, user=user)
    show.refresh_from_db(fields=["status"])
    if show.status != Show.Status.LIVE:
        raise ShowNotLive()
    name, product_id, word = _clean_rules(
        show=show,
        prize=prize,
        product_id=product_id,
        eligibility=eligibility,
        entry=entry,
        keyword=keyword,
        duration_seconds=duration_seconds,
        claim_seconds=claim_seconds,
    )
    seed = method.new_seed()
    with transaction.atomic():
        # One start at a time per show: the open check below cannot race.
        Show.objects.select_for_update().filter(pk=show.pk).first()
        if Giveaway.objects.filter(show=show, status=Giveaway.Status.OPEN).exists():
            raise GiveawayRunning()
        now = timezone.now()
        giveaway = Giveaway.objects.create(
            show=show,
            prize=name,
            product_id=product_id,
            eligibility=eligibility,
            entry=entry,
            keyword=word,
            opened_at=now,
            closes_at=now + timedelta(seconds=duration_seconds),
            seed=seed,
            seed_hash=method.commitment(seed),
            claim_seconds=claim_seconds,
            created_by=actor,
        )
        card = cards.card_now(giveaway, slug=show.slug)
        events.broadcast(
            show.pk,
            {"type": GIVEAWAY_STARTED, "giveaway": card, "server_now": _epoch_ms(now)},
        )
    return giveaway


# --- Entering ---------------------------------------------------------------


def _refuse_unless_eligible(
    *, show: Show, giveaway: Giveaway, user: User, bought: Callable[[], bool] | None
) -> None:
    if selectors.user_is_show_staff(user=user, show=show):
        raise NotEligible(_("The brand's team cannot enter its own giveaway."))
    if giveaway.eligibility == Giveaway.Eligibility.FOLLOWERS:
        if not Follow.objects.filter(user=user, brand_id=show.brand_id).exists():
            raise NotEligible(
                _("This giveaway is for followers of %(brand)s: follow them to enter.")
                % {"brand": show.brand.name}
            )
    elif giveaway.eligibility == Giveaway.Eligibility.BUYERS and not (
        bought is not None and bought()
    ):
        raise NotEligible(
            _("This giveaway is for buyers in this show: a paid order lets you enter.")
        )


def giveaway_enter(
    *,
    show: Show,
    user: User | None,
    giveaway_id: int,
    bought: Callable[[], bool] | None = None,
) -> GiveawayEntry:
    """Enter ``user`` into an open giveaway of ``show``, once: entering again
    gives the same entry. ``bought`` answers whether the user has a paid order
    in this show (checkout's read, asked only for a buyers' giveaway: this app
    does not import checkout).

    Raises ``LoginRequired``, ``NotFound``, ``GiveawayClosed`` (after
    ``closes_at`` or once drawn) or ``NotEligible`` with the reason. Tells
    the entrant their token (``giveaway.entered``, private); the entry count
    is sent to the room by ``giveaway_entries_publish``, coalesced.
    """
    if user is None or not user.is_authenticated:
        raise LoginRequired()
    giveaway = _giveaway_of_show(show=show, giveaway_id=giveaway_id)
    if giveaway.status != Giveaway.Status.OPEN or giveaway.closes_at <= timezone.now():
        raise GiveawayClosed()
    _refuse_unless_eligible(show=show, giveaway=giveaway, user=user, bought=bought)
    language = translation.get_language() or ""
    with transaction.atomic():
        if not _lock_open(giveaway.pk):
            raise GiveawayClosed()
        entry = GiveawayEntry.objects.filter(giveaway=giveaway, user=user).first()
        already = entry is not None
        if entry is None:
            entry = _new_entry(giveaway=giveaway, user=user, language=language)
        events.notify(
            show.pk,
            events.user_recipient(user.pk),
            {
                "type": GIVEAWAY_ENTERED,
                "giveaway_id": giveaway.pk,
                "token": entry.token,
                "already": already,
            },
        )
    return entry


def _new_entry(*, giveaway: Giveaway, user: User, language: str) -> GiveawayEntry:
    # A second socket of the same user entering at the same moment meets the
    # unique constraint; a token collision (2^-64) just takes another token.
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return GiveawayEntry.objects.create(
                    giveaway=giveaway,
                    user=user,
                    token=method.new_token(),
                    language=language[:16],
                )
        except IntegrityError:
            existing = GiveawayEntry.objects.filter(
                giveaway=giveaway, user=user
            ).first()
            if existing is not None:
                return existing
    raise GiveawayClosed()


def giveaway_entries_publish(*, giveaway_id: int) -> int:
    """Send the room the giveaway's entry count (``giveaway.entries``,
    ephemeral); the count. Callers coalesce it (at most one a second)."""
    giveaway = Giveaway.objects.filter(pk=giveaway_id).only("show_id").first()
    if giveaway is None:
        return 0
    count = GiveawayEntry.objects.filter(giveaway_id=giveaway_id).count()
    events.broadcast_ephemeral(
        giveaway.show_id,
        {
            "type": GIVEAWAY_ENTRIES,
            "giveaway_id": giveaway_id,
            "count": count,
            "server_now": _epoch_ms(timezone.now()),
        },
    )
    return count


# --- Drawing ----------------------------------------------------------------


def _announce_winner(
    *, giveaway: Giveaway, show: Show, draw: GiveawayDraw, now: datetime
) -> None:
    """The winner's private notice and email (inside the draw's transaction)."""
    from shows.giveaway_emails import giveaway_won_email_deliver

    events.notify(
        show.pk,
        events.user_recipient(draw.entry.user_id),
        {
            "type": GIVEAWAY_WON,
            "giveaway_id": giveaway.pk,
            "round": draw.round,
            "prize": giveaway.prize,
            "token": draw.entry.token,
            "claim_by": _epoch_ms(draw.claim_by),
            "server_now": _epoch_ms(now),
        },
    )
    draw_id = draw.pk
    transaction.on_commit(lambda: giveaway_won_email_deliver.enqueue(draw_id=draw_id))


def _draw_round(
    giveaway: Giveaway, *, round_number: int, now: datetime
) -> GiveawayDraw | None:
    """Draw round ``round_number`` among the entries not drawn before (the
    method in ``shows.giveaway_draw``); None when nobody is left."""
    tokens = dict(
        GiveawayEntry.objects.filter(giveaway=giveaway).values_list("token", "pk")
    )
    drawn = set(
        GiveawayDraw.objects.filter(giveaway=giveaway).values_list(
            "entry__token", flat=True
        )
    )
    remaining = [token for token in method.sorted_tokens(tokens) if token not in drawn]
    if not remaining:
        return None
    token = remaining[method.winner_index(giveaway.seed, round_number, remaining)]
    draw = GiveawayDraw.objects.create(
        giveaway=giveaway,
        round=round_number,
        entry_id=tokens[token],
        drawn_at=now,
        claim_by=now + timedelta(seconds=giveaway.claim_seconds),
    )
    return GiveawayDraw.objects.select_related("entry__user").get(pk=draw.pk)


def _close_and_draw(giveaway_id: int, *, now: datetime) -> bool:
    """Close an open giveaway and draw its first round; False when it was
    not open (another process drew it, or it was cancelled)."""
    with transaction.atomic():
        giveaway = Giveaway.objects.select_related("show").get(pk=giveaway_id)
        closes_at = min(giveaway.closes_at, now)
        if closes_at <= giveaway.opened_at:
            closes_at = giveaway.opened_at + timedelta(microseconds=1)
        # The conditional update is the one way in: a second drawer (another
        # process, the sweeper) changes no row and draws nothing. It waits
        # for entries holding the row (``_lock_open``) to commit first.
        if not Giveaway.objects.filter(
            pk=giveaway_id, status=Giveaway.Status.OPEN
        ).update(status=Giveaway.Status.DRAWN, drawn_at=now, closes_at=closes_at):
            return False
        giveaway.refresh_from_db()
        draw = _draw_round(giveaway, round_number=1, now=now)
        show = giveaway.show
        card = cards.card_now(giveaway, slug=show.slug)
        events.broadcast(
            show.pk,
            {
                "type": GIVEAWAY_DRAWN,
                "giveaway_id": giveaway.pk,
                "giveaway": card,
                "round": 1,
                "winner": draw.entry.user.display_name if draw else None,
                "token": draw.entry.token if draw else None,
                "claim_by": _epoch_ms(draw.claim_by) if draw else None,
                "seed": giveaway.seed,
                "seed_hash": giveaway.seed_hash,
                "entries": cards.published_list(giveaway),
                "server_now": _epoch_ms(now),
            },
        )
        if draw is not None:
            _announce_winner(giveaway=giveaway, show=show, draw=draw, now=now)
    return True


def giveaway_draw(*, show: Show, user: User | None, giveaway_id: int) -> None:
    """Close an open giveaway now, before ``closes_at``, and draw its winner.
    Hosts and moderators may. Raises ``NotAHost``, ``NotFound`` or
    ``GiveawayClosed`` (drawn or cancelled already). Broadcasts
    ``giveaway.drawn`` (the seed and the list) and tells the winner
    (``giveaway.won`` and an email)."""
    require_staff(show=show, user=user)
    giveaway = _giveaway_of_show(show=show, giveaway_id=giveaway_id)
    if not _close_and_draw(giveaway.pk, now=timezone.now()):
        raise GiveawayClosed()


def _redraw(giveaway_id: int, *, now: datetime) -> bool:
    """Draw the next round when the last winner let ``claim_by`` pass; when
    nobody is left, the prize stays unclaimed. False when there was nothing
    to draw (claimed, cancelled, still within the claim window)."""
    with transaction.atomic():
        giveaway = (
            Giveaway.objects.select_for_update()
            .filter(pk=giveaway_id, status=Giveaway.Status.DRAWN)
            .first()
        )
        if giveaway is None:
            return False
        last = (
            GiveawayDraw.objects.filter(giveaway=giveaway)
            .select_related("entry__user")
            .order_by("-round")
            .first()
        )
        if last is None or last.claimed_at is not None or last.claim_by > now:
            return False
        draw = _draw_round(giveaway, round_number=last.round + 1, now=now)
        if draw is None:
            giveaway.status = Giveaway.Status.UNCLAIMED
            giveaway.save(update_fields=["status"])
        show = Show.objects.get(pk=giveaway.show_id)
        events.broadcast(
            show.pk,
            {
                "type": GIVEAWAY_REDRAWN,
                "giveaway_id": giveaway.pk,
                "giveaway": cards.card_now(giveaway, slug=show.slug),
                "round": last.round + 1,
                "previous": last.entry.user.display_name,
                "winner": draw.entry.user.display_name if draw else None,
                "token": draw.entry.token if draw else None,
                "claim_by": _epoch_ms(draw.claim_by) if draw else None,
                "seed": giveaway.seed,
                "seed_hash": giveaway.seed_hash,
                "server_now": _epoch_ms(now),
            },
        )
        if draw is not None:
            _announce_winner(giveaway=giveaway, show=show, draw=draw, now=now)
    return True


def giveaway_redraw(*, show: Show, user: User | None, giveaway_id: int) -> None:
    """Draw the next winner of a prize whose winner did not claim it by
    ``claim_by`` (the sweeper does this by itself; the host need not wait for
    it). Hosts and moderators may. Raises ``NotAHost``, ``NotFound`` or
    ``NothingToRedraw``. Broadcasts ``giveaway.redrawn``."""
    require_staff(show=show, user=user)
    giveaway = _giveaway_of_show(show=show, giveaway_id=giveaway_id)
    if not _redraw(giveaway.pk, now=timezone.now()):
        raise NothingToRedraw()


def giveaway_due_at(*, giveaway_id: int) -> datetime | None:
    """When the giveaway next needs the server: its close while open, the
    last winner's ``claim_by`` while unclaimed; None when it is over."""
    giveaway = Giveaway.objects.filter(pk=giveaway_id).first()
    if giveaway is None:
        return None
    if giveaway.status == Giveaway.Status.OPEN:
        return giveaway.closes_at
    if giveaway.status == Giveaway.Status.DRAWN:
        last = GiveawayDraw.objects.filter(giveaway=giveaway).order_by("-round").first()
        if last is not None and last.claimed_at is None:
            return last.claim_by
    return None


def giveaway_draw_due(*, now: datetime | None = None) -> int:
    """The sweeper's pass: draw every open giveaway whose ``closes_at`` has
    passed, and draw again every prize whose winner let ``claim_by`` pass.
    Safe beside the per-process timers and other sweepers (each draw happens
    once). Returns how many draws it made (a round with nobody left counts)."""
    now = now or timezone.now()
    done = 0
    for pk in Giveaway.objects.filter(
        status=Giveaway.Status.OPEN, closes_at__lte=now
    ).values_list("pk", flat=True):
        done += _close_and_draw(pk, now=now)
    last_claim_by = Subquery(
        GiveawayDraw.objects.filter(giveaway=OuterRef("pk"))
        .order_by("-round")
        .values("claim_by")[:1]
    )
    for pk in (
        Giveaway.objects.filter(status=Giveaway.Status.DRAWN)
        .annotate(last_claim_by=last_claim_by)
        .filter(last_claim_by__lte=now)
        .values_list("pk", flat=True)
    ):
        done += _redraw(pk, now=now)
    return done


# --- Claiming and cancelling --------------------------------------------------


def giveaway_claim(*, show: Show, user: User | None, giveaway_id: int) -> GiveawayDraw:
    """The winner of the current round claims the prize before ``claim_by``.
    Raises ``LoginRequired``, ``NotFound``, ``NotTheWinner``, ``ClaimExpired``
    or ``GiveawayClosed`` (cancelled, or not drawn yet). Claiming twice is
    answered as the first time. Broadcasts ``giveaway.claimed``."""
    if user is None or not user.is_authenticated:
        raise LoginRequired()
    _giveaway_of_show(show=show, giveaway_id=giveaway_id)
    now = timezone.now()
    with transaction.atomic():
        giveaway = Giveaway.objects.select_for_update().get(pk=giveaway_id)
        last = (
            GiveawayDraw.objects.filter(giveaway=giveaway)
            .select_related("entry__user")
            .order_by("-round")
            .first()
        )
        if last is None or giveaway.status not in (
            Giveaway.Status.DRAWN,
            Giveaway.Status.CLAIMED,
        ):
            raise GiveawayClosed()
        if last.entry.user_id != user.pk:
            if GiveawayDraw.objects.filter(
                giveaway=giveaway, entry__user=user
            ).exists():
                raise ClaimExpired()  # an earlier round's winner, too late
            raise NotTheWinner()
        if last.claimed_at is not None:
            return last
        if last.claim_by <= now:
            raise ClaimExpired()
        last.claimed_at = now
        last.save(update_fields=["claimed_at"])
        giveaway.status = Giveaway.Status.CLAIMED
        giveaway.save(update_fields=["status"])
        events.broadcast(
            show.pk,
            {
                "type": GIVEAWAY_CLAIMED,
                "giveaway_id": giveaway.pk,
                "giveaway": cards.card_now(giveaway, slug=show.slug),
                "round": last.round,
                "winner": last.entry.user.display_name,
                "server_now": _epoch_ms(now),
            },
        )
    return last


def giveaway_cancel(*, show: Show, user: User | None, giveaway_id: int) -> None:
    """Call off an open giveaway, or a drawn one whose prize is not claimed:
    nobody wins it. Hosts and moderators may. The seed is published all the
    same (the commitment is kept). Raises ``NotAHost``, ``NotFound`` or
    ``GiveawayClosed``. Broadcasts ``giveaway.cancelled``."""
    require_staff(show=show, user=user)
    giveaway = _giveaway_of_show(show=show, giveaway_id=giveaway_id)
    now = timezone.now()
    with transaction.atomic():
        if not Giveaway.objects.filter(
            pk=giveaway.pk,
            status__in=[Giveaway.Status.OPEN, Giveaway.Status.DRAWN],
        ).update(status=Giveaway.Status.CANCELLED):
            raise GiveawayClosed()
        giveaway.refresh_from_db()
        if giveaway.closes_at > now:
            Giveaway.objects.filter(pk=giveaway.pk).update(
                closes_at=max(now, giveaway.opened_at + timedelta(microseconds=1))
            )
            giveaway.refresh_from_db()
        events.broadcast(
            show.pk,
            {
                "type": GIVEAWAY_CANCELLED,
                "giveaway_id": giveaway.pk,
                "giveaway": cards.card_now(giveaway, slug=show.slug),
                "seed": giveaway.seed,
                "seed_hash": giveaway.seed_hash,
                "server_now": _epoch_ms(now),
            },
        )


def giveaway_tick(*, giveaway_id: int, now: datetime | None = None) -> bool:
    """Whatever one giveaway is due for now: its draw once ``closes_at`` has
    passed, the next round once its winner let ``claim_by`` pass (the
    per-process timer's call; ``giveaway_draw_due`` does it for all).
    True when it drew."""
    now = now or timezone.now()
    giveaway = (
        Giveaway.objects.filter(pk=giveaway_id).only("status", "closes_at").first()
    )
    if giveaway is None:
        return False
    if giveaway.status == Giveaway.Status.OPEN:
        return giveaway.closes_at <= now and _close_and_draw(giveaway_id, now=now)
    if giveaway.status == Giveaway.Status.DRAWN:
        return _redraw(giveaway_id, now=now)
    return False
