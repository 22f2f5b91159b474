"""The brand's audit trail: who changed what, when, from what to what.

Services record an entry in the transaction of the change it describes (a
rolled-back change leaves no entry). Actions are dotted names, one per kind of
change (``team.invite``, later ``variant.price`` or ``order.refund``); ``detail``
is JSON with ``before`` and ``after`` where the change has them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from shows.models import AuditEntry, Brand, User

# The team's actions (shows/services/team.py).
TEAM_INVITE = "team.invite"
TEAM_INVITE_RESEND = "team.invite_resend"
TEAM_INVITE_REVOKE = "team.invite_revoke"
TEAM_JOIN = "team.join"
TEAM_ROLE = "team.role"
TEAM_REMOVE = "team.remove"
TEAM_LEAVE = "team.leave"


def audit_record(
    *,
    brand: Brand,
    actor: User | None,
    action: str,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **extra: Any,
) -> AuditEntry:
    """Write one audit entry of ``brand``. ``before`` and ``after`` describe
    the changed fields; ``extra`` goes into ``detail`` as it is (JSON values).
    Broadcasts nothing."""
    detail: dict[str, Any] = dict(extra)
    if before is not None:
        detail["before"] = before
    if after is not None:
        detail["after"] = after
    return AuditEntry.objects.create(
        brand=brand, actor=actor, action=action, target=target[:200], detail=detail
    )


def audit_list(
    *, brand: Brand, prefix: str = "", limit: int = 50
) -> QuerySet[AuditEntry]:
    """The brand's newest entries first, those whose action starts with
    ``prefix`` (``"team."``) when given, with their actors."""
    entries = AuditEntry.objects.filter(brand=brand).select_related("actor")
    if prefix:
        entries = entries.filter(action__startswith=prefix)
    return entries[:limit]
