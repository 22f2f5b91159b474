"""Login throttling (frontend/login_throttling.py): the site's login and the
admin's refuse every password once an account or a client address has too many
failures, say how long to wait, and let the right password in again after the
cool-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse

PASSWORD = "pw-for-tests"
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
LOCKED = "Too many failed attempts to log in."


@pytest.fixture(autouse=True)
def throttle(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def log_in(client, email, password, address=ATTACKER, **extra):
    return client.post(
        reverse("login"),
        {"username": email, "password": password},
        REMOTE_ADDR=address,
        **extra,
    )


def admin_log_in(client, email, password, address=ATTACKER):
    return client.post(
        reverse("admin:login"),
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def age_attempts(minutes):
    """Moves every counted failure ``minutes`` into the past, as if that long
    had gone by."""
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - timedelta(minutes=minutes)
    )


def test_the_right_password_is_refused_after_twenty_wrong_ones(client, make_user):
    """After 20 wrong passwords the right one gets 429, the page says how long
    to wait, and no session is opened."""
    make_user(email="li@example.test")
    for _ in range(20):
        response = log_in(client, "li@example.test", "wrong-guess")
        assert response.status_code in (200, 429)
    response = log_in(client, "li@example.test", PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    page = response.content.decode()
    assert "Please wait 15 minutes before you try again." in page
    assert 'role="alert"' in page
    assert not signed_in(client)


def test_the_failure_that_reaches_the_limit_already_says_to_wait(client, make_user):
    """Four wrong passwords read as wrong passwords; the fifth locks and says so."""
    make_user(email="li@example.test")
    for _ in range(4):
        response = log_in(client, "li@example.test", "wrong-guess")
        assert response.status_code == 200
        assert "Please enter a correct" in response.content.decode()
    response = log_in(client, "li@example.test", "wrong-guess")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()


def test_the_admin_refuses_a_staff_member_after_twenty_wrong_passwords(
    client, make_user
):
    """/admin/login/ is throttled the same way, with the same message."""
    staff = make_user(email="boss@example.test")
    staff.is_staff = True
    staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    for _ in range(20):
        admin_log_in(client, "boss@example.test", "wrong-guess")
    response = admin_log_in(client, "boss@example.test", PASSWORD)
    assert response.status_code == 429
    assert "Please wait 15 minutes before you try again." in response.content.decode()
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


def test_a_locked_account_stays_locked_from_another_address(client, make_user):
    """Failures on one account from many addresses lock the account itself."""
    make_user(email="li@example.test")
    for n in range(5):
        log_in(client, "li@example.test", "wrong-guess", address=f"192.0.2.{n + 1}")
    response = log_in(client, "li@example.test", PASSWORD, address=NEIGHBOUR)
    assert response.status_code == 429
    assert not signed_in(client)


def test_a_locked_address_cannot_try_other_accounts(client, make_user):
    """Guessing across many accounts from one address locks the address: even
    a right password of an account never tried is refused from there, and
    the same account still logs in from elsewhere."""
    make_user(email="li@example.test")
    for n in range(5):
        log_in(client, f"guess{n}@example.test", "wrong-guess")
    response = log_in(client, "li@example.test", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not signed_in(client)

    response = log_in(client, "li@example.test", PASSWORD, address=NEIGHBOUR)
    assert response.status_code == 302
    assert signed_in(client)


def test_a_success_before_the_limit_forgets_the_accounts_failures(client, make_user):
    """Four wrong passwords, the right one, four wrong again: still allowed."""
    make_user(email="li@example.test")
    for _ in range(2):
        for _ in range(4):
            assert log_in(client, "li@example.test", "wrong-guess").status_code == 200
        assert log_in(client, "li@example.test", PASSWORD).status_code == 302
        assert signed_in(client)
        client.post(reverse("logout"))


def test_signing_in_to_ones_own_account_does_not_forget_guesses_on_others(
    client, make_user
):
    """Someone with an account of their own cannot reset the count of their
    address by signing in between guesses at other accounts."""
    make_user(email="me@example.test")
    make_user(email="li@example.test")
    for n in range(3):
        log_in(client, f"guess{n}@example.test", "wrong-guess")
    assert log_in(client, "me@example.test", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for n in range(3, 5):
        log_in(client, f"guess{n}@example.test", "wrong-guess")
    assert log_in(client, "li@example.test", PASSWORD).status_code == 429
    assert not signed_in(client)


def test_the_right_password_works_again_after_the_cool_off(client, make_user):
    """Locked now, still locked a minute before the cool-off ends (each
    refused try restarts it), signed in once it has passed."""
    make_user(email="li@example.test")
    for _ in range(5):
        log_in(client, "li@example.test", "wrong-guess")
    age_attempts(14)
    assert log_in(client, "li@example.test", PASSWORD).status_code == 429
    age_attempts(16)
    response = log_in(client, "li@example.test", PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_the_limit_and_the_cool_off_come_from_the_settings(client, make_user, settings):
    """Two failures lock with a limit of 2; the page and ``Retry-After`` say
    the configured one minute."""
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    make_user(email="li@example.test")
    log_in(client, "li@example.test", "wrong-guess")
    response = log_in(client, "li@example.test", "wrong-guess")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Please wait 1 minute before you try again." in response.content.decode()


def test_the_lockout_message_is_in_the_viewers_language(client, make_user):
    """The German page says it in German."""
    make_user(email="li@example.test")
    for _ in range(5):
        response = log_in(
            client, "li@example.test", "wrong-guess", HTTP_ACCEPT_LANGUAGE="de"
        )
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED not in page
    assert "15 Minuten" in page
