"""A brand's team: invitations by email, accepting them, role changes, removal.

Who may do what is ``shows.services.workspace``'s table: managing the team is
an owner's; anybody may leave. Every change here is recorded in the brand's
audit (``shows.services.audit``) in the same transaction.

**One team change at a time per brand.** Each change locks the brand's row
first (``select_for_update``) and checks the actor's role and the owners
*under* that lock. Two owners demoting each other at the same moment are
therefore serialized: the second sees one owner left (and that it is no
longer an owner itself) and is refused. A brand always keeps an owner.

**Invitations** are links signed with the project's secret key
(``django.core.signing``, salt ``INVITATION_SALT``) naming the invitation and
its ``version``; they expire ``INVITATION_MAX_AGE`` after sending. Resending
bumps the version, so only the newest link works; revoking kills every link.
The invitee accepts signed in with the invited address (signing up first if
needed); a link is good for one acceptance. The email is sent by the
background worker after the transaction commits (``shows.tasks``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shows.exceptions import InvalidInput, NotFound, ShowfloorError
from shows.models import (
    AuditEntry,
    Brand,
    Invitation,
    Membership,
    Notice,
    Reminder,
    User,
)
from shows.services import audit
from shows.services.workspace import Capability, NotAllowed, require

logger = logging.getLogger(__name__)

INVITATION_SALT = "showfloor.shows.invitation"
INVITATION_MAX_AGE = timedelta(days=7)
# Invitation emails (new and resent) one brand may send per hour: a team is
# built in a few, and the platform's mail is no brand's bulk mailer.
INVITATION_EMAILS_PER_HOUR = 30


class TeamInputError(InvalidInput):
    """Bad input for one field of a team form (``field`` names it)."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


class LastOwner(ShowfloorError):
    code = "last_owner"
    default_message = gettext_lazy(
        "A brand needs an owner: make somebody else an owner first."
    )


class InvitationInvalid(ShowfloorError):
    """An invitation link that cannot be accepted (``reason`` says why:
    ``invalid``, ``expired``, ``revoked``, ``superseded``, ``used``,
    ``wrong_account`` or ``accepted``, the last when this very user accepted
    it already)."""

    code = "invitation_invalid"
    default_message = gettext_lazy("This invitation link is not valid.")

    def __init__(self, message: str | None = None, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class TeamMember:
    membership: Membership
    is_last_owner: bool


# --- Links --------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """The signed token of the invitation's newest link."""
    return signing.dumps(
        {"i": invitation.pk, "v": invitation.version}, salt=INVITATION_SALT
    )


def _token_load(token: str) -> dict[str, int]:
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise InvitationInvalid(
            _(
                "This invitation has expired. Ask the person who invited you "
                "to send it again."
            ),
            reason="expired",
        ) from exc
    except signing.BadSignature as exc:
        raise InvitationInvalid(reason="invalid") from exc
    if not isinstance(data, dict) or not {"i", "v"} <= data.keys():
        raise InvitationInvalid(reason="invalid")
    return {"i": int(data["i"]), "v": int(data["v"])}


def _check_pending(invitation: Invitation, version: int) -> None:
    if invitation.status == Invitation.Status.REVOKED:
        raise InvitationInvalid(
            _("This invitation was withdrawn by %(brand)s.")
            % {"brand": invitation.brand.name},
            reason="revoked",
        )
    if invitation.status == Invitation.Status.ACCEPTED:
        raise InvitationInvalid(
            _("This invitation has already been accepted."), reason="used"
        )
    if invitation.version != version:
        raise InvitationInvalid(
            _("A newer invitation was sent to you: use the link in the latest email."),
            reason="superseded",
        )


def _check_not_accepted_by(invitation: Invitation, user: User | None) -> None:
    if (
        user is not None
        and invitation.status == Invitation.Status.ACCEPTED
        and invitation.accepted_by_id == user.pk
    ):
        raise InvitationInvalid(
            _("You have already joined %(brand)s.") % {"brand": invitation.brand.name},
            reason="accepted",
        )


def invitation_from_token(*, token: str, user: User | None = None) -> Invitation:
    """The pending invitation a link names, with its brand (for the page that
    offers to accept it). Raises ``InvitationInvalid`` with the reason
    (``accepted`` when ``user`` is who accepted it)."""
    data = _token_load(token)
    invitation = (
        Invitation.objects.select_related("brand", "invited_by")
        .filter(pk=data["i"])
        .first()
    )
    if invitation is None:
        raise InvitationInvalid(reason="invalid")
    _check_not_accepted_by(invitation, user)
    _check_pending(invitation, data["v"])
    return invitation


def invitation_expires_at(invitation: Invitation) -> datetime:
    """When the invitation's newest link stops working."""
    return invitation.sent_at + INVITATION_MAX_AGE


def _languages() -> frozenset[str]:
    return frozenset(code for code, _name in settings.LANGUAGES)


# --- Changes ------------------------------------------------------------------


def _lock_team(brand: Brand) -> None:
    """Take the brand's team lock (its row) for this transaction."""
    Brand.objects.select_for_update().filter(pk=brand.pk).values_list("pk").get()


def _owner_count(brand: Brand) -> int:
    return Membership.objects.filter(brand=brand, role=Membership.Role.OWNER).count()


def _role(role: str) -> str:
    if role not in Membership.Role.values:
        raise TeamInputError(_("Choose one of the roles."), field="role")
    return role


def _check_sending_limit(brand: Brand) -> None:
    """Refuse another invitation email past ``INVITATION_EMAILS_PER_HOUR``.
    Counted from the audit under the team lock, so concurrent invitations
    cannot pass the limit together."""
    since = timezone.now() - timedelta(hours=1)
    sent = AuditEntry.objects.filter(
        brand=brand,
        action__in=[audit.TEAM_INVITE, audit.TEAM_INVITE_RESEND],
        created_at__gte=since,
    ).count()
    if sent >= INVITATION_EMAILS_PER_HOUR:
        raise TeamInputError(
            _(
                "This brand has sent %(count)s invitations in the last hour. "
                "Please try again later."
            )
            % {"count": sent},
            field="email",
        )


def _send_after_commit(invitation: Invitation) -> None:
    from shows.tasks import invitation_email_deliver  # the task imports emails

    pk, version = invitation.pk, invitation.version

    def enqueue() -> None:
        try:
            invitation_email_deliver.enqueue(invitation_id=pk, version=version)
        except DatabaseError:
            # The invitation stands; the team page offers to resend it.
            logger.exception("could not queue the email of invitation %s", pk)

    transaction.on_commit(enqueue)


def known_language(*, email: str) -> str:
    """The language somebody last chose on Showfloor, where the shows app
    knows it (their show reminders and the notices sent to them), else ""."""
    email = email.strip().lower()
    latest = [
        row
        for row in (
            Reminder.objects.filter(Q(email=email) | Q(user__email__iexact=email))
            .exclude(language="")
            .order_by("-created_at", "-pk")
            .values_list("created_at", "language")
            .first(),
            Notice.objects.filter(address=email)
            .exclude(language="")
            .order_by("-created_at", "-pk")
            .values_list("created_at", "language")
            .first(),
        )
        if row is not None
    ]
    if not latest:
        return ""
    language = max(latest)[1].split("-")[0]
    return language if language in _languages() else ""


def _email_language(*, email: str, chosen: str, fallback: str) -> str:
    if chosen in _languages():
        return chosen
    fallback = (fallback or "").split("-")[0]
    return known_language(email=email) or (fallback if fallback in _languages() else "")


def invitation_create(
    *,
    actor: User,
    brand: Brand,
    email: str,
    role: str,
    language: str = "",
    fallback_language: str = "",
) -> Invitation:
    """Invite ``email`` to ``brand``'s team as ``role``; the email is sent by
    the worker after commit, in ``language`` when one is chosen, else in the
    invitee's language where Showfloor knows it (``known_language``), else in
    ``fallback_language`` (the inviter's), else the site's.

    Requires ``team.manage``. Raises ``TeamInputError`` (with its field) for a
    bad address, role or language, somebody already on the team or already
    invited, or a brand past ``INVITATION_EMAILS_PER_HOUR``; and
    ``NotAMember``/``NotAllowed`` from the policy. Audits ``team.invite``."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise TeamInputError(_("Enter a valid email address."), field="email") from exc
    role = _role(role)
    if language and language not in _languages():
        raise TeamInputError(_("Choose one of the languages."), field="language")
    language = _email_language(email=email, chosen=language, fallback=fallback_language)
    with transaction.atomic():
        _lock_team(brand)
        require(actor, brand, Capability.TEAM_MANAGE)
        if Membership.objects.filter(brand=brand, user__email__iexact=email).exists():
            raise TeamInputError(
                _("%(email)s is already on the team.") % {"email": email},
                field="email",
            )
        _check_sending_limit(brand)
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    brand=brand,
                    email=email,
                    role=role,
                    language=language,
                    invited_by=actor,
                    sent_at=timezone.now(),
                )
        except IntegrityError as exc:
            raise TeamInputError(
                _(
                    "%(email)s has been invited already: resend or withdraw "
                    "that invitation below."
                )
                % {"email": email},
                field="email",
            ) from exc
        audit.audit_record(
            brand=brand,
            actor=actor,
            action=audit.TEAM_INVITE,
            target=email,
            after={"role": role},
        )
        _send_after_commit(invitation)
    return invitation


def _pending_of(brand: Brand, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .filter(brand=brand, pk=invitation_id)
        .first()
    )
    if invitation is None:
        raise NotFound()
    if invitation.status != Invitation.Status.PENDING:
        raise InvalidInput(_("That invitation is no longer open."))
    return invitation


def invitation_resend(*, actor: User, brand: Brand, invitation_id: int) -> Invitation:
    """Send a pending invitation again with a new link, valid for another
    ``INVITATION_MAX_AGE``; earlier links stop working.

    Requires ``team.manage``. Raises ``NotFound`` for another brand's or an
    unknown invitation, ``InvalidInput`` when it is no longer pending or the
    brand is past ``INVITATION_EMAILS_PER_HOUR``. Audits ``team.invite_resend``."""
    with transaction.atomic():
        _lock_team(brand)
        require(actor, brand, Capability.TEAM_MANAGE)
        invitation = _pending_of(brand, invitation_id)
        _check_sending_limit(brand)
        invitation.version += 1
        invitation.sent_at = timezone.now()
        invitation.save(update_fields=["version", "sent_at"])
        audit.audit_record(
            brand=brand,
            actor=actor,
            action=audit.TEAM_INVITE_RESEND,
            target=invitation.email,
            role=invitation.role,
        )
        _send_after_commit(invitation)
    return invitation


def invitation_revoke(*, actor: User, brand: Brand, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation: its links stop working.

    Requires ``team.manage``. Raises like ``invitation_resend``. Audits
    ``team.invite_revoke``."""
    with transaction.atomic():
        _lock_team(brand)
        require(actor, brand, Capability.TEAM_MANAGE)
        invitation = _pending_of(brand, invitation_id)
        invitation.status = Invitation.Status.REVOKED
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["status", "revoked_at"])
        audit.audit_record(
            brand=brand,
            actor=actor,
            action=audit.TEAM_INVITE_REVOKE,
            target=invitation.email,
            before={"status": Invitation.Status.PENDING},
            after={"status": Invitation.Status.REVOKED},
        )
    return invitation


def invitation_accept(*, user: User, token: str) -> Membership:
    """Join the team the link invites to, with the invited role; somebody
    already on the team keeps their role (a role changes on the team page).

    ``user`` must be signed in with the invited address. Raises
    ``InvitationInvalid`` (``reason``: the link is forged, expired,
    withdrawn, superseded by a resend, used, or meant for another account;
    ``accepted`` when this user accepted it before). Audits ``team.join``."""
    data = _token_load(token)
    brand_id = (
        Invitation.objects.filter(pk=data["i"])
        .values_list("brand_id", flat=True)
        .first()
    )
    if brand_id is None:
        raise InvitationInvalid(reason="invalid")
    with transaction.atomic():
        Brand.objects.select_for_update().filter(pk=brand_id).values_list("pk").get()
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("brand")
            .get(pk=data["i"])
        )
        _check_not_accepted_by(invitation, user)
        _check_pending(invitation, data["v"])
        if user.email.lower() != invitation.email.lower():
            raise InvitationInvalid(
                _(
                    "This invitation is for %(invited)s, but you are signed in "
                    "as %(you)s. Log out and sign in or sign up with "
                    "%(invited)s to accept it."
                )
                % {"invited": invitation.email, "you": user.email},
                reason="wrong_account",
            )
        membership, created = Membership.objects.get_or_create(
            brand=invitation.brand, user=user, defaults={"role": invitation.role}
        )
        invitation.status = Invitation.Status.ACCEPTED
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
        audit.audit_record(
            brand=invitation.brand,
            actor=user,
            action=audit.TEAM_JOIN,
            target=user.email,
            after={"role": membership.role},
            invited_role=invitation.role,
            already_member=not created,
        )
    return membership


def _member_of(brand: Brand, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(brand=brand, pk=membership_id)
        .first()
    )
    if membership is None:
        raise NotFound()
    return membership


def membership_role_change(
    *, actor: User, brand: Brand, membership_id: int, role: str
) -> Membership:
    """Give a member of ``brand`` another role. An owner may change their own
    role too, while another owner remains.

    Requires ``team.manage``. Raises ``TeamInputError`` for an unknown role,
    ``NotFound`` for somebody not on this team, ``LastOwner`` when it would
    leave the brand without an owner. Audits ``team.role`` (nothing when the
    role does not change)."""
    role = _role(role)
    with transaction.atomic():
        _lock_team(brand)
        require(actor, brand, Capability.TEAM_MANAGE)
        membership = _member_of(brand, membership_id)
        before = membership.role
        if before == role:
            return membership
        if before == Membership.Role.OWNER and _owner_count(brand) <= 1:
            raise LastOwner(
                _(
                    "%(name)s is the brand's only owner: make somebody else an "
                    "owner first."
                )
                % {"name": membership.user}
            )
        membership.role = role
        membership.save(update_fields=["role"])
        audit.audit_record(
            brand=brand,
            actor=actor,
            action=audit.TEAM_ROLE,
            target=membership.user.email,
            before={"role": before},
            after={"role": role},
        )
    return membership


def membership_remove(*, actor: User, brand: Brand, membership_id: int) -> Membership:
    """Take somebody off ``brand``'s team, or leave it (``membership_id`` is
    the actor's own).

    Removing another member requires ``team.manage``; leaving only being on
    the team. Raises ``NotFound`` for somebody not on this team and
    ``LastOwner`` for the only owner. Returns the removed membership (no
    longer saved). Audits ``team.remove`` or ``team.leave``."""
    with transaction.atomic():
        _lock_team(brand)
        seat = require(actor, brand, Capability.WORKSPACE_VIEW)
        membership = _member_of(brand, membership_id)
        leaving = membership.user_id == actor.pk
        if not leaving and not seat.can(Capability.TEAM_MANAGE):
            raise NotAllowed()
        if membership.role == Membership.Role.OWNER and _owner_count(brand) <= 1:
            if leaving:
                raise LastOwner(
                    _(
                        "You are the brand's only owner: make somebody else an "
                        "owner first."
                    )
                )
            raise LastOwner(
                _(
                    "%(name)s is the brand's only owner: make somebody else an "
                    "owner first."
                )
                % {"name": membership.user}
            )
        membership.delete()
        audit.audit_record(
            brand=brand,
            actor=actor,
            action=audit.TEAM_LEAVE if leaving else audit.TEAM_REMOVE,
            target=membership.user.email,
            before={"role": membership.role},
        )
    return membership


# --- Reads for the team page --------------------------------------------------

_ROLE_ORDER = Case(
    When(role=Membership.Role.OWNER, then=Value(0)),
    When(role=Membership.Role.HOST, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def team_list(*, brand: Brand) -> list[TeamMember]:
    """The team, owners first, then hosts and moderators, each by name."""
    memberships = list(
        Membership.objects.filter(brand=brand)
        .select_related("user")
        .annotate(role_order=_ROLE_ORDER)
        .order_by("role_order", "user__display_name", "pk")
    )
    owners = sum(1 for m in memberships if m.role == Membership.Role.OWNER)
    return [
        TeamMember(
            membership=m,
            is_last_owner=m.role == Membership.Role.OWNER and owners == 1,
        )
        for m in memberships
    ]


def invitations_pending(*, brand: Brand) -> QuerySet[Invitation]:
    """The brand's open invitations, newest sent first (expired ones too:
    they can be sent again)."""
    return Invitation.objects.filter(
        brand=brand, status=Invitation.Status.PENDING
    ).select_related("invited_by")
