"""Text too long for the room, as a viewer meets it in Chromium: a pasted
2,000-character message is neither cut nor sent, the viewer is told how
long it is, and it stays in the box to be shortened."""

from __future__ import annotations

import pytest

from shows.models import ChatMessage, Question
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
