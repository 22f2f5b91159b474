"""The brand workspace's role policy and the team's services: what each role
may do, refused in the service whatever the page shows; invitations signed,
expiring, good once and for the invited address only; a brand never loses its
last owner, not even to two owners demoting each other at once; every team
change audited; the invitation email sent by the worker after commit, in the
invitation's language."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from django.core import mail, signing
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks.backends.database.models import DBTaskResult

from shows import services
from shows.exceptions import InvalidInput, NotFound
from shows.models import AuditEntry, Invitation, Membership, Notice, Reminder
from shows.services import audit, team, workspace
from shows.services.team import (
    INVITATION_MAX_AGE,
    InvitationInvalid,
    LastOwner,
    TeamInputError,
)
from shows.services.workspace import Capability, NotAllowed, NotAMember
from tests.checkout.conftest import run_tasks  # noqa: F401

pytestmark = pytest.mark.django_db

C = Capability
# The policy as the issue states it, written out independently of the code.
EXPECTED = {
    "owner": set(Capability),
    "host": {
        C.WORKSPACE_VIEW,
        C.STUDIO_OPEN,
        C.ROOM_MODERATE,
        C.TEAM_VIEW,
        C.CATALOG_MANAGE,
        C.SHOWS_MANAGE,
        C.ORDERS_MANAGE,
    },
    "moderator": {C.WORKSPACE_VIEW, C.STUDIO_OPEN, C.ROOM_MODERATE, C.TEAM_VIEW},
}


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner", email="olga@example.test")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


@pytest.fixture
def outsider(make_user):
    """The owner of another brand."""
    user = make_user("Otto Other", email="otto@example.test")
    services.brand_create(name="Other Goods", slug="other", owner=user)
    return user


def seated(brand, make_user, role: str):
    user = make_user(f"A {role}")
    services.membership_set(brand=brand, user=user, role=role)
    return user


def state(brand) -> tuple[Any, ...]:
    """Everything a team service may change, to prove a refusal changed nothing."""
    return (
        sorted(Membership.objects.filter(brand=brand).values_list("user_id", "role")),
        sorted(
            Invitation.objects.filter(brand=brand).values_list(
                "email", "status", "version"
            )
        ),
        AuditEntry.objects.filter(brand=brand).count(),
        DBTaskResult.objects.count(),
    )


def invite_then_fail(owner, brand) -> None:
    """An invitation made in a transaction that then fails."""
    with transaction.atomic():
        team.invitation_create(
            actor=owner, brand=brand, email="x@example.test", role="host"
        )
        raise RuntimeError("the caller failed")


# --- The table ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "host", "moderator"])
@pytest.mark.parametrize("capability", list(Capability))
def test_require_allows_exactly_what_the_role_table_says(
    brand, make_user, role, capability
):
    user = seated(brand, make_user, role)
    if capability in EXPECTED[role]:
        assert workspace.require(user, brand, capability).role == role
    else:
        with pytest.raises(NotAllowed):
            workspace.require(user, brand, capability)


@pytest.mark.parametrize("capability", list(Capability))
def test_somebody_outside_the_brand_is_told_it_does_not_exist(
    brand, outsider, capability
):
    with pytest.raises(NotAMember):
        workspace.require(outsider, brand, capability)
    with pytest.raises(NotAMember):
        workspace.require(None, brand, capability)


def test_a_role_changed_a_moment_ago_counts(brand, owner, host):
    workspace.require(host, brand, C.SHOWS_MANAGE)
    team.membership_role_change(
        actor=owner,
        brand=brand,
        membership_id=Membership.objects.get(user=host).pk,
        role="moderator",
    )
    with pytest.raises(NotAllowed):
        workspace.require(host, brand, C.SHOWS_MANAGE)


def test_a_users_brands_are_listed_with_their_role(brand, host, make_user):
    services.brand_create(name="Zed Zines", slug="zed", owner=host)
    seats = workspace.seats_of(user=host)
    assert [(s.brand.slug, s.role) for s in seats] == [
        ("acme", "host"),
        ("zed", "owner"),
    ]
    assert workspace.seats_of(user=make_user()) == []
    assert workspace.has_workspace(user=host)


# --- Each team service, per role -------------------------------------------------


def _invite(actor, brand, ctx):
    return team.invitation_create(
        actor=actor, brand=brand, email="new@example.test", role="host"
    )


def _resend(actor, brand, ctx):
    return team.invitation_resend(
        actor=actor, brand=brand, invitation_id=ctx["invitation"].pk
    )


def _revoke(actor, brand, ctx):
    return team.invitation_revoke(
        actor=actor, brand=brand, invitation_id=ctx["invitation"].pk
    )


def _promote(actor, brand, ctx):
    return team.membership_role_change(
        actor=actor, brand=brand, membership_id=ctx["other"].pk, role="owner"
    )


def _remove(actor, brand, ctx):
    return team.membership_remove(
        actor=actor, brand=brand, membership_id=ctx["other"].pk
    )


def _leave(actor, brand, ctx):
    return team.membership_remove(
        actor=actor,
        brand=brand,
        membership_id=Membership.objects.filter(user=actor).first().pk,
    )


# service, then whether an owner, a host, a moderator may call it.
SERVICES = [
    ("invite", _invite, True, False, False),
    ("resend", _resend, True, False, False),
    ("revoke", _revoke, True, False, False),
    ("change a role", _promote, True, False, False),
    ("remove somebody", _remove, True, False, False),
    ("leave", _leave, True, True, True),
]


@pytest.mark.parametrize(
    ("name", "call", "owner_may", "host_may", "moderator_may"),
    SERVICES,
    ids=[row[0] for row in SERVICES],
)
@pytest.mark.parametrize("role", ["owner", "host", "moderator", "outsider"])
def test_each_team_service_is_allowed_or_refused_by_role(
    brand,
    owner,
    make_user,
    outsider,
    role,
    name,
    call,
    owner_may,
    host_may,
    moderator_may,
):
    """Refused calls change nothing; a second owner exists so that leaving is
    about the role, not the last-owner rule."""
    services.membership_set(brand=brand, user=make_user("Second Owner"), role="owner")
    other = Membership.objects.get(
        pk=services.membership_set(
            brand=brand, user=make_user("Max Member"), role="moderator"
        ).pk
    )
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="pending@example.test", role="moderator"
    )
    ctx = {"invitation": invitation, "other": other}
    actor = outsider if role == "outsider" else seated(brand, make_user, role)
    allowed = {"owner": owner_may, "host": host_may, "moderator": moderator_may}
    before = state(brand)
    if role == "outsider":
        with pytest.raises(NotAMember):
            call(actor, brand, ctx)
    elif allowed[role]:
        call(actor, brand, ctx)
        assert state(brand) != before
    else:
        with pytest.raises(NotAllowed):
            call(actor, brand, ctx)
    if role == "outsider" or not allowed[role]:
        assert state(brand) == before


def test_an_invitation_or_member_of_another_brand_is_not_found(brand, owner, outsider):
    """An owner of one brand cannot reach another's rows through their own."""
    other_brand = workspace.seats_of(user=outsider)[0].brand
    foreign = team.invitation_create(
        actor=outsider, brand=other_brand, email="x@example.test", role="host"
    )
    foreign_member = Membership.objects.get(user=outsider)
    with pytest.raises(NotFound):
        team.invitation_revoke(actor=owner, brand=brand, invitation_id=foreign.pk)
    with pytest.raises(NotFound):
        team.membership_role_change(
            actor=owner, brand=brand, membership_id=foreign_member.pk, role="host"
        )
    with pytest.raises(NotFound):
        team.membership_remove(
            actor=owner, brand=brand, membership_id=foreign_member.pk
        )
    assert Membership.objects.get(user=outsider).role == "owner"


# --- Bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "role", "field"),
    [
        ("not-an-address", "host", "email"),
        ("", "host", "email"),
        ("new@example.test", "admin", "role"),
    ],
)
def test_a_bad_invitation_names_its_field_and_saves_nothing(
    brand, owner, email, role, field
):
    before = state(brand)
    with pytest.raises(TeamInputError) as refused:
        team.invitation_create(actor=owner, brand=brand, email=email, role=role)
    assert refused.value.field == field
    assert state(brand) == before


def test_a_member_or_an_open_invitation_cannot_be_invited_again(brand, owner, host):
    team.invitation_create(
        actor=owner, brand=brand, email="New@Example.test ", role="host"
    )
    before = state(brand)
    for email in ("new@example.test", host.email.upper()):
        with pytest.raises(TeamInputError) as refused:
            team.invitation_create(
                actor=owner, brand=brand, email=email, role="moderator"
            )
        assert refused.value.field == "email"
    assert state(brand) == before


def test_a_brand_sends_a_limited_number_of_invitation_emails_per_hour(
    brand, owner, monkeypatch
):
    """New and resent invitations count alike; past the limit nothing is
    saved or sent."""
    monkeypatch.setattr(team, "INVITATION_EMAILS_PER_HOUR", 2)
    first = team.invitation_create(
        actor=owner, brand=brand, email="a@example.test", role="host"
    )
    team.invitation_resend(actor=owner, brand=brand, invitation_id=first.pk)
    before = state(brand)
    with pytest.raises(TeamInputError) as refused:
        team.invitation_create(
            actor=owner, brand=brand, email="b@example.test", role="host"
        )
    assert refused.value.field == "email"
    assert "2 invitations in the last hour" in refused.value.message
    with pytest.raises(TeamInputError):
        team.invitation_resend(actor=owner, brand=brand, invitation_id=first.pk)
    assert state(brand) == before


# --- The last owner ---------------------------------------------------------------


def test_the_last_owner_can_neither_be_demoted_nor_leave(brand, owner):
    mine = Membership.objects.get(user=owner)
    before = state(brand)
    with pytest.raises(LastOwner):
        team.membership_role_change(
            actor=owner, brand=brand, membership_id=mine.pk, role="host"
        )
    with pytest.raises(LastOwner):
        team.membership_remove(actor=owner, brand=brand, membership_id=mine.pk)
    assert state(brand) == before


def test_with_a_second_owner_an_owner_may_step_down(brand, owner, make_user):
    second = make_user("Sam Second")
    services.membership_set(brand=brand, user=second, role="owner")
    mine = Membership.objects.get(user=owner)
    team.membership_role_change(
        actor=owner, brand=brand, membership_id=mine.pk, role="host"
    )
    assert Membership.objects.get(user=owner).role == "host"
    # Now a host: managing the team is no longer theirs.
    with pytest.raises(NotAllowed):
        team.membership_role_change(
            actor=owner, brand=brand, membership_id=mine.pk, role="owner"
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["demote", "remove"])
def test_two_owners_removing_each_other_at_once_leave_one_owner(
    postgres, brand, make_user, change, monkeypatch
):
    """Each demotes (or removes) the other at the same moment: the brand lock
    lets one through; the other, no longer an owner (or on the team), is
    refused."""
    first, second = make_user("First"), make_user("Second")
    seats = {
        user.pk: services.membership_set(brand=brand, user=user, role="owner")
        for user in (first, second)
    }
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    count_owners = team._owner_count

    def slow_count(brand_):
        # Widens the window between reading the owners and writing: without
        # the brand lock both would see two owners here.
        time.sleep(0.3)
        return count_owners(brand_)

    monkeypatch.setattr(team, "_owner_count", slow_count)

    def act(actor, target) -> None:
        try:
            barrier.wait()
            if change == "demote":
                team.membership_role_change(
                    actor=actor,
                    brand=brand,
                    membership_id=seats[target.pk].pk,
                    role="moderator",
                )
            else:
                team.membership_remove(
                    actor=actor, brand=brand, membership_id=seats[target.pk].pk
                )
            outcomes.append("done")
        except (NotAllowed, NotAMember, NotFound, LastOwner) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(first, second)),
        threading.Thread(target=act, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 2, "a thread failed otherwise"
    assert outcomes.count("done") == 1
    assert Membership.objects.filter(brand=brand, role="owner").count() == 1


# --- Invitations ----------------------------------------------------------------


def test_an_invitee_accepts_once_with_the_invited_address(brand, owner, make_user):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    token = team.invitation_token(invitation)
    stranger = make_user("Stranger", email="stranger@example.test")
    with pytest.raises(InvitationInvalid) as refused:
        team.invitation_accept(user=stranger, token=token)
    assert refused.value.reason == "wrong_account"
    assert "hana@example.test" in refused.value.message
    assert not Membership.objects.filter(user=stranger).exists()

    hana = make_user("Hana", email="Hana@example.test".lower())
    membership = team.invitation_accept(user=hana, token=token)
    assert (membership.brand, membership.role) == (brand, "host")
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == hana

    with pytest.raises(InvitationInvalid) as twice:
        team.invitation_accept(user=hana, token=token)
    assert twice.value.reason == "accepted"
    with pytest.raises(InvitationInvalid) as used:
        team.invitation_accept(user=stranger, token=token)
    assert used.value.reason == "used"
    assert Membership.objects.filter(brand=brand).count() == 2


def test_somebody_already_on_the_team_keeps_their_role_on_accepting(
    brand, owner, make_user
):
    """An invitation never demotes: a role changes on the team page."""
    hana = make_user("Hana", email="hana@example.test")
    invitation = team.invitation_create(
        actor=owner, brand=brand, email=hana.email, role="moderator"
    )
    services.membership_set(brand=brand, user=hana, role="owner")
    membership = team.invitation_accept(
        user=hana, token=team.invitation_token(invitation)
    )
    assert membership.role == "owner"


def test_a_forged_an_expired_a_withdrawn_and_a_resent_link_are_refused(
    brand, owner, make_user, monkeypatch
):
    hana = make_user("Hana", email="hana@example.test")
    invitation = team.invitation_create(
        actor=owner, brand=brand, email=hana.email, role="host"
    )
    first = team.invitation_token(invitation)

    def reason(token: str) -> str:
        with pytest.raises(InvitationInvalid) as refused:
            team.invitation_accept(user=hana, token=token)
        return refused.value.reason

    assert reason(first[:-2] + "xx") == "invalid"
    assert reason(signing.dumps({"i": invitation.pk, "v": 1}, salt="other")) == (
        "invalid"
    )
    later = time.time() + INVITATION_MAX_AGE.total_seconds() + 5
    with monkeypatch.context() as patched:
        patched.setattr("django.core.signing.time.time", lambda: later)
        assert reason(first) == "expired"

    team.invitation_resend(actor=owner, brand=brand, invitation_id=invitation.pk)
    invitation.refresh_from_db()
    second = team.invitation_token(invitation)
    assert invitation.version == 2
    assert reason(first) == "superseded"

    team.invitation_revoke(actor=owner, brand=brand, invitation_id=invitation.pk)
    assert reason(second) == "revoked"
    assert not Membership.objects.filter(user=hana).exists()
    with pytest.raises(InvalidInput):
        team.invitation_resend(actor=owner, brand=brand, invitation_id=invitation.pk)


# --- Audit ------------------------------------------------------------------------


def test_every_team_change_is_audited_with_before_and_after(brand, owner, make_user):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="moderator"
    )
    team.invitation_resend(actor=owner, brand=brand, invitation_id=invitation.pk)
    hana = make_user("Hana", email="hana@example.test")
    seat = team.invitation_accept(
        user=hana, token=team.invitation_token(Invitation.objects.get(pk=invitation.pk))
    )
    team.membership_role_change(
        actor=owner, brand=brand, membership_id=seat.pk, role="host"
    )
    gone = team.invitation_create(
        actor=owner, brand=brand, email="gone@example.test", role="host"
    )
    team.invitation_revoke(actor=owner, brand=brand, invitation_id=gone.pk)
    team.membership_remove(actor=owner, brand=brand, membership_id=seat.pk)
    entries = [
        (e.actor, e.action, e.target, e.detail)
        for e in reversed(audit.audit_list(brand=brand, prefix="team."))
    ]
    assert entries == [
        (owner, "team.invite", "hana@example.test", {"after": {"role": "moderator"}}),
        (owner, "team.invite_resend", "hana@example.test", {"role": "moderator"}),
        (
            hana,
            "team.join",
            "hana@example.test",
            {
                "after": {"role": "moderator"},
                "invited_role": "moderator",
                "already_member": False,
            },
        ),
        (
            owner,
            "team.role",
            "hana@example.test",
            {"before": {"role": "moderator"}, "after": {"role": "host"}},
        ),
        (owner, "team.invite", "gone@example.test", {"after": {"role": "host"}}),
        (
            owner,
            "team.invite_revoke",
            "gone@example.test",
            {"before": {"status": "pending"}, "after": {"status": "revoked"}},
        ),
        (owner, "team.remove", "hana@example.test", {"before": {"role": "host"}}),
    ]


def test_a_change_that_rolls_back_leaves_no_audit_entry(brand, owner):
    with pytest.raises(RuntimeError):
        invite_then_fail(owner, brand)
    assert not AuditEntry.objects.filter(brand=brand).exists()
    assert not Invitation.objects.exists()


def link_token(body: str) -> str:
    """The token of the one invitation link in an email's text."""
    [token] = re.findall(r"/invitations/([^/\s]+)/", body)
    return token


# --- The email --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_invitation_email_is_sent_by_the_worker_in_its_language(
    brand,
    owner,
    run_tasks,  # noqa: F811
    settings,
):
    settings.SHOWFLOOR_PUBLIC_URL = "https://shop.example"
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host", language="de"
    )
    assert mail.outbox == []
    assert run_tasks() == 1
    [message] = mail.outbox
    assert message.to == ["hana@example.test"]
    with translation.override("de"):
        assert message.subject == _("Join %(brand)s on Showfloor") % {
            "brand": "Acme Audio"
        }
    assert isinstance(message, mail.EmailMultiAlternatives)
    [(html, _kind)] = message.alternatives
    assert '<html lang="de">' in str(html)
    assert team.invitation_from_token(token=link_token(message.body)) == invitation
    assert "Olga Owner" in message.body
    assert run_tasks() == 0


def test_the_email_is_in_the_chosen_the_invitees_known_or_the_inviters_language(
    brand, owner, show, make_user
):
    """A language the inviter chose wins; else the one the invitee last used
    here (a show reminder), else the inviter's own."""

    def invite(email: str, **languages: str) -> str:
        invitation = team.invitation_create(
            actor=owner, brand=brand, email=email, role="host", **languages
        )
        team.invitation_revoke(actor=owner, brand=brand, invitation_id=invitation.pk)
        return invitation.language

    Reminder.objects.create(show=show, email="fr@example.test", language="fr")
    viewer = make_user("Fenna", email="fenna@example.test")
    Reminder.objects.create(show=show, user=viewer, language="fy")
    assert invite("fr@example.test", language="de", fallback_language="en") == "de"
    assert invite("FR@example.test", fallback_language="de") == "fr"
    assert invite("fenna@example.test", fallback_language="de") == "fy"
    assert invite("new@example.test", fallback_language="de-at") == "de"
    assert invite("plain@example.test") == ""
    # A reminder email sent since, in another language: the newer one counts.
    Notice.objects.create(
        show=show, kind="live_now", address="fr@example.test", language="de"
    )
    assert invite("fr@example.test", fallback_language="en") == "de"
    with pytest.raises(TeamInputError) as refused:
        invite("x@example.test", language="xx")
    assert refused.value.field == "language"


@pytest.mark.django_db(transaction=True)
def test_a_resend_mails_the_new_link_and_a_withdrawn_invitation_nothing(
    brand,
    owner,
    run_tasks,  # noqa: F811
):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    team.invitation_resend(actor=owner, brand=brand, invitation_id=invitation.pk)
    invitation.refresh_from_db()
    run_tasks()
    # The first task finds a newer version and skips: one email, the new link.
    [message] = mail.outbox
    assert team.invitation_from_token(token=link_token(message.body)) == invitation
    gone = team.invitation_create(
        actor=owner, brand=brand, email="gone@example.test", role="host"
    )
    team.invitation_revoke(actor=owner, brand=brand, invitation_id=gone.pk)
    run_tasks()
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_an_invitation_rolled_back_enqueues_no_email(brand, owner):
    with pytest.raises(RuntimeError):
        invite_then_fail(owner, brand)
    assert not DBTaskResult.objects.exists()
