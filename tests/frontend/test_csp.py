"""The Content-Security-Policy: on every page, strict, and nothing the pages
do is refused by it in Chromium (frontend/csp.py)."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from shows.services import room
from tests.live.conftest import login_cookie

# Collects every violation the page reports to itself (Playwright's init
# scripts run outside the page's policy).
VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`);
});
"""


def _directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.django_db
def test_every_page_type_sends_a_strict_policy(client, live_show, host, settings):
    staff = Client()
    staff.force_login(host)
    answers = {
        "home": client.get("/"),
        "show": client.get(f"/shows/{live_show.slug}/"),
        "studio": staff.get(f"/shows/{live_show.slug}/studio/"),
        "login": client.get("/login/"),
        "admin login": client.get("/admin/login/"),
        "not found": client.get("/no/such/page/"),
    }
    for name, response in answers.items():
        header = response.headers.get("Content-Security-Policy", "")
        policy = _directives(header)
        assert policy.get("script-src", [""])[0] == "'self'", (name, header)
        assert "'unsafe-inline'" not in header, name
        assert "'unsafe-eval'" not in header, name
        assert policy["object-src"] == ["'none'"], name
        assert policy["frame-ancestors"] == ["'none'"], name
        assert policy["report-uri"] == ["/csp-report"], name
        # Stripe's frames only ('none' next to a source is void).
        assert policy["frame-src"] == [
            "https://js.stripe.com",
            "https://hooks.stripe.com",
        ]


def test_violation_reports_are_logged_and_bounded(client, caplog):
    report = {"csp-report": {"violated-directive": "script-src", "blocked-uri": "x"}}
    with caplog.at_level(logging.WARNING, logger="showfloor.csp"):
        answer = client.post(
            "/csp-report", json.dumps(report), content_type="application/csp-report"
        )
    assert answer.status_code == 204
    assert "script-src" in caplog.text
    assert (
        client.post("/csp-report", "x" * 20000, content_type="text/plain").status_code
        == 413
    )
    assert (
        client.post("/csp-report", "{not json", content_type="text/plain").status_code
        == 400
    )
    assert client.get("/csp-report").status_code == 405


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_page_breaks_the_policy_in_chromium(
    stripe_settings, asgi_server, browser, live_show, products, host, private_live_show
):
    """Home, a live show with the buy sheet open and an order reserved (Stripe's
    script loads), the studio, login, sign-up, the admin's login, a private
    show's code page and a 404: no violation, no page error."""
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, bypass_csp=False
    )
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def visit(path: str) -> None:
        page.goto(asgi_server + path)
        page.wait_for_load_state("networkidle")
        problems.extend(page.evaluate("window.__csp"))

    try:
        visit("/")
        page.goto(f"{asgi_server}/shows/{live_show.slug}/")
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        page.click(".room-pin .room-buy")
        page.wait_for_selector("#buy-sheet[open]")
        page.fill("#buy-email", "guest@example.test")
        page.click("#buy-primary")
        page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
        page.wait_for_load_state("networkidle")
        problems.extend(page.evaluate("window.__csp"))
        for path in (
            "/login/",
            "/signup/",
            "/admin/login/",
            f"/shows/{private_live_show.slug}/",
            "/no/such/page/",
        ):
            visit(path)
        context.add_cookies(
            [{"name": "sessionid", "value": login_cookie(host), "url": asgi_server}]
        )
        visit(f"/shows/{live_show.slug}/studio/")
    finally:
        context.close()
    assert problems == []
