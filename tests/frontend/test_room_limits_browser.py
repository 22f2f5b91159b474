"""Text too long for the room, as a viewer meets it in Chromium: a pasted
2,000-character message is neither cut nor sent, the viewer is told how
long it is, and it stays in the box to be shortened."""

from __future__ import annotations

import pytest

from shows.models import ChatMessage, Question, Show
from tests.frontend.test_a11y import open_live_room, signed_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_a_long_paste_is_kept_and_explained_not_cut(
    asgi_server, page, live_show, make_user
):
    signed_in(page, asgi_server, make_user("Vera Viewer"))
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    pasted = ("Lovely headphones! " * 105).strip()  # 1,994 characters
    box = page.locator("#room-chat-input")
    box.fill(pasted)
    box.press("Enter")
    error = page.locator("#room-error")
    error.get_by_text("1994 characters").wait_for()
    assert "at most 500" in error.inner_text()
    assert box.input_value() == pasted  # nothing cut, nothing lost
    assert not ChatMessage.objects.filter(show=live_show).exists()
    # Shortened, it goes.
    box.fill("Lovely headphones!")
    box.press("Enter")
    page.locator("#room-chat li", has_text="Lovely headphones!").wait_for()
    assert box.input_value() == ""

    page.click("#room-tab-qa")
    ask = page.locator("#room-ask-input")
    ask.fill(("Does it fold? " * 30).strip())  # 419 characters
    ask.press("Enter")
    error.get_by_text("at most 300").wait_for()
    assert len(ask.input_value()) == 419
    assert not Question.objects.filter(show=live_show).exists()


def test_when_the_show_ends_the_room_stops_taking_messages(
    asgi_server, page, live_show, make_user
):
    """The chat and question boxes, the reactions and the live "watching"
    figure go as the show ends, without a reload."""
    from shows import services

    signed_in(page, asgi_server, make_user("Vera Viewer"))
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    assert page.locator("#room-chat-input").is_visible()
    services.show_end(show=live_show)
    page.wait_for_selector(".show[data-status='ended']")
    for selector in (
        "#room-chat-form",
        "#room-ask-form",
        "#room-heart",
        ".room-viewers",
    ):
        assert page.locator(selector).is_hidden(), selector


def test_a_show_that_ends_before_the_socket_opens_is_ended_by_the_snapshot(
    asgi_server, page, live_show, make_user
):
    """The page was rendered live; the show ended before its socket's first
    snapshot, whose seq then covers the ``show.status`` event, so only the
    snapshot can say so (the race that once left the chat box open)."""
    from shows import services

    def end_then_connect(ws):
        if Show.objects.get(pk=live_show.pk).status == Show.Status.LIVE:
            services.show_end(show=live_show)
        ws.connect_to_server()

    page.route_web_socket("**/ws/**", end_then_connect)
    signed_in(page, asgi_server, make_user("Vera Viewer"))
    page.goto(f"{asgi_server}/shows/{live_show.slug}/")
    page.wait_for_selector(".show[data-status='ended']", timeout=15_000)
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15_000)
    for selector in ("#room-chat-form", "#room-ask-form", "#room-heart"):
        assert page.locator(selector).is_hidden(), selector
    assert page.locator("#room-error").inner_text().strip()  # said, not silent


def test_all_six_reactions_are_offered_and_reach_the_room(
    asgi_server, page, live_show, make_user
):
    """Besides the heart, the other five reactions open from a small button
    by keyboard; one sent comes back in the room's burst and floats as
    itself."""
    page.add_init_script(
        """window.__bursts = [];
        window.__floats = [];
        document.addEventListener("showfloor:event", (e) => {
          const d = e.detail;
          if (d.type === "reactions.burst") window.__bursts.push(d.counts);
        });
        const seen = (n) =>
          n.classList?.contains("room-float") && window.__floats.push(n.textContent);
        new MutationObserver((all) => all.forEach((c) => c.addedNodes.forEach(seen)))
          .observe(document, { childList: true, subtree: true });"""
    )
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    offered = page.locator(".room-reaction-set [data-emoji]")
    assert offered.count() == 5
    assert offered.first.is_hidden()  # folded until asked for
    summary = page.locator(".room-reactions summary")
    assert summary.get_attribute("aria-label") == "More reactions"
    summary.focus()
    page.keyboard.press("Enter")
    fire = page.get_by_role("button", name="Send fire")
    assert fire.is_visible()
    emojis = {offered.nth(n).get_attribute("data-emoji") for n in range(5)}
    assert emojis | {"❤️"} == {"❤️", "🔥", "👏", "😂", "😮", "🛍️"}
    fire.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "window.__bursts.some((counts) => counts['🔥'] >= 1)", timeout=10_000
    )
    assert "🔥" in page.evaluate("window.__floats")


def test_a_long_message_shows_three_lines_and_more(asgi_server, page, live_show, host):
    from shows.services import room

    long_text = "This microphone changed how my podcast sounds, honestly. " * 8
    room.chat_send(show=live_show, user=host, text=long_text.strip())
    room.chat_send(show=live_show, user=host, text="Short one")
    open_live_room(page, f"{asgi_server}/shows/{live_show.slug}/")
    message = page.locator(".room-msg", has_text="This microphone")
    text = message.locator(".room-text")
    line = page.locator(".room-msg", has_text="Short one").locator(".room-text")
    clamped = text.bounding_box()
    one_line = line.bounding_box()
    assert clamped is not None
    assert one_line is not None
    assert clamped["height"] <= 3.5 * one_line["height"]
    more = message.get_by_role("button", name="more")
    assert more.get_attribute("aria-expanded") == "false"
    assert (
        page.locator(".room-msg", has_text="Short one").locator("button").count() == 0
    )
    more.click()
    assert (
        message.get_by_role("button", name="less").get_attribute("aria-expanded")
        == "true"
    )
    opened = text.bounding_box()
    assert opened is not None
    assert opened["height"] > clamped["height"]
