"""The brand workspace at ``/brand/<slug>/``: one brand's pages for its team.

Every page here goes through ``workspace_page``: a signed-out visitor is sent
to the login page and back; anybody not on the brand's team gets a 404, the
same as for a brand that does not exist. What a role may do is decided by the
services (``shows.services.workspace``'s table); the pages only leave out the
controls a role cannot use, and turn a refusal into a 403.

The invitation link (``/invitations/<token>/``) lives outside the brand's
pages: its visitor is not on the team yet.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from frontend.workspace_forms import InviteForm, RoleForm
from shows.exceptions import NotFound, ShowfloorError
from shows.models import AuditEntry, Membership, User
from shows.services import audit, team, workspace
from shows.services.workspace import Capability, NotAllowed, NotAMember, Seat

WorkspaceView = Callable[..., HttpResponse]


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


def workspace_page(view: WorkspaceView) -> Callable[..., HttpResponse]:
    """Give ``view`` the visitor's seat at the brand of the URL's ``slug``:
    login first for a signed-out visitor, 404 for anybody not on the team;
    a refusal by the role policy answers 403, an unknown row 404. Goes above
    the method decorators, so an outsider learns nothing from a 405."""

    @wraps(view)
    def wrapped(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
        user = _user(request)
        if user is None:
            return redirect_to_login(request.get_full_path())
        try:
            seat = workspace.seat_by_slug(user=user, slug=slug)
        except NotAMember as exc:
            raise Http404(exc.message) from exc
        try:
            return view(request, seat, **kwargs)
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from exc
        except NotFound as exc:
            # NotAMember too: the member left or was removed meanwhile.
            raise Http404(exc.message) from exc

    return never_cache(wrapped)


def _nav(seat: Seat, current: str) -> list[dict[str, Any]]:
    """The workspace's sections the seat's role may open, in one order."""
    sections = [
        ("home", _("Shows"), "workspace_home", Capability.WORKSPACE_VIEW),
        ("catalogue", _("Catalogue"), "workspace_catalogue", Capability.CATALOG_MANAGE),
        ("orders", _("Orders"), "workspace_orders", Capability.ORDERS_MANAGE),
        ("reviews", _("Reviews"), "workspace_reviews", Capability.ROOM_MODERATE),
        ("reports", _("Reports"), "workspace_reports", Capability.STUDIO_OPEN),
        ("team", _("Team"), "workspace_team", Capability.TEAM_VIEW),
        ("settings", _("Settings"), "workspace_settings", Capability.SETTINGS_MANAGE),
        ("audit", _("Audit"), "workspace_audit", Capability.AUDIT_VIEW),
    ]
    return [
        {"key": key, "label": label, "url": url, "current": key == current}
        for key, label, url, capability in sections
        if seat.can(capability)
    ]


def _context(seat: Seat, current: str, **extra: Any) -> dict[str, Any]:
    return {
        "seat": seat,
        "brand": seat.brand,
        "nav": _nav(seat, current),
        "seats": workspace.seats_of(user=seat.user),
        **extra,
    }


@never_cache
@require_http_methods(["GET"])
def index(request: HttpRequest) -> HttpResponse:
    """The brands the visitor is on, each with their role; straight to the
    brand's workspace when there is one only."""
    user = _user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    seats = workspace.seats_of(user=user)
    if not seats:
        raise Http404(_("You are not on any brand's team."))
    if len(seats) == 1:
        return redirect("workspace_home", slug=seats[0].brand.slug)
    return render(request, "frontend/workspace/index.html", {"seats": seats})


@workspace_page
@require_http_methods(["GET"])
def home(request: HttpRequest, seat: Seat) -> HttpResponse:
    """The brand's shows, live, upcoming and ended, each with its studio."""
    shows = workspace.brand_shows(seat=seat)
    return render(
        request,
        "frontend/workspace/home.html",
        _context(
            seat,
            "home",
            shows=shows,
            can_manage_shows=seat.can(Capability.SHOWS_MANAGE),
        ),
    )


# --- Team ---------------------------------------------------------------------

AUDIT_LIMIT = 30


def _role_label(role: object) -> str:
    try:
        return str(Membership.Role(str(role)).label)
    except ValueError:
        return str(role)


def _audit_line(entry: AuditEntry) -> str:
    """One audit entry as a sentence in the reader's language."""
    detail = entry.detail if isinstance(entry.detail, dict) else {}
    before = detail.get("before") or {}
    after = detail.get("after") or {}
    values = {
        "target": entry.target,
        "role": _role_label(after.get("role") or detail.get("role") or ""),
        "before": _role_label(before.get("role", "")),
        "after": _role_label(after.get("role", "")),
    }
    sentences = {
        audit.TEAM_INVITE: _("invited %(target)s as %(role)s"),
        audit.TEAM_INVITE_RESEND: _("sent the invitation to %(target)s again"),
        audit.TEAM_INVITE_REVOKE: _("withdrew the invitation to %(target)s"),
        audit.TEAM_JOIN: _("joined as %(role)s"),
        audit.TEAM_ROLE: _(
            "changed the role of %(target)s from %(before)s to %(after)s"
        ),
        audit.TEAM_REMOVE: _("removed %(target)s (%(before)s) from the team"),
        audit.TEAM_LEAVE: _("left the team (%(before)s)"),
    }
    sentence = sentences.get(entry.action)
    return sentence % values if sentence else f"{entry.action} {entry.target}"


def _team_page(
    request: HttpRequest,
    seat: Seat,
    *,
    invite_form: InviteForm | None = None,
    row_forms: dict[int, RoleForm] | None = None,
    row_errors: dict[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    manage = seat.can(Capability.TEAM_MANAGE)
    now = timezone.now()
    row_forms = row_forms or {}
    row_errors = row_errors or {}
    members = []
    for member in team.team_list(brand=seat.brand):
        membership = member.membership
        form = row_forms.get(membership.pk) or RoleForm(
            prefix=f"m{membership.pk}", initial={"role": membership.role}
        )
        members.append(
            {
                "membership": membership,
                "is_last_owner": member.is_last_owner,
                "is_me": membership.user_id == seat.user.pk,
                "form": form,
                "error": row_errors.get(membership.pk, ""),
            }
        )
    context = _context(
        seat,
        "team",
        members=members,
        can_manage=manage,
        invite_form=(invite_form or InviteForm()) if manage else None,
        invitations=[
            {
                "invitation": invitation,
                "expires_at": team.invitation_expires_at(invitation),
                "expired": team.invitation_expires_at(invitation) <= now,
            }
            for invitation in team.invitations_pending(brand=seat.brand)
        ]
        if manage
        else [],
        audit=[
            {"entry": entry, "line": _audit_line(entry)}
            for entry in audit.audit_list(
                brand=seat.brand, prefix="team.", limit=AUDIT_LIMIT
            )
        ]
        if seat.can(Capability.AUDIT_VIEW)
        else [],
    )
    return render(request, "frontend/workspace/team.html", context, status=status)


@workspace_page
@require_http_methods(["GET", "POST"])
def team_page(request: HttpRequest, seat: Seat) -> HttpResponse:
    """The team; owners also invite (POST here), see the open invitations and
    the team's audit."""
    if request.method != "POST":
        return _team_page(request, seat)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, seat, invite_form=form, status=400)
    try:
        invitation = team.invitation_create(
            actor=seat.user,
            brand=seat.brand,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            language=form.cleaned_data["language"],
            fallback_language=get_language() or "",
        )
    except team.TeamInputError as exc:
        form.add_error(exc.field, exc.message)
        return _team_page(request, seat, invite_form=form, status=400)
    messages.success(
        request,
        _("An invitation is on its way to %(email)s.") % {"email": invitation.email},
    )
    return redirect("workspace_team", slug=seat.brand.slug)


@workspace_page
@require_POST
def invitation_action(
    request: HttpRequest, seat: Seat, invitation_id: int
) -> HttpResponse:
    """Resend or withdraw an open invitation."""
    action = request.POST.get("action")
    try:
        if action == "resend":
            invitation = team.invitation_resend(
                actor=seat.user, brand=seat.brand, invitation_id=invitation_id
            )
            messages.success(
                request,
                _("The invitation to %(email)s was sent again.")
                % {"email": invitation.email},
            )
        elif action == "revoke":
            invitation = team.invitation_revoke(
                actor=seat.user, brand=seat.brand, invitation_id=invitation_id
            )
            messages.success(
                request,
                _("The invitation to %(email)s was withdrawn.")
                % {"email": invitation.email},
            )
        else:
            return HttpResponse(status=400)
    except (NotAllowed, NotFound):
        raise
    except ShowfloorError as exc:
        messages.error(request, exc.message)
    return redirect("workspace_team", slug=seat.brand.slug)


@workspace_page
@require_POST
def member_action(request: HttpRequest, seat: Seat, membership_id: int) -> HttpResponse:
    """Change a member's role, remove them, or leave (one's own row)."""
    action = request.POST.get("action")
    if action == "role":
        form = RoleForm(request.POST, prefix=f"m{membership_id}")
        if not form.is_valid():
            return _team_page(
                request, seat, row_forms={membership_id: form}, status=400
            )
        try:
            membership = team.membership_role_change(
                actor=seat.user,
                brand=seat.brand,
                membership_id=membership_id,
                role=form.cleaned_data["role"],
            )
        except team.TeamInputError as exc:
            form.add_error(exc.field, exc.message)
            return _team_page(
                request, seat, row_forms={membership_id: form}, status=400
            )
        except team.LastOwner as exc:
            form.add_error("role", exc.message)
            return _team_page(
                request, seat, row_forms={membership_id: form}, status=409
            )
        messages.success(
            request,
            _("%(name)s is now %(role)s.")
            % {"name": membership.user, "role": _role_label(membership.role)},
        )
        return redirect("workspace_team", slug=seat.brand.slug)
    if action == "remove":
        try:
            removed = team.membership_remove(
                actor=seat.user, brand=seat.brand, membership_id=membership_id
            )
        except team.LastOwner as exc:
            return _team_page(
                request, seat, row_errors={membership_id: exc.message}, status=409
            )
        if removed.user_id == seat.user.pk:
            messages.success(
                request,
                _("You have left %(brand)s.") % {"brand": seat.brand.name},
            )
            return redirect("home")
        messages.success(request, _("They are no longer on the team."))
        return redirect("workspace_team", slug=seat.brand.slug)
    return HttpResponse(status=400)


# --- Accepting an invitation --------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: who invites to which brand and role, then (signed in
    with the invited address) a button that joins. A visitor without an
    account signs up or logs in and comes back here."""
    user = _user(request)
    try:
        invitation = team.invitation_from_token(token=token, user=user)
    except team.InvitationInvalid as exc:
        return _invitation_refused(request, exc)
    if request.method == "POST":
        if user is None:
            return redirect_to_login(request.get_full_path())
        try:
            membership = team.invitation_accept(user=user, token=token)
        except team.InvitationInvalid as exc:
            return _invitation_refused(request, exc)
        messages.success(
            request,
            _("Welcome to %(brand)s! You are on the team as %(role)s.")
            % {"brand": invitation.brand.name, "role": _role_label(membership.role)},
        )
        return redirect("workspace_home", slug=invitation.brand.slug)
    context = {
        "invitation": invitation,
        "role": _role_label(invitation.role),
        "inviter": invitation.invited_by or invitation.brand.name,
        "wrong_account": user is not None
        and user.email.lower() != invitation.email.lower(),
        "next": request.get_full_path(),
        "language": get_language(),
    }
    return render(request, "frontend/workspace/invitation.html", context)


def _invitation_refused(
    request: HttpRequest, exc: team.InvitationInvalid
) -> HttpResponse:
    if exc.reason == "accepted":
        messages.info(request, exc.message)
        return redirect("workspace_index")
    status = {"invalid": 404, "wrong_account": 403}.get(exc.reason, 410)
    return render(
        request,
        "frontend/workspace/invitation_refused.html",
        {"message": exc.message, "reason": exc.reason},
        status=status,
    )
