"""Live polls' services: the rules, the counts, the events, and one vote per
voter under a race on PostgreSQL."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from realtime import events
from shows import poll_cards
from shows.exceptions import (
    AlreadyVoted,
    InvalidInput,
    LoginRequired,
    NotAHost,
    NotFound,
    ShowEnded,
)
from shows.models import Poll, PollVote
from shows.services import lifecycle, polls

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Every event handed to the bus (after commit), in order, without its seq."""
    from realtime import bus

    sent: list[tuple[str, int, object]] = []

    class Recorder:
        def publish_event(self, show_id, seq, payload, *, strict):
            event = json.loads(payload)
            assert event.pop("seq") == seq
            sent.append(("persisted", show_id, event))
            return bus.PUBLISHED

        def publish(self, show_id, data):
            if data.startswith("E"):
                sent.append(("ephemeral", show_id, json.loads(data[1:])))
            else:
                recipient, _, body = data[1:].partition("\n")
                sent.append(("private", show_id, (recipient, json.loads(body))))

        def control(self, command):
            sent.append(("control", 0, command))

    monkeypatch.setattr(bus, "get_bus", lambda: Recorder())
    return sent


def _open(show, host, *options):
    return polls.poll_open(
        show=show,
        actor=host,
        question="Which colour next?",
        options=list(options or ("Red", "Blue")),
    )


def test_a_host_asks_and_the_room_gets_the_poll_card_after_commit(
    live_show, host, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        poll = polls.poll_open(
            show=live_show,
            actor=host,
            question="  Which   colour next? ",
            options=[" Red ", "Blue", "Green"],
        )
    assert poll.question == "Which colour next?"
    assert poll.options == ["Red", "Blue", "Green"]
    assert poll.created_by == host
    [(kind, show_id, event)] = published
    assert (kind, show_id) == ("persisted", live_show.pk)
    assert event["type"] == "poll.opened"
    card = event["poll"]
    assert card["id"] == poll.pk
    assert card["options"] == ["Red", "Blue", "Green"]
    assert card["counts"] == [0, 0, 0]
    assert card["total"] == 0
    assert card["status"] == "open"
    assert card["winners"] == []


@pytest.mark.parametrize(
    ("question", "options", "message"),
    [
        ("", ["Red", "Blue"], "Write the question."),
        ("Q" * 201, ["Red", "Blue"], "longer than 200"),
        ("Colour?", ["Red"], "from 2 to 4 answers"),
        ("Colour?", ["A", "B", "C", "D", "E"], "from 2 to 4 answers"),
        ("Colour?", ["Red", " "], "An answer is empty"),
        ("Colour?", ["Red", "B" * 81], "Answer 2 is longer than 80"),
        ("Colour?", ["Red", "red "], "Two answers are the same"),
        ("Colour?", "Red, Blue", "list of texts"),
    ],
)
def test_a_poll_needs_a_question_and_two_to_four_distinct_short_answers(
    live_show, host, question, options, message
):
    with pytest.raises(InvalidInput) as refused:
        polls.poll_open(show=live_show, actor=host, question=question, options=options)
    assert message in refused.value.message
    assert not Poll.objects.exists()


def test_the_longest_allowed_question_and_answers_are_taken(live_show, host):
    poll = polls.poll_open(
        show=live_show, actor=host, question="Q" * 200, options=["a" * 80, "b" * 80]
    )
    assert len(poll.question) == 200


def test_a_viewer_may_not_ask_or_close_a_poll(live_show, host, make_user):
    viewer = make_user("Vera")
    with pytest.raises(NotAHost):
        _open(live_show, viewer)
    poll = _open(live_show, host)
    with pytest.raises(NotAHost):
        polls.poll_close(show=live_show, actor=viewer, poll_id=poll.pk)
    assert Poll.objects.get().closed_at is None


def test_only_one_poll_is_open_at_a_time(live_show, host, moderator):
    first = _open(live_show, host)
    with pytest.raises(polls.PollAlreadyOpen) as refused:
        _open(live_show, moderator, "Yes", "No")
    assert refused.value.code == "poll_open"
    polls.poll_close(show=live_show, actor=moderator)
    second = _open(live_show, moderator, "Yes", "No")
    assert list(Poll.objects.values_list("id", flat=True)) == [first.pk, second.pk]


def test_no_poll_is_asked_once_the_show_ended(live_show, host):
    lifecycle.show_end(show=live_show)
    with pytest.raises(ShowEnded):
        _open(live_show, host)


def test_votes_are_counted_exactly_and_each_voter_answers_once(
    live_show, host, make_user, published, django_capture_on_commit_callbacks
):
    poll = _open(live_show, host, "Red", "Blue", "Green")
    people = [make_user(f"P{i}") for i in range(3)]
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=people[0])
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=people[1])
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=2, user=people[2])
        polls.poll_vote(
            show=live_show, poll_id=poll.pk, option=0, user=None, session_key="g1"
        )
    with pytest.raises(AlreadyVoted) as refused:
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=people[0])
    assert refused.value.code == "already_voted"
    with pytest.raises(AlreadyVoted):
        polls.poll_vote(
            show=live_show, poll_id=poll.pk, option=2, user=None, session_key="g1"
        )
    assert poll_cards.counts_of(poll.pk, 3) == [1, 2, 1]
    assert set(PollVote.objects.values_list("voter", flat=True)) == {
        f"u:{p.pk}" for p in people
    } | {"s:g1"}
    # Only the voters' own sockets hear of each vote; the counts come later.
    private = [e for kind, _s, e in published if kind == "private"]
    assert private[0] == (
        f"user:{people[0].pk}",
        {"type": "poll.voted", "poll_id": poll.pk, "option": 1},
    )
    assert private[3] == (
        "session:g1",
        {"type": "poll.voted", "poll_id": poll.pk, "option": 0},
    )
    assert len(published) == 4


def test_a_vote_needs_an_answer_of_the_poll_and_a_voter(live_show, host, make_user):
    poll = _open(live_show, host, "Red", "Blue")
    voter = make_user("V")
    with pytest.raises(InvalidInput):
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=2, user=voter)
    with pytest.raises(InvalidInput):
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=-1, user=voter)
    with pytest.raises(LoginRequired):
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=None)
    with pytest.raises(NotFound):
        polls.poll_vote(show=live_show, poll_id=poll.pk + 99, option=0, user=voter)
    assert not PollVote.objects.exists()


def test_a_closed_poll_refuses_votes_and_the_room_gets_the_final_counts(
    live_show, host, make_user, published, django_capture_on_commit_callbacks
):
    poll = _open(live_show, host, "Red", "Blue", "Green")
    for option in (0, 2, 2):
        polls.poll_vote(
            show=live_show, poll_id=poll.pk, option=option, user=make_user()
        )
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        polls.poll_close(show=live_show, actor=host, poll_id=poll.pk)
    [(kind, _show, event)] = published
    assert kind == "persisted"
    assert event["type"] == "poll.closed"
    assert event["poll_id"] == poll.pk
    assert event["counts"] == [1, 0, 2]
    assert event["total"] == 3
    assert event["winners"] == [2]
    with pytest.raises(polls.PollClosed) as refused:
        polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=make_user())
    assert refused.value.code == "poll_closed"
    with pytest.raises(polls.PollClosed):
        polls.poll_close(show=live_show, actor=host, poll_id=poll.pk)
    assert PollVote.objects.count() == 3


def test_a_tie_has_every_leading_answer_as_winner_and_no_votes_none(
    live_show, host, make_user
):
    poll = _open(live_show, host, "Red", "Blue", "Green")
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=make_user())
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=2, user=make_user())
    polls.poll_close(show=live_show, actor=host)
    [card] = poll_cards.show_polls(show=live_show)
    assert card["winners"] == [0, 2]
    empty = _open(live_show, host)
    polls.poll_close(show=live_show, actor=host, poll_id=empty.pk)
    assert poll_cards.show_polls(show=live_show)[1]["winners"] == []


def test_the_show_ending_closes_its_open_poll(live_show, host, make_user):
    poll = _open(live_show, host)
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=make_user())
    assert polls.poll_close_for_show(show=live_show) == poll
    poll.refresh_from_db()
    assert poll.closed_at is not None
    assert polls.poll_close_for_show(show=live_show) is None


def test_ending_the_show_closes_its_open_poll_with_the_final_counts(
    live_show, host, make_user
):
    """``show_end`` closes the show's open poll too (in its transaction)."""
    poll = _open(live_show, host)
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=make_user())
    lifecycle.show_end(show=live_show)
    poll.refresh_from_db()
    assert poll.closed_at is not None
    assert live_show.status == "ended"


def test_the_results_broadcast_is_one_query_and_ephemeral(
    live_show,
    host,
    make_user,
    published,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    poll = _open(live_show, host, "Red", "Blue")
    for option in (1, 1, 0):
        polls.poll_vote(
            show=live_show, poll_id=poll.pk, option=option, user=make_user()
        )
    published.clear()
    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_num_queries(1),
    ):
        polls.poll_results_broadcast(poll_id=poll.pk)
    assert published == [
        (
            "ephemeral",
            live_show.pk,
            {"type": "poll.results", "poll_id": poll.pk, "counts": [1, 2], "total": 3},
        )
    ]
    polls.poll_close(show=live_show, actor=host)
    published.clear()
    assert polls.poll_results_broadcast(poll_id=poll.pk) is None
    assert published == []


def test_the_snapshot_part_is_one_query_with_counts_and_my_answer(
    live_show, host, make_user, django_assert_num_queries
):
    assert poll_cards.room_poll(show=live_show, user=None) == {"poll": None}
    poll = _open(live_show, host, "Red", "Blue", "Green")
    me = make_user("Me")
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=2, user=me)
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=0, user=make_user())
    with django_assert_num_queries(1):
        part = poll_cards.room_poll(show=live_show, user=me)
    card = part["poll"]
    assert card["id"] == poll.pk
    assert card["counts"] == [1, 0, 1]
    assert card["total"] == 2
    assert card["my_option"] == 2
    assert (
        poll_cards.room_poll(show=live_show, user=make_user())["poll"]["my_option"]
        is None
    )
    assert poll_cards.room_poll(show=live_show, user=None)["poll"]["my_option"] is None


def test_a_closed_poll_stays_in_the_snapshot_for_two_minutes(live_show, host):
    poll = _open(live_show, host)
    polls.poll_close(show=live_show, actor=host)
    card = poll_cards.room_poll(show=live_show, user=None)["poll"]
    assert card["status"] == "closed"
    Poll.objects.filter(pk=poll.pk).update(
        closed_at=timezone.now() - timedelta(minutes=2, seconds=1)
    )
    assert poll_cards.room_poll(show=live_show, user=None) == {"poll": None}


@pytest.mark.django_db(transaction=True)
def test_one_voter_racing_from_many_threads_is_counted_once(live_show, host):
    """Eight threads insert the same guest's vote at once on PostgreSQL: one
    goes in, the seven others are told ``already_voted`` by the constraint."""
    assert connection.vendor == "postgresql"
    poll = _open(live_show, host, "Red", "Blue")
    start = threading.Barrier(8)

    def vote(option: int) -> str:
        start.wait()
        try:
            polls.poll_vote(
                show=live_show,
                poll_id=poll.pk,
                option=option % 2,
                user=None,
                session_key="racer",
            )
            return "ok"
        except AlreadyVoted as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(vote, range(8)))
    assert sorted(answers) == ["already_voted"] * 7 + ["ok"]
    assert PollVote.objects.filter(poll=poll).count() == 1
    assert sum(poll_cards.counts_of(poll.pk, 2)) == 1


@pytest.mark.django_db(transaction=True)
def test_votes_racing_a_close_are_either_in_the_final_counts_or_refused(
    live_show, host, make_user, monkeypatch
):
    """Twenty voters and the close at once: every vote that went in is in
    ``poll.closed``'s counts, every other one was refused ``poll_closed``."""
    poll = _open(live_show, host, "Red", "Blue")
    sent: list[dict] = []
    real = events.broadcast

    def broadcast(show_id, event):
        sent.append(event)
        return real(show_id, event)

    monkeypatch.setattr(events, "broadcast", broadcast)
    voters = [make_user() for _ in range(20)]
    start = threading.Barrier(21)

    def vote(index: int) -> str:
        start.wait()
        try:
            polls.poll_vote(
                show=live_show, poll_id=poll.pk, option=index % 2, user=voters[index]
            )
            return "ok"
        except polls.PollClosed as exc:
            return exc.code
        finally:
            connection.close()

    def close() -> None:
        start.wait()
        try:
            polls.poll_close(show=live_show, actor=host)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=21) as pool:
        closing = pool.submit(close)
        answers = list(pool.map(vote, range(20)))
        closing.result()
    accepted = answers.count("ok")
    assert accepted + answers.count("poll_closed") == 20
    assert PollVote.objects.filter(poll=poll).count() == accepted
    [event] = [e for e in sent if e["type"] == "poll.closed"]
    assert event["total"] == accepted
    assert event["counts"] == poll_cards.counts_of(poll.pk, 2)


def test_the_report_lists_the_shows_polls_with_votes_and_winner(
    client, live_show, host, make_user
):
    poll = _open(live_show, host, "Red", "Blue")
    for option in (1, 1, 0):
        polls.poll_vote(
            show=live_show, poll_id=poll.pk, option=option, user=make_user()
        )
    lifecycle.show_end(show=live_show)
    polls.poll_close_for_show(show=live_show)
    client.force_login(host)
    page = client.get(f"/brand/acme/shows/{live_show.slug}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    section = html[html.index('id="report-polls"') :]
    assert "Which colour next? · 3 votes" in section
    assert (
        '<th scope="row">Blue <strong>(winner)</strong></th><td class="num">2</td>'
        in (section)
    )
    assert '<th scope="row">Red</th><td class="num">1</td>' in section


def test_the_replay_has_each_poll_at_its_moment_after_the_trim(live_show, host):
    from shows import replay

    poll = _open(live_show, host)
    polls.poll_close(show=live_show, actor=host)
    later = _open(live_show, host, "Yes", "No")
    polls.poll_close(show=live_show, actor=host)
    started = timezone.now() - timedelta(hours=1)
    live_show.started_at = started
    live_show.replay_start_seconds = 10
    Poll.objects.filter(pk=poll.pk).update(opened_at=started + timedelta(seconds=4))
    Poll.objects.filter(pk=later.pk).update(opened_at=started + timedelta(seconds=40))
    found = replay.polls(live_show)
    assert [(p["id"], p["at"]) for p in found] == [(poll.pk, 0.0), (later.pk, 30.0)]
    live_show.replay_end_seconds = 30
    assert [p["id"] for p in replay.polls(live_show)] == [poll.pk]


def test_the_host_shows_the_live_results_to_everybody_once(
    live_show, host, make_user, published, django_capture_on_commit_callbacks
):
    poll = _open(live_show, host, "Red", "Blue")
    polls.poll_vote(show=live_show, poll_id=poll.pk, option=1, user=make_user())
    assert poll_cards.room_poll(show=live_show, user=None)["poll"]["results_shown"] is (
        False
    )
    with pytest.raises(NotAHost):
        polls.poll_results_show(show=live_show, actor=make_user(), poll_id=poll.pk)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        polls.poll_results_show(show=live_show, actor=host, poll_id=poll.pk)
        polls.poll_results_show(show=live_show, actor=host)  # again: nothing
    assert [e for _k, _s, e in published] == [
        {
            "type": "poll.results_shown",
            "poll_id": poll.pk,
            "counts": [0, 1],
            "total": 1,
        }
    ]
    assert poll_cards.room_poll(show=live_show, user=None)["poll"]["results_shown"]
    polls.poll_close(show=live_show, actor=host)
    with pytest.raises(polls.PollClosed):
        polls.poll_results_show(show=live_show, actor=host, poll_id=poll.pk)
