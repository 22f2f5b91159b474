"""Suggested answers: which product a question is about, a draft from its
facts or from an earlier answer, and who may ask for one."""

from __future__ import annotations

import pytest

from live.suggestions import question_product, suggest_answer
from shows import services
from shows.models import Question
from shows.services import room

pytestmark = pytest.mark.django_db


@pytest.fixture
def mic(products):
    """Desk Mic (€89.00, "Standard": 10) with a second option and a
    description."""
    product = products[1]
    product.description = "A cardioid USB microphone. Ships with a stand."
    product.save(update_fields=["description"])
    services.variant_create(
        product=product,
        sku="MIC-BLACK",
        name="Black",
        price_minor=9900,
        currency="EUR",
        stock_available=0,
    )
    return product


def _ask(show, user, text, product=None):
    return room.question_ask(
        show=show, user=user, text=text, product_id=product.pk if product else None
    )


def test_the_product_is_the_one_picked_or_the_one_named(
    live_show, make_user, mic, products
):
    ann, bob = make_user("Ann"), make_user("Bob")
    assert question_product(_ask(live_show, ann, "Is it loud?", mic)) == mic
    assert question_product(_ask(live_show, ann, "Does the desk mic fold?")) == mic
    # Two products named: the longer name wins.
    headphones = _ask(live_show, bob, "studio headphones or the desk mic, which?")
    assert question_product(headphones) == products[0]
    assert question_product(_ask(live_show, bob, "When does the show end?")) is None


@pytest.mark.parametrize(
    ("text", "draft"),
    [
        ("How much is the desk mic?", "Desk Mic costs from €89.00."),
        (
            "Is the desk mic still available?",
            "Stock of Desk Mic now: Standard: 10 left; Black: sold out.",
        ),
        ("Do you have the desk mic in black?", "Black costs €99.00. Black: sold out."),
        (
            "Tell me about the desk mic",
            "Desk Mic costs from €89.00. Options: Standard: 10 left; Black: sold out."
            " A cardioid USB microphone.",
        ),
    ],
)
def test_a_draft_from_the_facts_answers_what_was_asked(
    live_show, make_user, mic, text, draft
):
    question = _ask(live_show, make_user("Ann"), text)
    found = suggest_answer(question=question, language="en")
    assert found is not None
    assert (found.source, found.text) == ("facts", draft)


def test_the_draft_is_in_the_hosts_language(live_show, make_user, mic):
    from django.utils import translation

    question = _ask(live_show, make_user("Ann"), "How much?", mic)
    with translation.override("de"):
        found = suggest_answer(question=question, language="de")
    assert found is not None
    assert "89,00" in found.text


def test_an_earlier_answer_about_the_product_is_offered_first(
    live_show, host, make_user, mic
):
    ann, bob = make_user("Ann"), make_user("Bob")
    earlier = _ask(live_show, ann, "Does it work with an iPad?", mic)
    room.question_answer(
        show=live_show,
        actor=host,
        question_id=earlier.pk,
        text="Yes, with a USB-C cable (not included).",
    )
    later = _ask(live_show, bob, "does this work with ipad", mic)
    assert later.status == Question.Status.OPEN  # not merged: that one is answered
    found = suggest_answer(question=later, language="en")
    assert found is not None
    assert (found.source, found.text) == (
        "earlier_answer",
        "Yes, with a USB-C cable (not included).",
    )
    other = _ask(live_show, bob, "Is it loud?", mic)
    found = suggest_answer(question=other, language="en")
    assert found is not None
    assert found.source == "facts"


def test_the_suggestion_is_for_the_brands_staff_only(
    client, live_show, host, make_user, mic
):
    viewer = make_user("Vera")
    question = _ask(live_show, viewer, "How much is the desk mic?")
    url = f"/api/shows/{live_show.slug}/questions/{question.pk}/suggestion"
    assert client.get(url).status_code == 403
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    client.force_login(host)
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.json()["suggestion"] == {
        "text": "Desk Mic costs from €89.00.",
        "source": "facts",
        "product": {"id": mic.pk, "name": "Desk Mic"},
    }
    general = _ask(live_show, viewer, "When do you ship?")
    none = client.get(f"/api/shows/{live_show.slug}/questions/{general.pk}/suggestion")
    assert none.json()["suggestion"] is None
    assert "names no product" in none.json()["message"]
    missing = f"/api/shows/{live_show.slug}/questions/999999/suggestion"
    assert client.get(missing).status_code == 404
    # Nothing was posted: the question is still open and unanswered.
    question.refresh_from_db()
    assert (question.status, question.answer) == ("open", "")
