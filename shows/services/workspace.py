"""The role policy of a brand's workspace: what each ``Membership.Role`` may do.

This table is the one place that says it. Services call ``require`` before
they change anything (the pages and sockets only hide what the table refuses;
hiding is not the check). Roles, widest first:

- owners manage the team, the brand's settings and its payouts information,
  and read the audit, plus everything hosts may do;
- hosts manage the catalogue, the shows and the orders, plus everything
  moderators may do;
- moderators open the workspace and the studio and moderate the show rooms.

Somebody who is not a member of the brand is told the brand does not exist
(``NotAMember``, a 404 in the pages), so the workspace does not confirm which
brands exist to outsiders; a member refused an action gets ``NotAllowed`` (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from shows.exceptions import NotFound, ShowfloorError
from shows.models import Brand, Membership, Show, User


class Capability(StrEnum):
    WORKSPACE_VIEW = "workspace.view"
    STUDIO_OPEN = "studio.open"
    ROOM_MODERATE = "room.moderate"
    TEAM_VIEW = "team.view"
    CATALOG_MANAGE = "catalog.manage"
    SHOWS_MANAGE = "shows.manage"
    ORDERS_MANAGE = "orders.manage"
    TEAM_MANAGE = "team.manage"
    SETTINGS_MANAGE = "settings.manage"
    PAYOUTS_MANAGE = "payouts.manage"
    AUDIT_VIEW = "audit.view"


_MODERATOR = frozenset(
    {
        Capability.WORKSPACE_VIEW,
        Capability.STUDIO_OPEN,
        Capability.ROOM_MODERATE,
        Capability.TEAM_VIEW,
    }
)
_HOST = _MODERATOR | {
    Capability.CATALOG_MANAGE,
    Capability.SHOWS_MANAGE,
    Capability.ORDERS_MANAGE,
}
_OWNER = _HOST | {
    Capability.TEAM_MANAGE,
    Capability.SETTINGS_MANAGE,
    Capability.PAYOUTS_MANAGE,
    Capability.AUDIT_VIEW,
}

ROLE_CAPABILITIES: Mapping[str, frozenset[Capability]] = {
    Membership.Role.OWNER: _OWNER,
    Membership.Role.HOST: _HOST,
    Membership.Role.MODERATOR: _MODERATOR,
}


class NotAMember(NotFound):
    """The user is not on the brand's team (or the brand does not exist)."""

    code = "not_found"
    default_message = _("There is no brand workspace at this address.")


class NotAllowed(ShowfloorError):
    """A member whose role does not allow the action."""

    code = "forbidden"
    default_message = _("Your role in this brand does not allow that.")


@dataclass(frozen=True)
class Seat:
    """A user's place in one brand: the brand, their role and what it allows."""

    brand: Brand
    user: User
    role: str

    @property
    def capabilities(self) -> frozenset[Capability]:
        return ROLE_CAPABILITIES.get(self.role, frozenset())

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def role_label(self) -> str:
        return str(Membership.Role(self.role).label)


def role_allows(role: str | None, capability: Capability) -> bool:
    """Whether ``role`` (a ``Membership.Role`` value, or None) allows ``capability``."""
    return role is not None and capability in ROLE_CAPABILITIES.get(role, frozenset())


def seat_get(*, user: User | None, brand: Brand) -> Seat:
    """The user's seat at ``brand``; raises ``NotAMember`` when they have none."""
    if user is None or not user.is_authenticated:
        raise NotAMember()
    role = (
        Membership.objects.filter(user=user, brand=brand)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise NotAMember()
    return Seat(brand=brand, user=user, role=role)


def seat_by_slug(*, user: User | None, slug: str) -> Seat:
    """The user's seat at the brand with ``slug`` (one query); raises
    ``NotAMember`` alike for an unknown brand and a brand they are not in."""
    if user is None or not user.is_authenticated:
        raise NotAMember()
    membership = (
        Membership.objects.select_related("brand")
        .filter(user=user, brand__slug=slug)
        .first()
    )
    if membership is None:
        raise NotAMember()
    return Seat(brand=membership.brand, user=user, role=membership.role)


def require(user: User | None, brand: Brand, capability: Capability) -> Seat:
    """The user's seat at ``brand`` if their role allows ``capability``.

    Raises ``NotAMember`` for somebody outside the brand and ``NotAllowed``
    for a member whose role does not allow it. Reads the role from the
    database on every call: a role changed a moment ago counts."""
    seat = seat_get(user=user, brand=brand)
    if not seat.can(capability):
        raise NotAllowed()
    return seat


def seats_of(*, user: User | None) -> list[Seat]:
    """Every brand the user is on, with their role, by brand name."""
    if user is None or not user.is_authenticated:
        return []
    memberships = (
        Membership.objects.select_related("brand")
        .filter(user=user)
        .order_by("brand__name", "brand_id")
    )
    return [Seat(brand=m.brand, user=user, role=m.role) for m in memberships]


def has_workspace(*, user: User | None) -> bool:
    """Whether the user is on any brand's team (the header's workspace link)."""
    if user is None or not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user).exists()


@dataclass(frozen=True)
class BrandShows:
    live: list[Show]
    upcoming: list[Show]
    ended: list[Show]


def brand_shows(*, seat: Seat, ended_limit: int = 20) -> BrandShows:
    """The brand's shows for its workspace: live, upcoming (soonest first) and
    the latest ended ones, private ones included."""
    shows = Show.objects.filter(brand=seat.brand)
    return BrandShows(
        live=list(shows.filter(status=Show.Status.LIVE).order_by("-started_at")),
        upcoming=list(
            shows.filter(status=Show.Status.SCHEDULED).order_by("scheduled_at")
        ),
        ended=list(
            shows.filter(status=Show.Status.ENDED).order_by("-ended_at", "-pk")[
                :ended_limit
            ]
        ),
    )
