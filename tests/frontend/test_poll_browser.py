"""Polls in Chromium: the host asks in the studio, a signed-in viewer and a
guest answer on the show page (by keyboard and by tap), both see the results
come in with shares and counts written out, the studio sees the counts, the
close shows the winner; a phone keeps the poll off the video; axe-clean; the
replay shows the poll from the moment it was asked with its final result."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from playwright.sync_api import expect

from shows import services
from shows.models import Poll, PollVote, Show
from shows.services import polls
from tests.frontend.test_a11y import axe_problems, axe_script, signed_in
from tests.frontend.test_replay_browser import SECONDS, recorded

__all__ = ["axe_script", "recorded"]  # fixtures, used by name

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _until(check: Any, timeout: float = 15.0) -> None:
    """Poll ``check`` from the test (the page's CSP refuses string predicates)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the page did not get there in time")
        time.sleep(0.1)


def _guest_cookie(base: str) -> dict[str, str]:
    session = SessionStore()
    session["guest"] = True
    session.create()
    return {"name": "sessionid", "value": str(session.session_key), "url": base}


def _room(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)


def test_a_host_asks_two_viewers_answer_and_everyone_sees_the_results(
    asgi_server, browser, page, live_show, host, make_user, axe_script
):
    viewer = make_user("Vera Viewer")
    show_url = f"{asgi_server}/shows/{live_show.slug}/"
    member_context = browser.new_context(viewport={"width": 1280, "height": 900})
    member = member_context.new_page()
    signed_in(member, asgi_server, viewer)
    guest_context = browser.new_context(viewport={"width": 390, "height": 844})
    guest_context.add_cookies([_guest_cookie(asgi_server)])
    guest = guest_context.new_page()
    _room(member, show_url)
    _room(guest, show_url)
    assert member.locator("#room-poll").is_hidden()

    # The host asks in the studio, with a third answer added.
    signed_in(page, asgi_server, host)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{show_url}studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    page.fill("#studio-poll-question", "Which colour should we drop next?")
    page.fill("#studio-poll-option-1", "Red")
    page.fill("#studio-poll-option-2", "Blue")
    page.click("#studio-poll-add")
    expect(page.locator("#studio-poll-option-3")).to_be_focused()
    page.keyboard.type("Green")
    page.click("#studio-poll-ask")
    expect(page.locator("#studio-poll-q")).to_have_text(
        "Which colour should we drop next?"
    )
    expect(page.locator("#studio-poll-close")).to_be_focused()
    assert page.locator("#studio-poll-form").is_hidden()
    poll = Poll.objects.get()

    # The viewers' pages load the poll when it opens.
    for viewer_page in (member, guest):
        expect(viewer_page.locator("#room-poll .poll-question")).to_have_text(
            "Which colour should we drop next?", timeout=15_000
        )
    assert member.locator("#room-poll input[type=radio]").count() == 3
    problems = axe_problems(member, axe_script, "viewer, open poll")

    # The host shows the results to everybody: still to answer, one sees them.
    page.click("#studio-poll-show")
    expect(page.locator("#studio-poll-shown")).to_be_visible()
    expect(page.locator("#studio-poll-close")).to_be_focused()
    expect(member.locator("#room-poll .poll-result")).to_have_count(3, timeout=15_000)
    expect(member.locator("#room-poll .poll-vote")).to_be_visible()
    expect(member.locator("#room-poll .poll-total")).to_have_text("0 votes")

    # The member answers by keyboard: arrows move between the radios.
    member.locator("#room-poll input[type=radio]").first.focus()
    member.keyboard.press("ArrowDown")
    member.keyboard.press("Space")
    expect(member.locator("#room-poll input[value='1']")).to_be_checked()
    member.click("#room-poll .poll-vote")
    # The guest taps on a phone.
    guest.click("#room-poll label:has-text('Red')")
    guest.click("#room-poll .poll-vote")

    for viewer_page in (member, guest):
        results = viewer_page.locator("#room-poll .poll-result")
        expect(results).to_have_count(3, timeout=15_000)
        expect(viewer_page.locator("#room-poll .poll-total")).to_have_text(
            "2 votes", timeout=15_000
        )
        expect(results.nth(0).locator(".poll-figure")).to_have_text("50% · 1 vote")
        expect(results.nth(1).locator(".poll-figure")).to_have_text("50% · 1 vote")
        expect(results.nth(2).locator(".poll-figure")).to_have_text("0% · 0 votes")
    expect(member.locator("#room-poll [data-mine='1'] .poll-option")).to_contain_text(
        "Blue (your answer)"
    )
    expect(guest.locator("#room-poll [data-mine='1'] .poll-option")).to_contain_text(
        "Red (your answer)"
    )
    assert sorted(PollVote.objects.values_list("voter", flat=True)) == sorted(
        [f"u:{viewer.pk}", f"s:{guest_context.cookies()[0]['value']}"]
    )
    # The studio sees the counts.
    expect(page.locator("#studio-poll-total")).to_have_text("2 votes", timeout=15_000)
    expect(page.locator("#studio-poll-results .poll-figure").nth(1)).to_have_text(
        "50% · 1 vote"
    )
    problems += axe_problems(member, axe_script, "viewer, results")
    problems += axe_problems(page, axe_script, "studio, open poll")

    # On a phone the poll sits under the video, not over it.
    video = guest.locator("[data-player]").bounding_box()
    box = guest.locator("#room-poll").bounding_box()
    assert video is not None
    assert box is not None
    assert box["y"] >= video["y"] + video["height"] - 1
    assert box["width"] <= 390

    # A reload keeps the answer (the guest asks the server which it gave).
    guest.reload()
    expect(guest.locator("#room-poll [data-mine='1'] .poll-option")).to_contain_text(
        "Red (your answer)", timeout=15_000
    )

    # One more vote comes in (not through a page), then the host closes: the
    # close carries the final counts to everybody.
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=make_user("Third"))
    page.click("#studio-poll-close")
    for viewer_page in (member, guest):
        expect(viewer_page.locator("#room-poll .poll-kicker")).to_have_text(
            "Poll closed", timeout=15_000
        )
        winner = viewer_page.locator("#room-poll [data-winner='1']")
        expect(winner).to_have_count(1)
        expect(winner.locator(".poll-option")).to_contain_text("Blue")
        expect(winner.locator(".poll-option")).to_contain_text("(winner)")
        expect(viewer_page.locator("#room-poll .poll-total")).to_have_text("3 votes")
    expect(page.locator("#studio-poll-form")).to_be_visible()
    expect(page.locator("#studio-poll-question")).to_be_focused()
    problems += axe_problems(guest, axe_script, "phone viewer, closed poll")
    assert not problems, "\n".join(problems)
    member_context.close()
    guest_context.close()


def test_the_studio_checks_the_answers_and_keeps_two_rows(
    asgi_server, page, live_show, host
):
    signed_in(page, asgi_server, host)
    page.goto(f"{asgi_server}/shows/{live_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    remove = page.locator(".studio-poll-remove:visible")
    expect(remove).to_have_count(2)
    expect(remove.first).to_be_disabled()
    for _ in range(2):
        page.click("#studio-poll-add")
    expect(page.locator("#studio-poll-add")).to_be_disabled()
    page.fill("#studio-poll-option-1", "One")
    page.fill("#studio-poll-option-2", "Two")
    page.fill("#studio-poll-option-3", "Three")
    page.fill("#studio-poll-option-4", "Four")
    page.locator(".studio-poll-remove[data-row='2']").click()
    values = [page.input_value(f"#studio-poll-option-{n}") for n in (1, 2, 3)]
    assert values == ["One", "Three", "Four"]
    assert page.locator("[data-row='4'].studio-poll-row").is_hidden()
    page.fill("#studio-poll-question", "Pick one")
    page.fill("#studio-poll-option-2", "one")  # the same as the first
    page.click("#studio-poll-ask")
    expect(page.locator("#studio-poll-error")).to_have_text("Two answers are the same.")
    assert not Poll.objects.exists()


def test_the_studio_turns_polls_off_once_the_show_ended(
    asgi_server, page, live_show, host
):
    services.show_end(show=live_show)
    signed_in(page, asgi_server, host)
    page.goto(f"{asgi_server}/shows/{live_show.slug}/studio/")
    page.wait_for_selector("#studio-conn", timeout=15_000)
    expect(page.locator("#studio-poll-ended")).to_be_visible(timeout=15_000)
    expect(page.locator("#studio-poll-ask")).to_be_disabled()
    expect(page.locator("#studio-poll-question")).to_be_disabled()


@pytest.fixture
def replay_with_poll(recorded, show, host, make_user) -> Show:
    """An ended show with its recording; a poll asked at 0:04, three votes."""
    services.show_start(show=show)
    started = timezone.now() - timedelta(hours=1)
    Show.objects.filter(pk=show.pk).update(started_at=started)
    poll = polls.poll_open(
        show=show, actor=host, question="Best moment?", options=["Intro", "Demo"]
    )
    for option in (1, 1, 0):
        polls.poll_vote(show=show, poll_id=poll.pk, option=option, user=make_user())
    polls.poll_close(show=show, actor=host)
    Poll.objects.filter(pk=poll.pk).update(opened_at=started + timedelta(seconds=4))
    services.show_end(show=show)
    Show.objects.filter(pk=show.pk).update(
        started_at=started,
        ended_at=started + timedelta(seconds=SECONDS),
        recording_file="launch.webm",
    )
    show.refresh_from_db()
    return show


def test_the_replay_shows_the_poll_from_when_it_was_asked_with_its_result(
    replay_with_poll, asgi_server, page, axe_script
):
    page.goto(f"{asgi_server}/shows/{replay_with_poll.slug}/")
    page.wait_for_selector("#replay-polls-empty")
    _until(lambda: page.evaluate("document.querySelector('video').readyState >= 1"))
    expect(page.locator("#replay-polls .poll")).to_have_count(0)
    expect(page.locator("#replay-polls-empty")).to_be_visible()
    page.evaluate("document.querySelector('video').currentTime = 5")
    poll = page.locator("#replay-polls .poll")
    expect(poll).to_have_count(1, timeout=10_000)
    expect(poll.locator(".poll-question")).to_have_text("Best moment?")
    expect(poll.locator(".poll-figure").nth(1)).to_have_text("67% · 2 votes")
    expect(poll.locator("[data-winner='1'] .poll-option")).to_contain_text("Demo")
    expect(poll.locator(".poll-total")).to_have_text("3 votes")
    problems = axe_problems(page, axe_script, "replay with a poll")
    assert not problems, "\n".join(problems)
    # Back before it was asked: gone again.
    page.evaluate("document.querySelector('video').currentTime = 1")
    expect(page.locator("#replay-polls .poll")).to_have_count(0)


def test_a_german_page_writes_shares_and_counts_in_german(
    asgi_server, browser, live_show, host, make_user
):
    """Numbers and percentages follow the page's language (Intl), the count
    words its catalogue."""
    poll = polls.poll_open(
        show=live_show, actor=host, question="Farbe?", options=["Rot", "Blau"]
    )
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=make_user())
    for _ in range(3):
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=make_user())
    polls.poll_results_show(show=live_show, actor=host)
    context = browser.new_context(
        locale="de-DE", viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    _room(page, f"{asgi_server}/shows/{live_show.slug}/")
    assert page.evaluate("document.documentElement.lang") == "de"
    figures = page.locator("#room-poll .poll-figure")
    expect(figures).to_have_count(2, timeout=15_000)
    # German puts a (narrow) no-break space before the per cent sign.
    assert (
        figures.nth(0).inner_text().replace("\u202f", " ").replace("\xa0", " ")
        == "75 % · 3 Stimmen"
    )
    assert (
        figures.nth(1).inner_text().replace("\u202f", " ").replace("\xa0", " ")
        == "25 % · 1 Stimme"
    )
    expect(page.locator("#room-poll .poll-total")).to_have_text("4 Stimmen")
    context.close()
