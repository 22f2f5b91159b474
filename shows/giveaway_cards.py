"""Reads of the giveaways (docs/giveaways.md): the card the room shows, the
published list, and the snapshot's ``giveaway`` part. No writes here."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from shows import images
from shows.giveaway_draw import sorted_tokens
from shows.models import Giveaway, GiveawayDraw, GiveawayEntry, Show, User

# A drawn, claimed or cancelled giveaway stays on the room's card this long.
RECENT = timedelta(minutes=10)
# The room's snapshot carries the published list up to this many entries;
# past it the page links to the verification page, which always has it.
LIST_IN_ROOM = 500


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def verify_path(giveaway: Giveaway, *, slug: str) -> str:
    return reverse("giveaway_verify", args=[slug, giveaway.pk])


def draws_of(giveaway: Giveaway) -> list[GiveawayDraw]:
    return list(
        GiveawayDraw.objects.filter(giveaway=giveaway)
        .select_related("entry__user")
        .order_by("round")
    )


def published_list(giveaway: Giveaway) -> list[dict[str, str]]:
    """The entries as published after the draw: token and display name, the
    tokens in byte order (the order the draw uses)."""
    names = dict(
        GiveawayEntry.objects.filter(giveaway=giveaway).values_list(
            "token", "user__display_name"
        )
    )
    return [{"token": token, "name": names[token]} for token in sorted_tokens(names)]


def draw_json(draw: GiveawayDraw) -> dict[str, Any]:
    return {
        "round": draw.round,
        "winner": draw.entry.user.display_name,
        "token": draw.entry.token,
        "drawn_at": epoch_ms(draw.drawn_at),
        "claim_by": epoch_ms(draw.claim_by),
        "claimed_at": epoch_ms(draw.claimed_at),
    }


def giveaway_card(
    giveaway: Giveaway,
    *,
    slug: str,
    entry_count: int,
    draws: list[GiveawayDraw],
    now: datetime,
) -> dict[str, Any]:
    """A giveaway as the room shows it (``giveaway.*`` events and the
    snapshot): the prize, the rules, the window in the server's epoch ms, the
    commitment (and the seed once it is published), the entry count and each
    round's winner with its claim window."""
    product = giveaway.product
    published = giveaway.status != Giveaway.Status.OPEN
    last = draws[-1] if draws else None
    return {
        "id": giveaway.pk,
        "status": giveaway.status,
        "prize": giveaway.prize,
        "product": (
            {
                "id": product.pk,
                "name": product.name,
                "image_url": images.thumbnail_url(product.image) or product.image_url,
            }
            if product is not None
            else None
        ),
        "eligibility": giveaway.eligibility,
        "entry": giveaway.entry,
        "keyword": giveaway.keyword,
        "opened_at": epoch_ms(giveaway.opened_at),
        "closes_at": epoch_ms(giveaway.closes_at),
        "drawn_at": epoch_ms(giveaway.drawn_at),
        "claim_seconds": giveaway.claim_seconds,
        "seed_hash": giveaway.seed_hash,
        "seed": giveaway.seed if published else None,
        "entry_count": entry_count,
        "draws": [draw_json(draw) for draw in draws],
        "winner": last.entry.user.display_name if last else None,
        "verify_url": verify_path(giveaway, slug=slug),
        "server_now": epoch_ms(now),
    }


def card_now(giveaway: Giveaway, *, slug: str) -> dict[str, Any]:
    """``giveaway_card`` read fresh (two queries)."""
    return giveaway_card(
        giveaway,
        slug=slug,
        entry_count=GiveawayEntry.objects.filter(giveaway=giveaway).count(),
        draws=draws_of(giveaway),
        now=timezone.now(),
    )


def _room_queryset(*, show: Show, now: datetime) -> QuerySet[Giveaway]:
    return (
        Giveaway.objects.filter(show=show, opened_at__gte=now - timedelta(days=1))
        .exclude(
            status__in=[
                Giveaway.Status.CLAIMED,
                Giveaway.Status.UNCLAIMED,
                Giveaway.Status.CANCELLED,
            ],
            closes_at__lt=now - RECENT,
        )
        .select_related("product")
        .order_by("-opened_at", "-id")
    )


def giveaway_for_room(*, show: Show, now: datetime) -> Giveaway | None:
    """The giveaway the room's card shows: the show's newest one that is open
    or waits for its winner's claim, or that ended (claimed, cancelled, or
    nobody left to draw) within ``RECENT``."""
    return _room_queryset(show=show, now=now).first()


def room_giveaway(*, show: Show, user: User | None = None) -> dict[str, Any]:
    """The snapshot's ``giveaway``: the card of ``giveaway_for_room`` with
    the viewer's ``my_token`` (null when they have not entered), and once it
    is drawn the published list ``entries`` (null past ``LIST_IN_ROOM``: the
    verification page has it); null when there is none. One query without a
    giveaway, two while it is open, three once drawn."""
    now = timezone.now()
    queryset = _room_queryset(show=show, now=now).annotate(
        entry_count=Subquery(
            GiveawayEntry.objects.filter(giveaway=OuterRef("pk"))
            .order_by()
            .values("giveaway")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        )
    )
    if user is not None and user.is_authenticated:
        queryset = queryset.annotate(
            my_token=Subquery(
                GiveawayEntry.objects.filter(giveaway=OuterRef("pk"), user=user).values(
                    "token"
                )[:1]
            )
        )
    giveaway = queryset.first()
    if giveaway is None:
        return {"giveaway": None}
    count = int(giveaway.entry_count or 0)
    drawn = giveaway.status != Giveaway.Status.OPEN
    card = giveaway_card(
        giveaway,
        slug=show.slug,
        entry_count=count,
        draws=draws_of(giveaway) if drawn else [],
        now=now,
    )
    card["my_token"] = getattr(giveaway, "my_token", None)
    card["entries"] = (
        published_list(giveaway) if drawn and count <= LIST_IN_ROOM else None
    )
    return {"giveaway": card}


def giveaway_of_show(*, show: Show, giveaway_id: int) -> Giveaway | None:
    return (
        Giveaway.objects.filter(show=show, pk=giveaway_id)
        .select_related("product", "show")
        .first()
    )


def giveaway_verification(
    giveaway: Giveaway, *, user: User | None = None
) -> dict[str, Any]:
    """What the verification page shows: the card; once the seed is
    published, the full list and each round as the method recomputes it from
    the published seed and list alone (``recomputed`` per round, which the
    page compares with the recorded winner); and whether ``user`` is the
    winner who may still claim."""
    from shows.giveaway_draw import winner_of_round

    draws = draws_of(giveaway)
    card = giveaway_card(
        giveaway,
        slug=giveaway.show.slug,
        entry_count=GiveawayEntry.objects.filter(giveaway=giveaway).count(),
        draws=draws,
        now=timezone.now(),
    )
    entries = published_list(giveaway) if card["seed"] else []
    tokens = [entry["token"] for entry in entries]
    rounds = [
        {
            **draw_json(draw),
            "recomputed": winner_of_round(giveaway.seed, draw.round, tokens),
        }
        for draw in draws
    ]
    last = draws[-1] if draws else None
    may_claim = bool(
        user is not None
        and last is not None
        and last.entry.user_id == user.pk
        and last.claimed_at is None
        and last.claim_by > timezone.now()
        and giveaway.status == Giveaway.Status.DRAWN
    )
    my_token = (
        GiveawayEntry.objects.filter(giveaway=giveaway, user=user)
        .values_list("token", flat=True)
        .first()
        if user is not None
        else None
    )
    return {
        "card": card,
        "entries": entries,
        "rounds": rounds,
        "may_claim": may_claim,
        "claim_by": last.claim_by if last else None,
        "my_token": my_token,
    }
