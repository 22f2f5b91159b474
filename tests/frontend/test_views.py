"""Server-rendered pages: home, show page, private shows, studio, accounts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from frontend.templatetags.money import format_money
from shows import services
from shows.models import User
from tests.shows.test_access import clear_access_limits

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_show(brand, products):
    return services.show_create(
        brand=brand,
        slug="members-only",
        title="Members only",
        scheduled_at=timezone.now() + timedelta(days=1),
        products=products[:1],
        access_code="Sesame-42",
    )


def test_home_lists_live_upcoming_and_replayable_public_shows(client, brand, live_show):
    """The home page groups shows by status (ended ones with a recording, as
    replays) and leaves private ones out."""
    upcoming = services.show_create(
        brand=brand,
        slug="next-week",
        title="Next week",
        scheduled_at=timezone.now() + timedelta(days=7),
    )
    ended = services.show_create(
        brand=brand, slug="old", title="Old show", scheduled_at=timezone.now()
    )
    services.show_start(show=ended)
    services.show_end(show=ended)
    ended.recording_file = "old.webm"
    ended.save(update_fields=["recording_file"])
    services.show_create(
        brand=brand,
        slug="secret",
        title="Secret preview",
        scheduled_at=timezone.now() + timedelta(days=1),
        access_code="x",
    )
    response = client.get(reverse("home"))
    assert response.status_code == 200
    shows = response.context["shows"]
    assert shows.live == [live_show]
    assert shows.upcoming == [upcoming]
    assert shows.replays == [ended]
    assert "Secret preview" not in response.content.decode()


def test_show_page_formats_prices_for_the_viewers_language(client, show):
    """Prices are rendered with Babel in the request's language."""
    page = client.get(reverse("show_detail", args=[show.slug])).content.decode()
    assert "€149.00" in page
    assert "Launch night" in page
    assert "Acme Audio" in page
    assert 'data-countdown data-starts-at="' in page
    assert "Sold out" in page
    german = client.get(
        reverse("show_detail", args=[show.slug]), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert "149,00\xa0€" in german


def test_money_uses_the_currency_digits():
    """Minor units follow ISO 4217 digits: JPY none, KWD three."""
    assert format_money(1500, "JPY", "en") == "¥1,500"
    assert format_money(1234, "KWD", "en").endswith("1.234")
    assert format_money(14900, "EUR", "de") == "149,00\xa0€"


def test_unknown_show_is_a_404_that_says_so(client, db):
    """A missing show answers 404 with a human message."""
    response = client.get(reverse("show_detail", args=["nope"]))
    assert response.status_code == 404
    assert "There is no show at this address." in response.content.decode()
    assert "Nothing here" in response.content.decode()


def test_private_show_asks_for_the_code_first(client, private_show):
    """A private show shows only the code form, not the line-up."""
    response = client.get(reverse("show_detail", args=[private_show.slug]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Access code" in page
    assert "Studio Headphones" not in page


def test_wrong_access_code_is_refused_with_a_clear_message(client, private_show):
    """A wrong code is a 403 that says the code did not open the show."""
    url = reverse("show_detail", args=[private_show.slug])
    response = client.post(url, {"code": "sesame-42"})
    assert response.status_code == 403
    assert "That code does not open this show" in response.content.decode()
    assert "Studio Headphones" not in response.content.decode()
    assert client.get(url).context.get("lineup") is None


def test_right_access_code_opens_the_show_for_the_session(client, private_show):
    """The right code is remembered in the session until the code changes."""
    url = reverse("show_detail", args=[private_show.slug])
    response = client.post(url, {"code": "  Sesame-42 "})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Studio Headphones" in page
    private_show.access_code = "new-code"
    private_show.save(update_fields=["access_code"])
    assert "Studio Headphones" not in client.get(url).content.decode()


@pytest.fixture
def access_limits_cleared() -> Iterator[None]:
    clear_access_limits()
    yield
    clear_access_limits()


def test_access_code_attempts_are_limited(client, private_show, access_limits_cleared):
    """After ten wrong codes even the right one waits."""
    url = reverse("show_detail", args=[private_show.slug])
    for _ in range(10):
        assert client.post(url, {"code": "guess"}).status_code == 403
    response = client.post(url, {"code": "Sesame-42"})
    assert response.status_code == 429
    assert "Too many wrong codes" in response.content.decode()


def test_right_access_code_before_the_limit_opens_the_show(
    client, private_show, access_limits_cleared
):
    """Nine wrong codes, then the right one: the show opens."""
    url = reverse("show_detail", args=[private_show.slug])
    for _ in range(9):
        assert client.post(url, {"code": "guess"}).status_code == 403
    assert client.post(url, {"code": "Sesame-42"}).status_code == 302
    assert "Studio Headphones" in client.get(url).content.decode()


def test_brand_staff_skip_the_access_code(client, private_show, host):
    """Hosts see their private show without the code."""
    client.force_login(host)
    page = client.get(reverse("show_detail", args=[private_show.slug])).content
    assert b"Studio Headphones" in page


def test_studio_opens_for_hosts_and_moderators(client, show, host, moderator):
    """Hosts and moderators of the brand reach the studio."""
    for user in (host, moderator):
        client.force_login(user)
        response = client.get(reverse("studio", args=[show.slug]))
        assert response.status_code == 200
        assert "Studio" in response.content.decode()


def test_studio_refuses_a_viewer_with_a_clear_403(client, show, host, make_user):
    """A signed-in viewer gets a 403 naming the brand. A signed-out visitor
    following the studio link is sent to log in and, once a host has, back to
    the studio."""
    studio = reverse("studio", args=[show.slug])
    anonymous = client.get(studio)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"{reverse('login')}?next={studio}"
    logged_in = client.post(
        anonymous["Location"],
        {"username": host.email, "password": "pw-for-tests"},
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == studio
    assert client.get(studio).status_code == 200
    client.logout()
    client.force_login(make_user("Vic Viewer"))
    response = client.get(reverse("studio", args=[show.slug]))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Only the hosts and moderators of Acme Audio can open this studio." in page
    assert "Hana" not in page


def test_staff_of_another_brand_cannot_open_the_studio(client, show, make_user):
    """A role at another brand gives no access."""
    other = services.brand_create(name="Other", slug="other")
    user = make_user()
    services.membership_set(brand=other, user=user, role="host")
    client.force_login(user)
    assert client.get(reverse("studio", args=[show.slug])).status_code == 403


def test_signup_is_one_step_and_logs_in(client, db):
    """Email, display name and password create the account and a session."""
    response = client.post(
        reverse("signup") + "?next=/shows/x/",
        {
            "email": "Vera@Example.test",
            "display_name": "Vera",
            "password": "a-long-passphrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/shows/x/"
    user = User.objects.get(email="vera@example.test")
    assert user.display_name == "Vera"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_signup_refuses_taken_email_and_weak_password(client, make_user):
    """Errors are shown on the form and no account is written."""
    make_user(email="taken@example.test")
    response = client.post(
        reverse("signup"),
        {"email": "taken@example.test", "display_name": "X", "password": "pw-long-1"},
    )
    assert "already exists" in response.content.decode()
    response = client.post(
        reverse("signup"),
        {"email": "new@example.test", "display_name": "X", "password": "12345678"},
    )
    assert "entirely numeric" in response.content.decode()
    assert not User.objects.filter(email="new@example.test").exists()


def test_signup_ignores_an_offsite_next(client, db):
    """An open redirect through ``next`` is not possible."""
    response = client.post(
        reverse("signup") + "?next=https://evil.example/",
        {"email": "a@example.test", "display_name": "A", "password": "a-long-pass"},
    )
    assert response["Location"] == reverse("home")


def test_login_and_logout(client, make_user):
    """Log in with email and password; log out with a POST."""
    make_user(email="li@example.test", password="pw-for-tests")
    response = client.post(
        reverse("login"), {"username": "li@example.test", "password": "pw-for-tests"}
    )
    assert response.status_code == 302
    assert "_auth_user_id" in client.session
    client.post(reverse("logout"))
    assert "_auth_user_id" not in client.session


def test_healthz_answers_ok(client, db, settings):
    """The container health check reaches the database and Redis (when one
    is configured) and names each."""
    response = client.get("/healthz")
    assert response.status_code == 200
    redis = "ok" if settings.REDIS_URL else "not configured"
    assert response.json() == {"database": "ok", "redis": redis}
    assert "Retry-After" not in response


def test_a_form_without_csrf_token_says_the_page_expired(db):
    """A CSRF failure is a 403 page that tells the user what to do."""
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        reverse("signup"), {"email": "a@example.test"}
    )
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert not User.objects.exists()


def test_server_error_page_renders_without_a_request_context():
    """The 500 page needs no context (Django renders it bare)."""
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in html
