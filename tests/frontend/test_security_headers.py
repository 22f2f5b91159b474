"""Security headers on every page type a visitor, a buyer, a host or an
attacker can reach: pages, error pages, the throttled login, the private
show's gate, the APIs; and, behind HTTPS as deployed, HSTS and secure
cookies."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db

# What every answer carries, HTML or JSON.
EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# What every HTML page carries besides.
EVERY_PAGE = {"X-Frame-Options": "DENY"}


def _permissions(header: str) -> dict[str, str]:
    found = {}
    for part in header.split(","):
        name, _, allow = part.strip().partition("=")
        found[name] = allow
    return found


def _answers(live_show, private_live_show, host, viewer, stripe_settings, pinned):
    """One answer of each kind, named."""
    anonymous = Client()
    staff = Client()
    staff.force_login(host)
    stranger = Client()
    stranger.force_login(viewer)
    throttled = Client()
    for _ in range(6):
        locked = throttled.post(
            "/login/", {"username": host.email, "password": "wrong"}
        )
    buyer = Client()
    order = buyer.post(
        f"/api/shows/{pinned.slug}/orders",
        data=json.dumps(
            {"variant_id": pinned_variant(pinned), "email": "h@example.test"}
        ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=new_key(),
    )
    return {
        "pages": {
            "home": anonymous.get("/"),
            "show": anonymous.get(f"/shows/{live_show.slug}/"),
            "private show's gate": anonymous.get(f"/shows/{private_live_show.slug}/"),
            "studio": staff.get(f"/shows/{live_show.slug}/studio/"),
            "studio refused (403)": stranger.get(f"/shows/{live_show.slug}/studio/"),
            "login": anonymous.get("/login/"),
            "login throttled (429)": locked,
            "signup": anonymous.get("/signup/"),
            "admin login": anonymous.get("/admin/login/"),
            "not found (404)": anonymous.get("/no/such/page/"),
        },
        "json": {
            "order placed": order,
            "order refused (404)": anonymous.get(f"/api/orders/{uuid.uuid4()}"),
            "health": anonymous.get("/healthz"),
        },
    }


@pytest.fixture
def viewer(make_user):
    return make_user(display_name="Sam", email="sam@example.test")


@pytest.fixture
def pinned(live_show, products, host):
    from shows.services import room

    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    return live_show


def pinned_variant(show) -> int:
    pin = show.pins.get(unpinned_at__isnull=True)
    return int(pin.product.variants.get().pk)


def test_every_page_type_carries_the_security_headers(
    stripe_settings, live_show, private_live_show, host, viewer, pinned, settings
):
    settings.AXES_FAILURE_LIMIT = 5
    answers = _answers(
        live_show, private_live_show, host, viewer, stripe_settings, pinned
    )
    expected_status = {
        "studio refused (403)": 403,
        "login throttled (429)": 429,
        "not found (404)": 404,
        "order placed": 201,
        "order refused (404)": 404,
    }
    for group in answers.values():
        for name, answer in group.items():
            assert answer.status_code == expected_status.get(name, 200), name
            for header, value in EVERY_ANSWER.items():
                assert answer.headers.get(header) == value, (name, header)
            allowed = _permissions(answer.headers.get("Permissions-Policy", ""))
            assert allowed.get("geolocation") == "()", name
            assert allowed.get("camera") == "(self)", name
    for name, answer in answers["pages"].items():
        for header, value in EVERY_PAGE.items():
            assert answer.headers.get(header) == value, (name, header)
        policy = answer.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, name
        assert "'unsafe-inline'" not in policy, name
        assert answer.headers["Content-Type"].startswith("text/html"), name
    for name, answer in answers["json"].items():
        assert answer.headers["Content-Type"] == "application/json", name
    # Pages that show a person's data are never stored by a shared cache.
    for name in ("studio", "private show's gate"):
        control = answers["pages"][name].headers.get("Cache-Control", "")
        assert "private" in control or "no-store" in control, (name, control)


def test_behind_https_pages_send_hsts_and_cookies_are_secure(
    client, live_show, make_user, settings
):
    """As deployed (``config/settings.py`` without DEBUG): HSTS with
    subdomains, and the session and CSRF cookies marked Secure and HttpOnly
    where the page script does not read them."""
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    page = client.get(f"/shows/{live_show.slug}/", secure=True)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in page.headers["Strict-Transport-Security"]
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"
    make_user(email="ada@example.test")
    login = client.post(
        "/login/",
        {"username": "ada@example.test", "password": "pw-for-tests"},
        secure=True,
    )
    assert login.status_code == 302
    session = login.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
