"""Similar questions merged in the host's queue (``shows.similar``), the votes
they bring, and a host splitting one off again."""

from __future__ import annotations

import json

import pytest

from shows import selectors
from shows.exceptions import NotAHost, NotFound
from shows.models import Question, QuestionVote
from shows.services import room
from shows.similar import Candidate, meaning_words, similar_question

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """The events handed to the bus after commit, in order."""
    from realtime import bus

    sent: list[dict[str, object]] = []

    class Recorder:
        def publish_event(self, show_id, seq, payload, *, strict):
            sent.append(json.loads(payload))
            return bus.PUBLISHED

        def publish(self, show_id, data):
            pass

        def control(self, command):
            pass

    monkeypatch.setattr(bus, "get_bus", lambda: Recorder())
    return sent


# --- Which texts are the same question ----------------------------------------


@pytest.mark.parametrize(
    ("asked", "open_one"),
    [
        ("Does this work with iPad", "does it work with an iPad?"),
        ("is this waterproof??", "Is it waterproof?"),
        ("Do you ship to Austria?", "Ships to Austria?"),
        ("Funktioniert das mit dem iPad?", "funktioniert es mit iPad"),
        ("Est-ce que ça marche avec l'iPad ?", "ça marche avec iPad?"),
        ("How long does the battery last?", "how long is the battery life"),
    ],
)
def test_the_same_question_in_other_words_is_found(asked, open_one):
    assert similar_question(asked, None, [Candidate(7, open_one, None)]) == 7


@pytest.mark.parametrize(
    ("asked", "open_one"),
    [
        ("Does it come in red?", "does it work with an iPad?"),
        ("Can I use it with Android?", "Can I use it with iPhone?"),
        ("Is there a size XL?", "Do you have it in XL?"),
        ("red?", "Does it come in red?"),
        ("???", "???"),
    ],
)
def test_different_questions_stay_apart(asked, open_one):
    assert similar_question(asked, None, [Candidate(7, open_one, None)]) is None


def test_questions_about_two_products_are_never_the_same():
    open_ones = [Candidate(3, "Is it waterproof?", 11)]
    assert similar_question("is it waterproof", 12, open_ones) is None
    assert similar_question("is it waterproof", 11, open_ones) == 3
    assert similar_question("is it waterproof", None, open_ones) == 3


def test_the_closest_and_then_the_oldest_is_chosen():
    open_ones = [
        Candidate(9, "does it work with ipad pro", None),
        Candidate(5, "does it work with ipad", None),
        Candidate(4, "work with an iPad?", None),
    ]
    assert similar_question("Does it work with an iPad?", None, open_ones) == 4
    assert meaning_words("Does it work with an iPad?") == ["work", "ipad"]


# --- In the room -------------------------------------------------------------


def test_twenty_people_asking_the_same_make_one_question(
    live_show, make_user, published, django_capture_on_commit_callbacks
):
    """The first question stays; nineteen repeats in other words are kept
    merged into it, each adding its asker's vote: one line in the queue that
    twenty people asked, with nineteen votes besides its asker's own."""
    wordings = [
        "Does it work with an iPad?",
        "does this work with ipad",
        "Works with iPad?",
        "Does it work with the iPad??",
    ]
    askers = [make_user(f"Asker {n}") for n in range(20)]
    with django_capture_on_commit_callbacks(execute=True):
        for n, asker in enumerate(askers):
            room.question_ask(show=live_show, user=asker, text=wordings[n % 4])
    first = Question.objects.get(status=Question.Status.OPEN)
    assert first.author == askers[0]
    assert first.votes == 19
    merged = Question.objects.filter(merged_into=first)
    assert merged.count() == 19
    assert set(merged.values_list("status", flat=True)) == {"merged"}
    assert QuestionVote.objects.filter(question=first).count() == 19
    assert [e["type"] for e in published] == ["question.asked"] + [
        "question.merged"
    ] * 19
    last = published[-1]
    assert last["into"] == first.pk
    assert last["votes"] == 19
    assert last["question"]["merged_into"] == first.pk
    assert last["question"]["author"]["name"] == "Asker 19"


def test_asking_again_or_after_voting_adds_no_vote(live_show, make_user, published):
    """The asker of the open question, or someone who voted for it already,
    is merged without a second vote."""
    ann, bob = make_user("Ann"), make_user("Bob")
    first = room.question_ask(show=live_show, user=ann, text="Is it waterproof?")
    room.question_vote(show=live_show, user=bob, question_id=first.pk)
    again = room.question_ask(show=live_show, user=ann, text="is it waterproof??")
    bobs = room.question_ask(show=live_show, user=bob, text="waterproof?")
    first.refresh_from_db()
    assert first.votes == 1
    assert (again.merged_into, again.merged_vote) == (first, False)
    assert (bobs.merged_into, bobs.merged_vote) == (first, False)


def test_a_question_is_not_merged_into_an_answered_one(
    live_show, make_user, host, published
):
    first = room.question_ask(
        show=live_show, user=make_user("Ann"), text="Is it waterproof?"
    )
    room.question_answer(show=live_show, actor=host, question_id=first.pk, text="Yes")
    later = room.question_ask(
        show=live_show, user=make_user("Bob"), text="is it waterproof?"
    )
    assert later.status == Question.Status.OPEN
    assert later.merged_into is None


def test_a_host_splits_a_merged_question_off_and_its_vote_goes_back(
    live_show, make_user, host, published, django_capture_on_commit_callbacks
):
    ann, bob, cem = make_user("Ann"), make_user("Bob"), make_user("Cem")
    first = room.question_ask(show=live_show, user=ann, text="Does it work with iPad?")
    bobs = room.question_ask(show=live_show, user=bob, text="will it work with ipad")
    room.question_ask(show=live_show, user=cem, text="does it work with an ipad")
    first.refresh_from_db()
    assert first.votes == 2
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        split = room.question_split(show=live_show, actor=host, question_id=bobs.pk)
    first.refresh_from_db()
    assert (split.status, split.merged_into, split.merged_vote) == ("open", None, False)
    assert first.votes == 1
    assert not QuestionVote.objects.filter(question=first, voter=bob).exists()
    assert QuestionVote.objects.filter(question=first, voter=cem).exists()
    assert [e["type"] for e in published] == ["question.split", "question.asked"]
    assert published[0] == {
        "type": "question.split",
        "question_id": bobs.pk,
        "from": first.pk,
        "votes": 1,
        "seq": published[0]["seq"],
    }
    # Open on its own: it can be voted for and answered.
    room.question_vote(show=live_show, user=cem, question_id=bobs.pk)
    with pytest.raises(NotFound):
        room.question_split(show=live_show, actor=host, question_id=bobs.pk)


def test_only_hosts_and_moderators_split(live_show, make_user, published):
    ann, bob = make_user("Ann"), make_user("Bob")
    room.question_ask(show=live_show, user=ann, text="Is it waterproof?")
    merged = room.question_ask(show=live_show, user=bob, text="waterproof?")
    with pytest.raises(NotAHost):
        room.question_split(show=live_show, actor=bob, question_id=merged.pk)
    merged.refresh_from_db()
    assert merged.status == Question.Status.MERGED


def test_the_studio_snapshot_lists_merged_and_dismissed_questions_viewers_do_not(
    live_show, make_user, host, published
):
    ann, bob = make_user("Ann"), make_user("Bob")
    first = room.question_ask(show=live_show, user=ann, text="Is it waterproof?")
    merged = room.question_ask(show=live_show, user=bob, text="waterproof?")
    other = room.question_ask(show=live_show, user=bob, text="Which colours?")
    room.question_dismiss(show=live_show, actor=host, question_id=other.pk)

    def ids(user):
        snapshot = selectors.room_snapshot(show=live_show, user=user, seq=0, viewers=0)
        return {q["id"]: q["status"] for q in snapshot["questions"]}

    assert ids(host) == {first.pk: "open", merged.pk: "merged", other.pk: "dismissed"}
    assert ids(ann) == {first.pk: "open"}
    assert ids(None) == {first.pk: "open"}
