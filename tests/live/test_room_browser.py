"""The room in Chromium: user text (chat, questions, display names) stays inert."""

from __future__ import annotations

import pytest

from shows.services import room
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '"><svg onload=window.__xss=3>',
    "</script><script>window.__xss=4</script>",
    "javascript:window.__xss=5",
    '<a href="javascript:window.__xss=6">click</a> {{7*7}} ${7*7}',
    '<iframe srcdoc="<script>parent.__xss=7</script>"></iframe>',
]


def test_xss_payloads_in_chat_questions_and_names_render_as_text(
    asgi_server, page, live_show, make_user, host
):
    evil = make_user('<img src=x onerror="window.__xss=8">')
    for payload in PAYLOADS[:4]:
        room.chat_send(show=live_show, user=host, text=payload)
    room.question_ask(show=live_show, user=evil, text=PAYLOADS[4])
    room.chat_send(show=live_show, user=evil, text="hello from evil")

    viewer = make_user("Watcher")
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(viewer), "url": asgi_server}]
    )
    page.goto(f"{asgi_server}/shows/{live_show.slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=10000)
    page.wait_for_function(
        "document.querySelectorAll('#room-chat li').length >= 5", timeout=10000
    )
    # Live events after the snapshot take the same path.
    for payload in PAYLOADS[4:]:
        room.chat_send(show=live_show, user=host, text=payload)
    room.question_ask(show=live_show, user=evil, text=PAYLOADS[6])
    page.wait_for_function(
        "document.querySelectorAll('#room-chat li').length >= 8", timeout=10000
    )
    page.click("#room-tab-qa")
    page.wait_for_function(
        "document.querySelectorAll('#room-questions li').length >= 2", timeout=10000
    )

    texts = page.eval_on_selector_all(
        "#room-chat .room-text", "nodes => nodes.map(n => n.textContent)"
    )
    for payload in [*PAYLOADS[:4], *PAYLOADS[4:]]:
        assert payload in texts
    names = page.eval_on_selector_all(
        "#room-chat .room-author", "nodes => nodes.map(n => n.textContent)"
    )
    assert '<img src=x onerror="window.__xss=8">' in names
    questions = page.inner_text("#room-questions")
    assert PAYLOADS[4] in questions
    assert "<iframe" in questions
    # The page's own bag icon is known by its class; an injected svg is not.
    injected = page.evaluate(
        """() => document.querySelectorAll(
            '#room img[src="x"], #room svg:not(.room-bag-icon), '
            + '#room script:not([type="application/json"]), '
            + '#room iframe, #room a[href^="javascript"]'
        ).length"""
    )
    assert injected == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
