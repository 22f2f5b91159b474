"""The brand workspace's pages: for the brand's team only (every URL under
``/brand/<slug>/`` answers 404 to anybody else, walked from the URLconf), the
login page and back for a signed-out visitor, the brand's shows with their
studios, and the team page: invitations, the signed link through sign-up,
role changes and removal, refusals in the page and behind it, and every bad
input answered next to its field with nothing saved."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.utils import timezone

from frontend import workspace_urls
from shows import services
from shows.models import AuditEntry, Invitation, Membership
from shows.services import team

pytestmark = pytest.mark.django_db


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


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def walk(
    patterns: list[URLPattern | URLResolver], prefix: str = ""
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every view under ``patterns`` (includes followed): its name, its route
    and its parameters' converters."""
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += walk(pattern.url_patterns, route)
        else:
            converters = dict(getattr(pattern.pattern, "converters", {}))
            found.append((pattern.name, route, converters))
    return found


def brand_urls(brand, owner) -> list[str]:
    """Every URL of the brand's workspace (``BRAND_PATTERNS`` and what it
    includes), with real ids of this brand's rows where the walk knows the
    parameter and a made-up id elsewhere (a 404 either way for outsiders)."""
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="pending@example.test", role="host"
    )
    known: dict[str, Any] = {
        "slug": brand.slug,
        "invitation_id": invitation.pk,
        "membership_id": Membership.objects.get(brand=brand, user=owner).pk,
    }
    urls = []
    for name, route, converters in walk(workspace_urls.BRAND_PATTERNS):
        kwargs = {"slug": brand.slug}
        for parameter, converter in converters.items():
            if parameter in known:
                kwargs[parameter] = known[parameter]
            elif isinstance(converter, IntConverter):
                kwargs[parameter] = 999_999
            elif isinstance(converter, UUIDConverter):
                kwargs[parameter] = "00000000-0000-4000-8000-000000000000"
            else:
                kwargs[parameter] = "x"
        assert name, f"{route} has no name"
        urls.append(reverse(name, kwargs=kwargs))
    assert len(urls) >= 4
    return urls


def state(brand) -> tuple[Any, ...]:
    return (
        sorted(Membership.objects.filter(brand=brand).values_list("user_id", "role")),
        sorted(Invitation.objects.filter(brand=brand).values_list("email", "status")),
        AuditEntry.objects.filter(brand=brand).count(),
    )


# --- Who gets in ------------------------------------------------------------------


def test_a_member_of_another_brand_gets_404_for_every_workspace_url(
    brand, owner, outsider
):
    other = client_of(outsider)
    urls = brand_urls(brand, owner)
    before = state(brand)
    for url in urls:
        assert other.get(url).status_code == 404, url
        for action in ("role", "remove", "resend", "revoke"):
            answer = other.post(
                url, {"action": action, "email": "x@example.test", "role": "owner"}
            )
            # Not even a 405: the method says nothing to an outsider.
            assert answer.status_code == 404, (url, action)
    assert state(brand) == before
    # The same for a signed-in viewer on no team, and for a brand that is not.
    viewer = client_of(Membership.objects.get(user=owner).user)
    assert viewer.get("/brand/no-such-brand/").status_code == 404


def test_a_signed_out_visitor_is_sent_to_log_in_and_back(brand, owner, client):
    for url in [*brand_urls(brand, owner), "/brand/"]:
        answer = client.get(url)
        assert answer.status_code == 302, url
        assert answer["Location"] == f"/login/?next={quote(url)}", url


def test_the_header_links_the_workspace_for_members_only(brand, owner, make_user):
    page = client_of(owner).get("/").content.decode()
    assert 'href="/brand/"' in page
    assert 'href="/brand/"' not in client_of(make_user()).get("/").content.decode()


def test_the_brand_list_goes_straight_to_the_only_brand_or_lists_them(
    brand, owner, make_user
):
    answer = client_of(owner).get("/brand/")
    assert answer.status_code == 302
    assert answer["Location"] == "/brand/acme/"
    services.brand_create(name="Zed Zines", slug="zed", owner=owner)
    page = client_of(owner).get("/brand/").content.decode()
    assert "Acme Audio" in page
    assert "Zed Zines" in page
    assert client_of(make_user()).get("/brand/").status_code == 404


# --- The home ---------------------------------------------------------------------


def test_the_home_lists_the_brands_shows_with_their_studios(
    brand, moderator, products, outsider
):
    now = timezone.now()
    live = services.show_start(
        show=services.show_create(
            brand=brand, slug="on-air", title="On air", scheduled_at=now
        )
    )
    later = services.show_create(
        brand=brand,
        slug="next-week",
        title="Next week",
        scheduled_at=now + timedelta(days=7),
        access_code="secret-1",
    )
    done = services.show_end(
        show=services.show_start(
            show=services.show_create(
                brand=brand, slug="last-week", title="Last week", scheduled_at=now
            )
        )
    )
    other_brand = Membership.objects.get(user=outsider).brand
    services.show_create(
        brand=other_brand, slug="not-ours", title="Not ours", scheduled_at=now
    )
    page = client_of(moderator).get("/brand/acme/").content.decode()
    for show in (live, later, done):
        assert f'href="/shows/{show.slug}/studio/"' in page
    assert page.index("On air") < page.index("Next week") < page.index("Last week")
    assert "Not ours" not in page
    assert "Private" in page
    assert 'aria-current="page"' in page
    # The sections a moderator may not open are not offered.
    assert 'href="/brand/acme/team/"' in page
    assert 'href="/brand/acme/catalogue/"' not in page
    assert 'href="/brand/acme/orders/"' not in page


def test_the_navigation_offers_each_role_its_sections(brand, owner, host, moderator):
    sections = ("/brand/acme/", "/brand/acme/catalogue/", "/brand/acme/orders/")
    for user, offered in ((owner, 3), (host, 3), (moderator, 1)):
        page = client_of(user).get("/brand/acme/team/").content.decode()
        nav = page[page.index('class="workspace-nav"') :]
        nav = nav[: nav.index("</nav>")]
        assert sum(f'href="{url}"' in nav for url in sections) == offered, user
        assert 'href="/brand/acme/team/" aria-current="page"' in nav


# --- The team page ----------------------------------------------------------------


def test_an_owner_invites_by_email_and_sees_the_open_invitation(brand, owner):
    client = client_of(owner)
    answer = client.post(
        "/brand/acme/team/",
        {"email": "Hana@Example.test", "role": "host", "language": "fr"},
        follow=True,
    )
    assert answer.redirect_chain == [("/brand/acme/team/", 302)]
    # Automatic, and nothing known about the invitee: the inviter's language.
    client.post(
        "/brand/acme/team/",
        {"email": "kai@example.test", "role": "moderator", "language": ""},
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert Invitation.objects.get(email="kai@example.test").language == "de"
    invitation = Invitation.objects.get(brand=brand, email="hana@example.test")
    assert (invitation.email, invitation.role, invitation.language) == (
        "hana@example.test",
        "host",
        "fr",
    )
    page = answer.content.decode()
    assert "An invitation is on its way to hana@example.test." in page
    assert 'id="invitation-' in page
    assert "invited hana@example.test as Host" in page


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-address", "role": "host", "language": "en"}, "email"),
        ({"email": "", "role": "host", "language": "en"}, "email"),
        ({"email": "h@example.test", "role": "admin", "language": "en"}, "role"),
        ({"email": "h@example.test", "role": "host", "language": "xx"}, "language"),
        ({"email": "olga@example.test", "role": "host", "language": "en"}, "email"),
    ],
    ids=["bad email", "no email", "bad role", "bad language", "already a member"],
)
def test_a_bad_invitation_is_answered_next_to_its_field(brand, owner, data, field):
    before = state(brand)
    answer = client_of(owner).post("/brand/acme/team/", data)
    assert answer.status_code == 400
    form = answer.context["invite_form"]
    assert list(form.errors) == [field]
    page = answer.content.decode()
    assert f'id="id_{field}_error"' in page
    assert state(brand) == before


def test_an_open_invitation_is_answered_next_to_the_email(brand, owner):
    team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    before = state(brand)
    answer = client_of(owner).post(
        "/brand/acme/team/",
        {"email": "hana@example.test", "role": "owner", "language": "en"},
    )
    assert answer.status_code == 400
    assert (
        "has been invited already" in answer.context["invite_form"].errors["email"][0]
    )
    assert state(brand) == before


def test_an_owner_resends_and_withdraws_an_invitation(brand, owner):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    client = client_of(owner)
    url = f"/brand/acme/team/invitations/{invitation.pk}/"
    assert client.post(url, {"action": "resend"}).status_code == 302
    invitation.refresh_from_db()
    assert invitation.version == 2
    assert client.post(url, {"action": "revoke"}).status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    page = client.get("/brand/acme/team/").content.decode()
    assert "No open invitations." in page
    assert "withdrew the invitation to hana@example.test" in page


def test_an_owner_changes_a_role_and_removes_a_member(brand, owner, host):
    client = client_of(owner)
    seat = Membership.objects.get(user=host)
    url = f"/brand/acme/team/members/{seat.pk}/"
    answer = client.post(url, {"action": "role", f"m{seat.pk}-role": "moderator"})
    assert answer.status_code == 302
    assert Membership.objects.get(pk=seat.pk).role == "moderator"
    assert client.post(url, {"action": "remove"}).status_code == 302
    assert not Membership.objects.filter(pk=seat.pk).exists()
    page = client.get("/brand/acme/team/").content.decode()
    assert "changed the role of" in page
    assert "from the team" in page


def test_the_last_owner_is_refused_next_to_their_row(brand, owner):
    """The page offers the only owner no way to leave; posted anyway, the
    refusal is shown in their row."""
    seat = Membership.objects.get(user=owner)
    client = client_of(owner)
    page = client.get("/brand/acme/team/").content.decode()
    assert "Leave the team" not in page
    assert "You are the brand's only owner" in page
    url = f"/brand/acme/team/members/{seat.pk}/"
    before = state(brand)
    answer = client.post(url, {"action": "role", f"m{seat.pk}-role": "host"})
    assert answer.status_code == 409
    assert f'id="id_m{seat.pk}-role_error"' in answer.content.decode()
    assert "only owner" in answer.content.decode()
    answer = client.post(url, {"action": "remove"})
    assert answer.status_code == 409
    assert "only owner" in answer.content.decode()
    assert state(brand) == before


def test_a_bad_role_is_answered_next_to_that_row(brand, owner, host):
    seat = Membership.objects.get(user=host)
    before = state(brand)
    answer = client_of(owner).post(
        f"/brand/acme/team/members/{seat.pk}/",
        {"action": "role", f"m{seat.pk}-role": "admin"},
    )
    assert answer.status_code == 400
    assert f'id="id_m{seat.pk}-role_error"' in answer.content.decode()
    assert state(brand) == before


@pytest.mark.parametrize("role", ["host", "moderator"])
def test_a_host_or_moderator_sees_the_team_without_controls_and_is_refused(
    brand, owner, make_user, role
):
    member = make_user(f"A {role}")
    services.membership_set(brand=brand, user=member, role=role)
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    client = client_of(member)
    page = client.get("/brand/acme/team/").content.decode()
    assert "Olga Owner" in page
    assert "Invite someone" not in page
    assert "Change role" not in page
    assert "hana@example.test" not in page  # nor the invitations or the audit
    assert "Leave the team" in page
    before = state(brand)
    owner_seat = Membership.objects.get(user=owner)
    refused = [
        client.post(
            "/brand/acme/team/",
            {"email": "x@example.test", "role": "owner", "language": "en"},
        ),
        client.post(
            f"/brand/acme/team/members/{owner_seat.pk}/",
            {"action": "role", f"m{owner_seat.pk}-role": "moderator"},
        ),
        client.post(f"/brand/acme/team/members/{owner_seat.pk}/", {"action": "remove"}),
        client.post(
            f"/brand/acme/team/invitations/{invitation.pk}/", {"action": "revoke"}
        ),
    ]
    for answer in refused:
        assert answer.status_code == 403
        assert "Your role in this brand does not allow that." in answer.content.decode()
    assert state(brand) == before


def test_a_member_leaves_the_team(brand, owner, moderator):
    seat = Membership.objects.get(user=moderator)
    answer = client_of(moderator).post(
        f"/brand/acme/team/members/{seat.pk}/", {"action": "remove"}
    )
    assert answer.status_code == 302
    assert answer["Location"] == "/"
    assert not Membership.objects.filter(user=moderator).exists()
    assert client_of(moderator).get("/brand/acme/").status_code == 404


# --- Accepting ----------------------------------------------------------------------


def test_the_invitee_signs_up_through_the_link_and_accepts(brand, owner, client):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    link = reverse("invitation_accept", args=[team.invitation_token(invitation)])
    page = client.get(link).content.decode()
    assert "Olga Owner invites you to join Acme Audio on Showfloor as Host." in page
    signup = f"/signup/?next={quote(link)}"
    assert f'href="{signup}"' in page
    answer = client.post(
        signup,
        {
            "email": "hana@example.test",
            "display_name": "Hana",
            "password": "a-long-pass-phrase",
        },
    )
    assert answer["Location"] == link
    page = client.get(link).content.decode()
    assert "Accept the invitation" in page
    answer = client.post(link, follow=True)
    assert answer.redirect_chain == [("/brand/acme/", 302)]
    assert "Welcome to Acme Audio! You are on the team as Host." in (
        answer.content.decode()
    )
    assert Membership.objects.get(
        brand=brand, user__email="hana@example.test"
    ).role == ("host")
    # Twice: a friendly note, no second join.
    again = client.post(link, follow=True)
    assert again.redirect_chain[-1] == ("/brand/acme/", 302)
    assert "You have already joined Acme Audio." in again.content.decode()
    assert AuditEntry.objects.filter(action="team.join").count() == 1


def test_an_invitee_with_an_account_logs_in_through_the_link_and_accepts(
    brand, owner, make_user, client
):
    hana = make_user("Hana", email="hana@example.test", password="pw-for-hana-1")
    invitation = team.invitation_create(
        actor=owner, brand=brand, email=hana.email, role="moderator"
    )
    link = reverse("invitation_accept", args=[team.invitation_token(invitation)])
    login = f"/login/?next={quote(link)}"
    assert f'href="{login}"' in client.get(link).content.decode()
    answer = client.post(
        login,
        {"username": "hana@example.test", "password": "pw-for-hana-1", "next": link},
    )
    assert answer["Location"] == link
    assert client.post(link)["Location"] == "/brand/acme/"
    assert Membership.objects.get(user=hana).role == "moderator"


def test_another_account_is_told_whom_the_invitation_is_for(brand, owner, make_user):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    link = reverse("invitation_accept", args=[team.invitation_token(invitation)])
    other = client_of(make_user("Someone", email="someone@example.test"))
    page = other.get(link).content.decode()
    assert "This invitation is for hana@example.test" in page
    assert "Accept the invitation" not in page
    answer = other.post(link)
    assert answer.status_code == 403
    assert "This invitation is for hana@example.test" in answer.content.decode()
    assert Invitation.objects.get().status == "pending"


def test_a_withdrawn_or_forged_link_says_so(brand, owner, client):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    token = team.invitation_token(invitation)
    team.invitation_revoke(actor=owner, brand=brand, invitation_id=invitation.pk)
    answer = client.get(reverse("invitation_accept", args=[token]))
    assert answer.status_code == 410
    assert "This invitation was withdrawn by Acme Audio." in answer.content.decode()
    forged = client.get(reverse("invitation_accept", args=[token[:-3] + "abc"]))
    assert forged.status_code == 404
    assert "This invitation link is not valid." in forged.content.decode()


def test_a_signed_out_accept_is_sent_to_log_in_first(brand, owner, client):
    invitation = team.invitation_create(
        actor=owner, brand=brand, email="hana@example.test", role="host"
    )
    link = reverse("invitation_accept", args=[team.invitation_token(invitation)])
    answer = client.post(link)
    assert answer.status_code == 302
    assert answer["Location"] == f"/login/?next={quote(link)}"
    assert Invitation.objects.get().status == "pending"
