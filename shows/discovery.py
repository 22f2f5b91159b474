"""Discovery: what the home page and the search show a visitor (reads only).

Only public shows are ever listed: a show with an access code is for the
people who have it, so it is left out of the home page and of every search
result (shows, and the "next show" of a product). There is no draft state in
this codebase: a show exists once it is scheduled.

Every read is bounded: each list is one query with ``select_related`` and a
``LIMIT``, so the home page costs the same with ten shows or ten thousand, and
the live viewer counts are one store read per live show on the page (at most
``LIVE_LIMIT``), skipped whole while Redis is known to be down.

Search matches with PostgreSQL's full-text search where the database is
PostgreSQL (a ``SearchVector`` in the viewer's language, ranked with
``SearchRank``, or-ed with a case-insensitive substring so a word's beginning,
"Nord" for "Nordlicht", finds it too), and with the case-insensitive substring
alone on SQLite (the embedded demo), folded by Python's ``str.casefold`` since
SQLite folds ASCII only. No index backs the vectors: they
are computed per row, which stays cheap at a catalogue's size and is bounded by
the page size; a GIN index would come with its own migration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Exists,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)

from realtime import counting
from realtime import redis as rclient
from shows.models import Brand, Follow, LineupItem, Product, Show, User

logger = logging.getLogger(__name__)

LIVE_LIMIT = 12
UPCOMING_LIMIT = 12
REPLAYS_LIMIT = 12
# Longer queries are cut: nobody types more, and a long one costs the database.
QUERY_MAX_CHARS = 100

# The viewer's language → PostgreSQL's text search configuration ("simple"
# where PostgreSQL has no stemmer: West Frisian).
SEARCH_CONFIGS = {"en": "english", "de": "german", "fr": "french"}


@dataclass
class HomeShows:
    live: list[Show]
    upcoming: list[Show]
    replays: list[Show]
    # Show id → people watching now (missing: unknown, e.g. Redis is down).
    viewers: dict[int, int] = field(default_factory=dict)


def public_shows() -> QuerySet[Show]:
    """Shows anybody may see (no access code), with their brand."""
    return Show.objects.select_related("brand").filter(access_code="")


def home_shows() -> HomeShows:
    """The home page: live shows (newest start first), upcoming ones (soonest
    first) and recent replays (ended shows with a recording, newest first).
    Three queries."""
    base = public_shows()
    live: list[Show] = list(
        base.filter(status=Show.Status.LIVE).order_by("-started_at")[:LIVE_LIMIT]
    )
    found = HomeShows(
        live=live,
        upcoming=list(
            base.filter(status=Show.Status.SCHEDULED).order_by("scheduled_at")[
                :UPCOMING_LIMIT
            ]
        ),
        replays=list(
            base.filter(status=Show.Status.ENDED)
            .exclude(recording_file="")
            .order_by("-ended_at")[:REPLAYS_LIMIT]
        ),
        viewers=live_viewers(live),
    )
    for show in found.live:
        # What the card shows ("37 watching"); absent when unknown.
        show.viewers_now = found.viewers.get(show.pk)  # type: ignore[attr-defined]
    return found


def live_viewers(shows: Sequence[Show]) -> dict[int, int]:
    """People watching each show now, from the counting store (the figure the
    room shows as ``viewers.count``): one read per show, at most
    ``LIVE_LIMIT``. When Redis does not answer the counts are left out (the
    page still loads) and the rest are not tried."""
    found: dict[int, int] = {}
    if rclient.url() and rclient.is_down():
        return found
    for show in shows[:LIVE_LIMIT]:
        try:
            now = counting.totals(show.pk).get("now.viewers")
        except rclient.ERRORS:
            rclient.mark_down()
            logger.warning("viewer counts left off the home page: Redis is down")
            return found
        if now is not None:
            found[show.pk] = now
    return found


# --- Search ----------------------------------------------------------------

# The groups of results, in the order the page shows them.
GROUPS = ("live", "upcoming", "replays", "brands", "products")


@dataclass
class Group:
    """One group's rows on this page, and whether more follow."""

    name: str
    rows: list[Any]
    more: bool = False


def search_query(raw: str) -> str:
    """The query as searched: spaces collapsed, at most ``QUERY_MAX_CHARS``."""
    return " ".join(raw.split())[:QUERY_MAX_CHARS]


def full_text_available() -> bool:
    return connection.vendor == "postgresql"


def _match(
    queryset: QuerySet[Any],
    query: str,
    *,
    fields: Sequence[str],
    order: Sequence[str],
    language: str,
) -> QuerySet[Any]:
    """``queryset`` narrowed to rows matching ``query`` in ``fields`` (the
    first weighs most): best first where the database ranks, then ``order``."""
    if connection.vendor == "sqlite":
        return _sqlite_match(queryset, query, fields).order_by(*order)
    substring = Q()
    for name in fields:
        substring |= Q(**{f"{name}__icontains": query})
    if not full_text_available():
        return queryset.filter(substring).order_by(*order)
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    config = SEARCH_CONFIGS.get(language, "simple")
    vector: Any = SearchVector(fields[0], weight="A", config=config)
    for name, weight in zip(fields[1:], ("B", "C", "D"), strict=False):
        vector = vector + SearchVector(name, weight=weight, config=config)
    terms = SearchQuery(query, search_type="websearch", config=config)
    matched: QuerySet[Any] = (
        queryset.annotate(search=vector, search_rank=SearchRank(vector, terms))
        .filter(Q(search=terms) | substring)
        .order_by("-search_rank", *order)
    )
    return matched


class _Folded(Func):
    """``casefold()`` of a text column, in Python (SQLite's own ``LIKE`` and
    ``lower()`` fold ASCII only: "ÄPFEL" would not find "Äpfel")."""

    function = "showfloor_casefold"
    output_field = CharField()


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _sqlite_match(
    queryset: QuerySet[Any], query: str, fields: Sequence[str]
) -> QuerySet[Any]:
    connection.ensure_connection()
    raw: Any = connection.connection
    raw.create_function("showfloor_casefold", 1, _casefold, deterministic=True)
    folded = query.casefold()
    wanted = Q()
    for index, name in enumerate(fields):
        queryset = queryset.alias(**{f"folded_{index}": _Folded(name)})
        wanted |= Q(**{f"folded_{index}__contains": folded})
    return queryset.filter(wanted)


SHOW_FIELDS = ("title", "brand__name", "description")


def search_group(*, name: str, query: str, language: str) -> QuerySet[Any]:
    """The matches of one group (``GROUPS``), best first. Shows are public
    ones only; products are those in some public show's line-up, each with
    its brand and ``next_show_id`` (the live, else the soonest scheduled,
    public show it is in; ``None`` when there is none)."""
    shows = public_shows()
    if name == "live":
        return _match(
            shows.filter(status=Show.Status.LIVE),
            query,
            fields=SHOW_FIELDS,
            order=("-started_at", "pk"),
            language=language,
        )
    if name == "upcoming":
        return _match(
            shows.filter(status=Show.Status.SCHEDULED),
            query,
            fields=SHOW_FIELDS,
            order=("scheduled_at", "pk"),
            language=language,
        )
    if name == "replays":
        return _match(
            shows.filter(status=Show.Status.ENDED).exclude(recording_file=""),
            query,
            fields=SHOW_FIELDS,
            order=("-ended_at", "pk"),
            language=language,
        )
    if name == "brands":
        return _match(
            Brand.objects.all(),
            query,
            fields=("name", "description"),
            order=("name", "pk"),
            language=language,
        )
    if name == "products":
        public_lineup = LineupItem.objects.filter(
            product=OuterRef("pk"), show__access_code=""
        )
        coming = public_lineup.filter(
            show__status__in=[Show.Status.LIVE, Show.Status.SCHEDULED]
        ).order_by(
            Case(When(show__status=Show.Status.LIVE, then=0), default=1),
            "show__scheduled_at",
        )
        products = (
            Product.objects.select_related("brand")
            .filter(Exists(public_lineup))
            .annotate(next_show_id=Subquery(coming.values("show_id")[:1]))
        )
        return _match(
            products,
            query,
            fields=("name", "brand__name", "description"),
            order=("name", "pk"),
            language=language,
        )
    raise ValueError(f"No search group {name!r}.")


def search_overview(*, query: str, language: str, per_group: int) -> list[Group]:
    """The first ``per_group`` matches of every group, each knowing whether
    more follow; one query per group, one more for the products' shows."""
    groups = []
    for name in GROUPS:
        rows = list(
            search_group(name=name, query=query, language=language)[: per_group + 1]
        )
        groups.append(
            Group(name=name, rows=rows[:per_group], more=len(rows) > per_group)
        )
    products = next(group for group in groups if group.name == "products")
    attach_next_shows(products.rows)
    return groups


def attach_next_shows(products: Sequence[Product]) -> None:
    """Give each product (from the ``products`` group) its ``next_show``
    (a ``Show`` with its brand, or ``None``): one query for all."""
    wanted = {getattr(p, "next_show_id", None) for p in products} - {None}
    found = public_shows().in_bulk(wanted) if wanted else {}
    for product in products:
        product.next_show = found.get(getattr(product, "next_show_id", None))  # type: ignore[attr-defined]


def followed_brand_ids(*, user: User | None) -> list[int]:
    """The brands ``user`` follows (their pages show "<Brand> is live now")."""
    if user is None:
        return []
    return list(Follow.objects.filter(user=user).values_list("brand_id", flat=True))
