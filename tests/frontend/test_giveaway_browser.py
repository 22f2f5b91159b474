"""A giveaway in Chromium as a host and two viewers live it: the host starts
it in the studio, one viewer enters with the button and one by typing the
keyword in the chat, the host draws, and the winner on the page is the one
this test recomputes from the seed and the list the page published."""

from __future__ import annotations

import hashlib
import time

import pytest

from shows import services
from shows.models import GiveawayEntry
from tests.frontend.test_a11y import axe_problems, axe_script, signed_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def poll(page, script, arg=None, timeout=15.0):
    """Evaluate ``script`` until it is truthy (the page's CSP refuses the
    string predicates Playwright polls with); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still falsy after {timeout}s: {script}")
        time.sleep(0.1)


def open_room(browser, asgi_server, user, show, width=390):
    context = browser.new_context(viewport={"width": width, "height": 844})
    page = context.new_page()
    signed_in(page, asgi_server, user)
    page.goto(f"{asgi_server}/shows/{show.slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)
    return page


def recompute(seed_hex: str, tokens: list[str]) -> str:
    """Round 1 of the published method, written out here."""
    remaining = sorted(tokens, key=lambda t: t.encode())
    message = bytes.fromhex(seed_hex) + b"\n1\n" + "\n".join(remaining).encode("ascii")
    digest = hashlib.sha256(message).digest()
    return remaining[int.from_bytes(digest, "big") % len(remaining)]


def test_two_viewers_enter_and_the_drawn_winner_is_the_recomputed_one(
    asgi_server,
    browser,
    page,
    live_show,
    host,
    make_user,
    products,
    axe_script,  # noqa: F811
):
    vera, otto = make_user("Vera Viewer"), make_user("Otto Other")
    # The host starts it from the studio: a line-up product, by keyword.
    signed_in(page, asgi_server, host)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{asgi_server}/shows/{live_show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)
    page.select_option("#sg-product", str(products[0].pk))
    page.select_option("#sg-entry", "keyword")
    assert page.locator("#sg-keyword").input_value() == "GIVE"
    page.select_option("#sg-eligibility", "signed_in")
    page.get_by_role("button", name="Start the giveaway").click()
    page.wait_for_selector("#studio-giveaway-live:not([hidden])")
    assert page.inner_text("#sg-live-prize") == products[0].name
    problems = axe_problems(page, axe_script, "studio, giveaway open")
    assert not problems, "\n".join(problems)

    first = open_room(browser, asgi_server, vera, live_show)
    second = open_room(browser, asgi_server, otto, live_show)
    for viewer in (first, second):
        viewer.wait_for_selector("#room-giveaway:not([hidden])", timeout=15_000)
        assert "Type GIVE in the chat to enter" in viewer.inner_text("#room-giveaway")
    shown_commitment = first.get_attribute("#giveaway-commitment", "title")
    assert first.inner_text("#giveaway-commitment").startswith(
        f"Draw commitment: {shown_commitment[:8]}"
    )
    problems = axe_problems(first, axe_script, "room, giveaway open (phone)")
    assert not problems, "\n".join(problems)
    # On a phone the card lies under the video, not over it.
    video = first.locator(".player-video").bounding_box()
    card = first.locator("#room-giveaway").bounding_box()
    assert card["y"] >= video["y"] + video["height"] - 1

    # One enters with the button (from the keyboard), one types the keyword.
    first.focus("#giveaway-enter")
    first.keyboard.press("Enter")
    first.wait_for_selector("#giveaway-say:has-text('Your token')")
    second.fill("#room-chat-input", "give!")
    second.press("#room-chat-input", "Enter")
    second.wait_for_selector("#giveaway-say:has-text('Your token')")
    tokens = {entry.user_id: entry.token for entry in GiveawayEntry.objects.all()}
    assert first.inner_text("#giveaway-say").endswith(tokens[vera.pk])
    assert second.inner_text("#giveaway-say").endswith(tokens[otto.pk])
    poll(
        page,
        "() => document.querySelector('#sg-live-count').textContent === '2 entries'",
    )

    page.get_by_role("button", name="Draw now").click()
    result = poll(
        first,
        "() => { const t = document.querySelector('#giveaway-result').textContent;"
        " return t.startsWith('Winner') && t; }",
    )
    first.click("#giveaway-details summary")
    seed = first.inner_text("[data-giveaway-seed]")
    published = first.evaluate(
        "() => [...document.querySelectorAll('[data-giveaway-list] li')]"
        ".map((li) => [li.dataset.token,"
        " li.textContent.slice(li.dataset.token.length).trim()])"
    )
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == shown_commitment
    assert first.inner_text("#giveaway-hash") == shown_commitment
    names = dict(published)
    assert sorted(names) == sorted(tokens.values())
    winner_token = recompute(seed, list(names))
    assert result == f"Winner: {names[winner_token]}"
    poll(
        page,
        "() => document.querySelector('#sg-live-result')"
        ".textContent.startsWith('Winner')",
    )
    assert page.inner_text("#sg-live-result") == result

    # The winner's page offers the claim; after it, every page says so.
    winner_page = first if winner_token == tokens[vera.pk] else second
    other_page = second if winner_page is first else first
    winner_page.wait_for_selector("#giveaway-claim:visible")
    assert other_page.locator("#giveaway-won").is_hidden()
    problems = axe_problems(winner_page, axe_script, "room, giveaway won")
    assert not problems, "\n".join(problems)
    winner_page.click("#giveaway-claim")
    other_page.wait_for_selector("#giveaway-result:has-text('claimed the prize')")
    poll(
        page,
        "() => document.querySelector('#sg-live-status').textContent === 'Claimed'",
    )

    # Once the show ends, the studio's giveaway controls are off.
    services.show_end(show=live_show)
    page.wait_for_selector("#studio-giveaway-ended:not([hidden])")
    assert page.locator("#studio-giveaway-form").is_hidden()
    assert page.locator("#sg-new").is_hidden()
    assert page.locator("#sg-cancel").is_hidden()

    # The verification page recomputes it too, and passes axe.
    other_page.goto(f"{asgi_server}{first.get_attribute('#giveaway-verify', 'href')}")
    assert other_page.locator(".giveaway-rounds td", has_text="Matches").count() == 1
    problems = axe_problems(other_page, axe_script, "giveaway verification page")
    assert not problems, "\n".join(problems)
