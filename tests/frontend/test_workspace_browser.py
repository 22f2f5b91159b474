"""The brand workspace in Chromium: an owner invites a host by email; the host
follows the emailed link, signs up, comes back to the link, accepts and lands
in the workspace. A moderator sees the team without controls and a POST made
anyway is refused. The pages pass axe (light and dark) and break no part of
the Content-Security-Policy."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from shows.models import Invitation, Membership
from tests.checkout.conftest import run_tasks  # noqa: F401
from tests.frontend.test_a11y import axe_problems, axe_script  # noqa: F401
from tests.frontend.test_csp import VIOLATIONS
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner", email="olga@example.test")
    Membership.objects.create(brand=brand, user=user, role="owner")
    return user


def new_page(
    browser: Any, base: str, axe: Any, user: Any = None
) -> tuple[Any, list[str]]:
    """A phone-sized page under the real policy, signed in as ``user``, and
    the list its script errors go to. axe-core and the policy's violation
    recorder come in as init scripts, which run outside the page's policy."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, bypass_csp=False
    )
    context.add_init_script(VIOLATIONS)
    context.add_init_script(path=str(axe))
    if user is not None:
        context.add_cookies(
            [{"name": "sessionid", "value": login_cookie(user), "url": base}]
        )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return page, problems


def policy_problems(page: Any) -> list[str]:
    return list(page.evaluate("window.__csp || []"))


def test_an_owner_invites_a_host_who_signs_up_accepts_and_sees_the_workspace(
    asgi_server,
    browser,
    owner,
    show,
    settings,
    run_tasks,  # noqa: F811
    axe_script,  # noqa: F811
):
    settings.SHOWFLOOR_PUBLIC_URL = asgi_server
    page, problems = new_page(browser, asgi_server, axe_script, owner)
    page.goto(f"{asgi_server}/")
    page.get_by_role("link", name="Workspace").click()
    page.get_by_role("heading", name="Acme Audio").wait_for()
    assert page.get_by_role("link", name=re.compile("^Studio")).count() == 1
    problems += axe_problems(page, axe_script, "workspace home")
    problems += policy_problems(page)

    page.get_by_role("link", name="Team").click()
    page.get_by_role("heading", name="Invite someone").wait_for()
    problems += axe_problems(page, axe_script, "team, owner")
    # A bad address first: answered next to the field, nothing sent.
    page.get_by_label("Email:", exact=True).fill("hana-at-example")
    page.get_by_role("button", name="Send invitation").click()
    page.locator("#id_email_error").wait_for()
    assert "valid email" in page.locator("#id_email_error").inner_text()
    problems += axe_problems(page, axe_script, "team, invitation refused")
    assert not Invitation.objects.exists()

    page.get_by_label("Email:", exact=True).fill("hana@example.test")
    page.get_by_label("Role:", exact=True).select_option("host")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("An invitation is on its way to hana@example.test.").wait_for()
    problems += policy_problems(page)
    page.context.close()

    assert run_tasks() == 1
    [email] = mail.outbox
    assert email.to == ["hana@example.test"]
    [link] = re.findall(r"https?://\S+/invitations/\S+/", email.body)
    assert link.startswith(asgi_server)

    page, host_problems = new_page(browser, asgi_server, axe_script)
    page.goto(link)
    page.get_by_text(
        "Olga Owner invites you to join Acme Audio on Showfloor as Host."
    ).wait_for()
    problems += axe_problems(page, axe_script, "invitation, signed out")
    page.get_by_role("link", name="Sign up").last.click()
    page.get_by_label("Email").fill("hana@example.test")
    page.get_by_label("Display name").fill("Hana Host")
    page.get_by_label("Password").fill("a-long-pass-phrase")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("button", name="Accept the invitation").wait_for()
    assert page.url == link
    page.get_by_role("button", name="Accept the invitation").click()
    page.get_by_text("Welcome to Acme Audio! You are on the team as Host.").wait_for()
    assert page.url == f"{asgi_server}/brand/acme/"
    assert page.get_by_role("link", name="Workspace").is_visible()
    assert page.get_by_role("link", name=re.compile("^Studio")).count() == 1
    problems += host_problems + policy_problems(page)
    page.context.close()
    assert Membership.objects.get(user__email="hana@example.test").role == "host"
    assert not problems, "\n".join(problems)


def test_a_moderator_gets_no_team_controls_and_a_refused_post(
    asgi_server,
    browser,
    owner,
    moderator,
    axe_script,  # noqa: F811
):
    page, problems = new_page(browser, asgi_server, axe_script, moderator)
    page.goto(f"{asgi_server}/brand/acme/team/")
    page.get_by_role("heading", name="Team", exact=True).wait_for()
    assert page.get_by_text("Olga Owner").is_visible()
    assert page.get_by_role("button", name="Send invitation").count() == 0
    assert page.get_by_role("button", name=re.compile("Change role")).count() == 0
    assert page.locator("select").count() == 1  # the language menu's only
    assert page.get_by_text("Leave the team").is_visible()
    problems += axe_problems(page, axe_script, "team, moderator")
    # The form the page leaves out, posted anyway with the page's CSRF token.
    status = page.evaluate(
        """async () => {
          const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
          const body = new URLSearchParams({
            csrfmiddlewaretoken: token, email: "mallory@example.test",
            role: "owner", language: "en",
          });
          const answer = await fetch(location.pathname, { method: "POST", body });
          return answer.status;
        }"""
    )
    assert status == 403
    assert not Invitation.objects.exists()
    problems += policy_problems(page)
    page.context.close()
    assert not problems, "\n".join(problems)
