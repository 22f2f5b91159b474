"""Reads of the catalogue and shows: querysets and snapshot dataclasses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from shows.models import Brand, LineupItem, Membership, Product, Show, User, Variant

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


def brands_of(*, user: User) -> QuerySet[Brand]:
    return Brand.objects.filter(memberships__user=user).distinct()


def products_by_slug(*, brand: Brand, slugs: Iterable[str]) -> list[Product]:
    """The brand's products with these slugs, in the order given."""
    wanted = list(slugs)
    found = {p.slug: p for p in Product.objects.filter(brand=brand, slug__in=wanted)}
    return [found[s] for s in wanted if s in found]
