"""Reads of the catalogue and shows: querysets and snapshot dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from realtime import outbox
from shows import images
from shows.models import (
    Brand,
    ChatMessage,
    LineupItem,
    Membership,
    Pin,
    Product,
    Question,
    QuestionVote,
    Restriction,
    Show,
    User,
    Variant,
)

STAFF_ROLES = (
    Membership.Role.OWNER,
    Membership.Role.HOST,
    Membership.Role.MODERATOR,
)


@dataclass(frozen=True)
class HomeShows:
    live: list[Show]
    upcoming: list[Show]
    recent: list[Show]


def show_list_home(*, recent_days: int = 30, limit: int = 12) -> HomeShows:
    """Public shows for the home page: live now, upcoming, recently ended."""
    base = Show.objects.select_related("brand").filter(access_code="")
    since = timezone.now() - timedelta(days=recent_days)
    return HomeShows(
        live=list(base.filter(status=Show.Status.LIVE).order_by("-started_at")[:limit]),
        upcoming=list(
            base.filter(status=Show.Status.SCHEDULED).order_by("scheduled_at")[:limit]
        ),
        recent=list(
            base.filter(status=Show.Status.ENDED, ended_at__gte=since).order_by(
                "-ended_at"
            )[:limit]
        ),
    )


def brand_public_shows(*, brand: Brand, limit: int = 24) -> HomeShows:
    """A brand's public shows for its page: live, upcoming, and past ones
    (their replays), newest first."""
    base = Show.objects.select_related("brand").filter(brand=brand, access_code="")
    return HomeShows(
        live=list(base.filter(status=Show.Status.LIVE).order_by("-started_at")[:limit]),
        upcoming=list(
            base.filter(status=Show.Status.SCHEDULED).order_by("scheduled_at")[:limit]
        ),
        recent=list(
            base.filter(status=Show.Status.ENDED).order_by("-ended_at")[:limit]
        ),
    )


def show_get(*, slug: str) -> Show:
    """The show with its brand; raises ``Show.DoesNotExist``."""
    return Show.objects.select_related("brand").get(slug=slug)


def show_lineup(*, show: Show) -> list[LineupItem]:
    """The line-up in order, each product with its variants (two queries)."""
    return list(
        LineupItem.objects.filter(show=show)
        .select_related("product")
        .prefetch_related(
            Prefetch("product__variants", queryset=Variant.objects.order_by("id"))
        )
    )


def membership_role(*, user: User | None, brand_id: int) -> str | None:
    """The user's role at the brand, or None."""
    if user is None or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, brand_id=brand_id)
        .values_list("role", flat=True)
        .first()
    )


def user_is_show_staff(*, user: User | None, show: Show) -> bool:
    """Whether the user may host or moderate ``show`` (a role at its brand)."""
    return membership_role(user=user, brand_id=show.brand_id) in STAFF_ROLES


# Session key under which a viewer's unlocked private shows are kept:
# ``{str(show_id): show_access_token(show)}``.
SHOW_ACCESS_SESSION_KEY = "showfloor.show_access"


def show_access_token(*, show: Show) -> str:
    """A digest of the show's current access code; changing the code revokes
    every session that entered the old one."""
    return salted_hmac("shows.show_access", f"{show.pk}:{show.access_code}").hexdigest()


def show_access_granted(
    *, show: Show, session: Mapping[str, Any], user: User | None
) -> bool:
    """Whether this viewer may see ``show``: public shows are open to everybody,
    private ones to the brand's staff and to sessions that entered the code."""
    if not show.is_private or user_is_show_staff(user=user, show=show):
        return True
    granted = session.get(SHOW_ACCESS_SESSION_KEY) or {}
    token = granted.get(str(show.pk), "") if isinstance(granted, dict) else ""
    return constant_time_compare(token, show_access_token(show=show))


def brands_of(*, user: User) -> QuerySet[Brand]:
    return Brand.objects.filter(memberships__user=user).distinct()


def products_by_slug(*, brand: Brand, slugs: Iterable[str]) -> list[Product]:
    """The brand's products with these slugs, in the order given."""
    wanted = list(slugs)
    found = {p.slug: p for p in Product.objects.filter(brand=brand, slug__in=wanted)}
    return [found[s] for s in wanted if s in found]


# --- The show room ----------------------------------------------------------

SNAPSHOT_CHAT = 50
SNAPSHOT_QUESTIONS = 100
SNAPSHOT_ANSWERED = 10
SNAPSHOT_SET_ASIDE = 200


def _ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def restriction_active(
    *, user_id: int, brand_id: int, show_id: int
) -> Restriction | None:
    """The user's active ban at the brand, else their active time-out in the
    show, else None."""
    now = timezone.now()
    active = (
        Restriction.objects.filter(
            user_id=user_id, brand_id=brand_id, lifted_at__isnull=True
        )
        .filter(Q(kind=Restriction.Kind.BAN) | Q(show_id=show_id))
        .filter(Q(until__isnull=True) | Q(until__gt=now))
    )
    found = list(active)
    bans = [r for r in found if r.kind == Restriction.Kind.BAN]
    if bans:
        return bans[0]
    return max(found, key=lambda r: r.until or now, default=None)


def product_card(product: Product) -> dict[str, Any]:
    """A product as the room shows it: variants with price and stock.
    Uses prefetched ``variants`` when present. Its picture is the uploaded
    image's thumbnail when there is one (no query), else ``image_url``."""
    return {
        "id": product.pk,
        "name": product.name,
        "image_url": images.thumbnail_url(product.image) or product.image_url,
        "variants": [
            {
                "id": v.pk,
                "name": v.name,
                "price_minor": v.price_minor,
                "currency": v.currency,
                "stock_available": v.stock_available,
            }
            for v in product.variants.all()
        ],
    }


def _author(user: User, role: str | None) -> dict[str, Any]:
    return {"id": user.pk, "name": user.display_name or str(user.pk), "role": role}


def chat_event(
    message: ChatMessage, *, author: User, role: str | None
) -> dict[str, Any]:
    return {
        "type": "chat.message",
        "id": message.pk,
        "text": message.text,
        "author": _author(author, role),
        "at": _ms(message.created_at),
        **({"hidden": True} if message.hidden else {}),
    }


def question_event(
    question: Question, *, author: User, role: str | None = None
) -> dict[str, Any]:
    return {
        "type": "question.asked",
        "id": question.pk,
        "text": question.text,
        "product_id": question.product_id,
        "author": _author(author, role),
        "votes": question.votes,
        "status": question.status,
        "answer": question.answer,
        "answered_at": _ms(question.answered_at),
        "at": _ms(question.created_at),
        "merged_into": question.merged_into_id,
    }


@dataclass(frozen=True)
class RoomAccess:
    show: Show
    role: str | None
    banned: bool


def room_access(*, slug: str, user: User | None) -> RoomAccess | None:
    """The show at ``slug`` with the user's role and whether a ban keeps them
    out; None when there is no such show."""
    show = Show.objects.filter(slug=slug).first()
    if show is None:
        return None
    if user is None or not user.is_authenticated:
        return RoomAccess(show=show, role=None, banned=False)
    role = membership_role(user=user, brand_id=show.brand_id)
    restriction = None
    if role is None:
        restriction = restriction_active(
            user_id=user.pk, brand_id=show.brand_id, show_id=show.pk
        )
    return RoomAccess(
        show=show,
        role=role,
        banned=restriction is not None and restriction.kind == Restriction.Kind.BAN,
    )


# What another app adds to the snapshot (checkout's open sales), read in the
# snapshot's transaction: ``shows`` imports no other app, so the caller passes it.
SnapshotPart = Callable[..., Mapping[str, Any]]


def room_snapshot_now(
    *,
    show: Show,
    user: User | None,
    viewers: int,
    parts: Sequence[SnapshotPart] = (),
) -> dict[str, Any]:
    """``room_snapshot`` at the show's current ``seq``, both read in one
    database snapshot, so every event up to that seq is in it and none after
    (a viewer then gets exactly the events after it)."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if not outer and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = outbox.current_seq(show.pk)
        return room_snapshot(
            show=show, user=user, seq=seq, viewers=viewers, parts=parts
        )


def room_snapshot(
    *,
    show: Show,
    user: User | None,
    seq: int,
    viewers: int,
    parts: Sequence[SnapshotPart] = (),
) -> dict[str, Any]:
    """Everything a socket needs on connect (docs/protocol.md, ``snapshot``):
    status, pinned products with price and stock, the last 50 visible chat
    messages, open questions by votes (and the latest answered), the viewer's
    own votes, slow mode, viewer count and ``seq``. Eight queries, plus those
    of ``parts``: each is called with ``show=`` and ``user=`` and its keys are
    added (the room's consumer passes checkout's ``room_sales`` and the live
    games' parts)."""
    show.refresh_from_db(
        fields=["status", "slow_mode_seconds", "started_at", "ended_at"]
    )
    pins = list(
        Pin.objects.filter(show=show, unpinned_at__isnull=True)
        .select_related("product")
        .prefetch_related(
            Prefetch("product__variants", queryset=Variant.objects.order_by("id"))
        )
        .order_by("pinned_at", "id")
    )
    roles = dict(
        Membership.objects.filter(brand_id=show.brand_id).values_list("user_id", "role")
    )
    visible = Q(hidden=False)
    if user is not None and user.is_authenticated:
        visible |= Q(author_id=user.pk)
    messages = list(
        ChatMessage.objects.filter(visible, show=show, deleted_at__isnull=True)
        .select_related("author")
        .order_by("-id")[:SNAPSHOT_CHAT]
    )
    messages.reverse()
    questions = list(
        Question.objects.filter(show=show, status=Question.Status.OPEN)
        .select_related("author")
        .order_by("-votes", "id")[:SNAPSHOT_QUESTIONS]
    ) + list(
        Question.objects.filter(show=show, status=Question.Status.ANSWERED)
        .select_related("author")
        .order_by("-answered_at")[:SNAPSHOT_ANSWERED]
    )
    if user is not None and roles.get(user.pk) in STAFF_ROLES:
        # The studio's queue also lists what was merged or dismissed (to split
        # a question off, or to look back).
        questions += list(
            Question.objects.filter(
                show=show,
                status__in=(Question.Status.MERGED, Question.Status.DISMISSED),
            )
            .select_related("author")
            .order_by("-id")[:SNAPSHOT_SET_ASIDE]
        )
    my_votes: list[int] = []
    if user is not None and user.is_authenticated and questions:
        my_votes = list(
            QuestionVote.objects.filter(
                voter=user, question_id__in=[q.pk for q in questions]
            ).values_list("question_id", flat=True)
        )
    snapshot: dict[str, Any] = {
        "type": "snapshot",
        "seq": seq,
        "show": {
            "id": show.pk,
            "slug": show.slug,
            "status": show.status,
            "started_at": _ms(show.started_at),
            "ended_at": _ms(show.ended_at),
            "slow_mode": show.slow_mode_seconds,
        },
        "pinned": [
            {**product_card(pin.product), "at": _ms(pin.pinned_at)} for pin in pins
        ],
        "chat": [
            chat_event(m, author=m.author, role=roles.get(m.author_id))
            for m in messages
        ],
        "questions": [
            question_event(q, author=q.author, role=roles.get(q.author_id))
            for q in questions
        ],
        "my_votes": my_votes,
        "viewers": viewers,
        "me": (
            {"id": user.pk, "name": user.display_name, "role": roles.get(user.pk)}
            if user is not None and user.is_authenticated
            else None
        ),
    }
    for part in parts:
        snapshot.update(part(show=show, user=user))
    return snapshot
