"""The studio's room in Chromium as a host uses it during a busy show: similar
questions become one (and can be split off), the queue's tabs, the compact
moderation menu by keyboard, and every room control off once the show ends."""

from __future__ import annotations

import pytest

from shows import services
from shows.models import ChatMessage, Question
from shows.services import room
from tests.frontend.test_a11y import axe_problems, axe_script, signed_in  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

WORDINGS = [
    "Does it work with an iPad?",
    "does this work with ipad",
    "Works with the iPad?",
    "Does it work with iPad??",
]


def _studio(page, asgi_server, host, show):
    signed_in(page, asgi_server, host)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{asgi_server}/shows/{show.slug}/studio/")
    page.wait_for_selector("#studio-conn[data-state='live']", timeout=15_000)


def test_twenty_similar_questions_are_one_line_a_host_can_split(
    asgi_server,
    page,
    live_show,
    host,
    make_user,
    axe_script,  # noqa: F811
):
    askers = [make_user(f"Asker {n}") for n in range(20)]
    room.question_ask(show=live_show, user=askers[0], text=WORDINGS[0])
    _studio(page, asgi_server, host, live_show)
    # Nineteen repeats arrive while the studio is open.
    for n, asker in enumerate(askers[1:], start=1):
        room.question_ask(show=live_show, user=asker, text=WORDINGS[n % 4])
    first = Question.objects.get(status="open")
    line = page.locator(f"#sq-{first.pk}")
    page.wait_for_function(
        "(id) => document.querySelector(`#sq-${id}`)?.dataset.votes === '19'",
        arg=first.pk,
    )
    assert page.locator("#studio-questions > li").count() == 1
    assert page.inner_text("[data-q-count='open']") == "1"
    assert "19 votes" in line.inner_text()
    summary = line.locator("summary")
    assert summary.inner_text() == "19 similar questions"
    summary.click()
    assert line.locator(".studio-merged li").count() == 19
    problems = axe_problems(page, axe_script, "studio, merged questions")
    assert not problems, "\n".join(problems)

    # The host splits one off: it is a question of its own, the vote goes back.
    second = Question.objects.filter(merged_into=first).order_by("id").first()
    assert second is not None
    line.get_by_role(
        "button", name=f"Split off the question from Asker 1: “{second.text}”"
    ).click()
    page.wait_for_selector(f"#studio-questions > #sq-{second.pk}")
    page.wait_for_function(
        "(id) => document.querySelector(`#sq-${id}`)?.dataset.votes === '18'",
        arg=first.pk,
    )
    assert page.inner_text("[data-q-count='open']") == "2"
    second.refresh_from_db()
    assert (second.status, second.merged_into_id) == ("open", None)

    # Answered and dismissed questions move to their own tabs.
    room.question_answer(show=live_show, actor=host, question_id=first.pk, text="Yes")
    room.question_dismiss(show=live_show, actor=host, question_id=second.pk)
    page.wait_for_function(
        "() => document.querySelector('[data-q-count=\"open\"]').textContent === '0'"
    )
    page.get_by_role("tab", name="Answered").click()
    answered = page.locator(f"#studio-questions-answered > #sq-{first.pk}")
    assert answered.is_visible()
    assert "Yes" in answered.inner_text()
    page.keyboard.press("ArrowRight")
    assert page.locator(f"#studio-questions-dismissed > #sq-{second.pk}").is_visible()
    assert page.inner_text("[data-q-count='dismissed']") == "1"


def test_a_chat_line_is_moderated_from_one_menu_by_keyboard(
    asgi_server, page, live_show, host, make_user
):
    vera = make_user("Vera Viewer")
    message = room.chat_send(show=live_show, user=vera, text="buy my stuff elsewhere")
    _studio(page, asgi_server, host, live_show)
    line = page.locator(f"#smsg-{message.pk}")
    more = line.get_by_role("button", name="Moderate message from Vera Viewer")
    more.wait_for()
    # One compact button per line instead of four.
    assert line.locator("button").count() == 1
    more.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu")
    assert menu.is_visible()
    assert more.get_attribute("aria-expanded") == "true"
    focused = "document.activeElement.textContent"
    assert page.evaluate(focused) == "Delete"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == "Time out 1 min"
    page.keyboard.press("End")
    assert page.evaluate(focused) == "Ban"
    page.keyboard.press("Escape")
    assert menu.is_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-haspopup')") == (
        "menu"
    )
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # Delete
    line.wait_for(state="detached")
    message.refresh_from_db()
    assert message.deleted_at is not None
    assert (
        ChatMessage.objects.filter(pk=message.pk, deleted_at__isnull=True).count() == 0
    )


def test_once_the_show_ends_the_rooms_controls_are_off(
    asgi_server, page, live_show, host, make_user, products
):
    room.question_ask(show=live_show, user=make_user("Ann"), text="Does it fold?")
    _studio(page, asgi_server, host, live_show)
    page.wait_for_selector("#studio-questions li")
    pin = page.locator(".studio-pin").first
    assert pin.is_enabled()
    assert page.locator("#studio-sale-form button[type=submit]").is_enabled()
    services.show_end(show=live_show)
    page.wait_for_selector("#studio-ended:not([hidden])")
    for selector in (
        ".studio-pin",
        "#studio-slow",
        "#studio-slow-form button",
        "#studio-chat-input",
        "#studio-questions button",
        "#studio-sale-form button[type=submit]",
        "#studio-sale-form input[name=price]",
    ):
        controls = page.locator(selector)
        assert controls.count() > 0, selector
        for n in range(controls.count()):
            assert controls.nth(n).is_disabled(), selector
    # After a reload too.
    page.reload()
    page.wait_for_selector("#studio-ended:not([hidden])", timeout=15_000)
    assert page.locator(".studio-pin").first.is_disabled()
    assert page.locator("#studio-sale-form button[type=submit]").is_disabled()


def test_a_suggested_answer_is_edited_and_posted_by_the_host(
    asgi_server, page, live_show, host, make_user, products
):
    """The draft lands in the answer field, not in the room; the host edits
    it and answers; viewers get the host's words."""
    question = room.question_ask(
        show=live_show, user=make_user("Ann"), text="How much is the desk mic?"
    )
    _studio(page, asgi_server, host, live_show)
    line = page.locator(f"#sq-{question.pk}")
    line.get_by_role("button", name="Suggest an answer").click()
    field = page.locator(f"#sq-answer-{question.pk}")
    page.wait_for_function(
        "(id) => document.querySelector(`#sq-answer-${id}`).value !== ''",
        arg=question.pk,
    )
    assert field.input_value() == "Desk Mic costs €89.00."
    assert "Drafted from what the shop knows about Desk Mic" in line.inner_text()
    question.refresh_from_db()
    assert question.status == "open"  # nothing posted by itself
    field.fill("Desk Mic costs €89.00, and €79.00 during tonight's sale.")
    line.get_by_role("button", name="Answer", exact=True).click()
    page.wait_for_selector(
        f"#studio-questions-answered > #sq-{question.pk}", state="attached"
    )
    question.refresh_from_db()
    assert question.status == "answered"
    assert question.answer == "Desk Mic costs €89.00, and €79.00 during tonight's sale."
