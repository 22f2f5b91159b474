"""Giveaways (shows/services/giveaways.py): the rules, the entries, and a
draw that anybody can recompute from what the room was shown."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone, translation
from django_tasks.backends.database.models import DBTaskResult

from shows.exceptions import (
    InvalidInput,
    LoginRequired,
    NotAHost,
    NotInLineup,
    ShowNotLive,
)
from shows.giveaway_cards import room_giveaway
from shows.giveaway_emails import giveaway_won_email_attempt
from shows.models import Follow, Giveaway, GiveawayDraw, GiveawayEntry
from shows.services import giveaways as gs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    """Every room event and private notice, as (kind, recipient, event), when
    its transaction commits."""
    from realtime import events

    out: list[tuple[str, str | None, dict]] = []

    def broadcast(show_id, event):
        transaction.on_commit(lambda: out.append(("room", None, event)))
        return 0

    def notify(show_id, recipient, event):
        transaction.on_commit(lambda: out.append(("private", recipient, event)))

    def ephemeral(show_id, event):
        transaction.on_commit(lambda: out.append(("ephemeral", None, event)))

    monkeypatch.setattr(events, "broadcast", broadcast)
    monkeypatch.setattr(events, "notify", notify)
    monkeypatch.setattr(events, "broadcast_ephemeral", ephemeral)
    return out


def of_type(sent, kind):
    return [event for _, _, event in sent if event["type"] == kind]


def open_giveaway(show, host, **rules):
    rules.setdefault("prize", "A signed vinyl")
    rules.setdefault("duration_seconds", 60)
    return gs.giveaway_start(show=show, user=host, **rules)


def independent_winner(seed_hex: str, round_number: int, tokens: list[str]) -> str:
    """The published method written out again, from the seed and list only."""
    remaining = sorted(tokens, key=lambda t: t.encode())
    winner = ""
    for r in range(1, round_number + 1):
        message = (
            bytes.fromhex(seed_hex)
            + b"\n"
            + str(r).encode()
            + b"\n"
            + "\n".join(remaining).encode()
        )
        index = int.from_bytes(hashlib.sha256(message).digest(), "big") % len(remaining)
        winner = remaining.pop(index)
    return winner


def test_opening_publishes_the_commitment_and_keeps_the_seed_secret(
    live_show, host, sent
):
    giveaway = open_giveaway(live_show, host, eligibility="followers")
    (started,) = of_type(sent, "giveaway.started")
    card = started["giveaway"]
    assert card["seed_hash"] == hashlib.sha256(bytes.fromhex(giveaway.seed)).hexdigest()
    assert card["seed"] is None
    assert giveaway.seed not in str(started)
    assert card["eligibility"] == "followers"
    assert card["closes_at"] - card["opened_at"] == 60_000
    assert card["verify_url"] == f"/shows/{live_show.slug}/giveaways/{giveaway.pk}/"


def test_a_viewer_cannot_open_a_giveaway_and_nothing_is_stored(
    live_show, make_user, sent
):
    with pytest.raises(NotAHost):
        open_giveaway(live_show, make_user("Vera"))
    assert not Giveaway.objects.exists()
    assert sent == []


def test_a_moderator_may_open_one_but_not_before_the_show_is_live(
    show, moderator, sent
):
    with pytest.raises(ShowNotLive):
        open_giveaway(show, moderator)
    from shows import services

    services.show_start(show=show)
    assert open_giveaway(show, moderator).created_by == moderator


def test_one_open_giveaway_per_show(live_show, host, sent):
    open_giveaway(live_show, host)
    with pytest.raises(gs.GiveawayRunning):
        open_giveaway(live_show, host, prize="Another")
    assert Giveaway.objects.count() == 1


def test_a_product_prize_must_be_in_the_line_up_and_names_the_prize(
    live_show, host, brand, sent
):
    from shows import services

    outsider = services.product_create(brand=brand, name="Not in the show")
    with pytest.raises(NotInLineup):
        open_giveaway(live_show, host, prize="", product_id=outsider.pk)
    product = live_show.lineup.first().product
    giveaway = open_giveaway(live_show, host, prize="", product_id=product.pk)
    assert giveaway.prize == product.name
    assert of_type(sent, "giveaway.started")[0]["giveaway"]["product"]["id"] == (
        product.pk
    )


def test_a_keyword_giveaway_needs_one_short_word(live_show, host, sent):
    with pytest.raises(InvalidInput):
        open_giveaway(live_show, host, entry="keyword", keyword="two words")
    giveaway = open_giveaway(live_show, host, entry="keyword", keyword="GIVE")
    assert giveaway.keyword == "GIVE"


def test_entering_tells_the_entrant_their_token_once(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host)
    viewer = make_user("Vera")
    entry = gs.giveaway_enter(show=live_show, user=viewer, giveaway_id=giveaway.pk)
    again = gs.giveaway_enter(show=live_show, user=viewer, giveaway_id=giveaway.pk)
    assert again.pk == entry.pk
    assert GiveawayEntry.objects.filter(giveaway=giveaway).count() == 1
    notices = [(who, e) for kind, who, e in sent if e["type"] == "giveaway.entered"]
    assert [who for who, _ in notices] == [f"user:{viewer.pk}"] * 2
    assert [e["token"] for _, e in notices] == [entry.token, entry.token]
    assert [e["already"] for _, e in notices] == [False, True]
    assert len(entry.token) == 16


def test_entering_refusals_have_codes_and_reasons(
    live_show, host, make_user, brand, sent
):
    followers_only = open_giveaway(live_show, host, eligibility="followers")
    viewer = make_user("Vera")
    with pytest.raises(LoginRequired):
        gs.giveaway_enter(show=live_show, user=None, giveaway_id=followers_only.pk)
    with pytest.raises(gs.NotEligible) as refused:
        gs.giveaway_enter(show=live_show, user=viewer, giveaway_id=followers_only.pk)
    assert refused.value.code == "not_eligible"
    assert "follow" in refused.value.message
    with pytest.raises(gs.NotEligible):
        gs.giveaway_enter(show=live_show, user=host, giveaway_id=followers_only.pk)
    Follow.objects.create(user=viewer, brand=brand)
    gs.giveaway_enter(show=live_show, user=viewer, giveaway_id=followers_only.pk)
    assert GiveawayEntry.objects.filter(user=viewer).exists()


def test_a_buyers_giveaway_asks_the_given_check(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host, eligibility="buyers")
    buyer, browser = make_user("Bea"), make_user("Bo")
    with pytest.raises(gs.NotEligible) as refused:
        gs.giveaway_enter(
            show=live_show, user=browser, giveaway_id=giveaway.pk, bought=lambda: False
        )
    assert "paid order" in refused.value.message
    gs.giveaway_enter(
        show=live_show, user=buyer, giveaway_id=giveaway.pk, bought=lambda: True
    )
    assert list(GiveawayEntry.objects.values_list("user", flat=True)) == [buyer.pk]


def test_entries_close_at_closes_at(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host)
    Giveaway.objects.filter(pk=giveaway.pk).update(
        opened_at=timezone.now() - timedelta(minutes=2),
        closes_at=timezone.now() - timedelta(seconds=1),
    )
    with pytest.raises(gs.GiveawayClosed) as refused:
        gs.giveaway_enter(show=live_show, user=make_user(), giveaway_id=giveaway.pk)
    assert refused.value.code == "giveaway_closed"
    assert not GiveawayEntry.objects.exists()


def enter_many(show, giveaway, make_user, n, language="en"):
    entries = []
    with translation.override(language):
        for i in range(n):
            entries.append(
                gs.giveaway_enter(
                    show=show, user=make_user(f"Entrant {i}"), giveaway_id=giveaway.pk
                )
            )
    return entries


def make_due(giveaway):
    Giveaway.objects.filter(pk=giveaway.pk).update(
        opened_at=timezone.now() - timedelta(minutes=2),
        closes_at=timezone.now() - timedelta(seconds=1),
    )


def test_the_published_seed_and_list_recompute_the_winner(
    live_show, host, make_user, sent
):
    """Only the room's events are used: the commitment from ``started``, the
    seed and the list from ``drawn``; the method is written out in this test."""
    giveaway = open_giveaway(live_show, host)
    entries = enter_many(live_show, giveaway, make_user, 7)
    make_due(giveaway)
    assert gs.giveaway_draw_due() == 1
    (started,) = of_type(sent, "giveaway.started")
    (drawn,) = of_type(sent, "giveaway.drawn")
    seed = drawn["seed"]
    assert (
        hashlib.sha256(bytes.fromhex(seed)).hexdigest()
        == (started["giveaway"]["seed_hash"])
    )
    assert drawn["seed_hash"] == started["giveaway"]["seed_hash"]
    listed = [row["token"] for row in drawn["entries"]]
    assert listed == sorted(listed)
    assert set(listed) == {entry.token for entry in entries}
    winner = independent_winner(seed, 1, listed)
    assert drawn["token"] == winner
    by_token = {row["token"]: row["name"] for row in drawn["entries"]}
    assert drawn["winner"] == by_token[winner]
    assert drawn["round"] == 1
    assert drawn["giveaway"]["seed"] == seed
    (won_to, won) = next((who, e) for _, who, e in sent if e["type"] == "giveaway.won")
    winner_entry = GiveawayEntry.objects.get(token=winner)
    assert won_to == f"user:{winner_entry.user_id}"
    assert won["claim_by"] - won["server_now"] == 600_000


def test_drawing_from_two_threads_at_once_draws_once(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host)
    enter_many(live_show, giveaway, make_user, 5)
    make_due(giveaway)
    barrier = threading.Barrier(3)
    results: list[int] = []

    def sweep():
        barrier.wait()
        try:
            results.append(gs.giveaway_draw_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 1]
    assert GiveawayDraw.objects.filter(giveaway=giveaway).count() == 1
    assert len(of_type(sent, "giveaway.drawn")) == 1


def test_the_host_may_draw_early_and_a_second_draw_is_refused(
    live_show, host, make_user, sent
):
    giveaway = open_giveaway(live_show, host)
    enter_many(live_show, giveaway, make_user, 2)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    giveaway.refresh_from_db()
    assert giveaway.status == Giveaway.Status.DRAWN
    assert giveaway.closes_at <= timezone.now()
    with pytest.raises(gs.GiveawayClosed):
        gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    with pytest.raises(NotAHost):
        gs.giveaway_draw(show=live_show, user=make_user(), giveaway_id=giveaway.pk)
    assert GiveawayDraw.objects.count() == 1


def test_the_winner_claims_and_nobody_else_can(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host)
    entries = enter_many(live_show, giveaway, make_user, 3)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    draw = GiveawayDraw.objects.get(giveaway=giveaway)
    loser = next(e.user for e in entries if e.pk != draw.entry_id)
    with pytest.raises(gs.NotTheWinner):
        gs.giveaway_claim(show=live_show, user=loser, giveaway_id=giveaway.pk)
    gs.giveaway_claim(show=live_show, user=draw.entry.user, giveaway_id=giveaway.pk)
    giveaway.refresh_from_db()
    assert giveaway.status == Giveaway.Status.CLAIMED
    (claimed,) = of_type(sent, "giveaway.claimed")
    assert claimed["winner"] == draw.entry.user.display_name
    assert claimed["giveaway"]["draws"][0]["claimed_at"] is not None
    # Nothing to redraw once claimed.
    assert gs.giveaway_draw_due(now=timezone.now() + timedelta(days=1)) == 0


def test_an_unclaimed_prize_is_drawn_again_by_the_same_method(
    live_show, host, make_user, sent
):
    giveaway = open_giveaway(live_show, host, claim_seconds=60)
    enter_many(live_show, giveaway, make_user, 4)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    first = GiveawayDraw.objects.get(giveaway=giveaway)
    with pytest.raises(gs.NothingToRedraw):
        gs.giveaway_redraw(show=live_show, user=host, giveaway_id=giveaway.pk)
    later = first.claim_by + timedelta(seconds=1)
    assert gs.giveaway_draw_due(now=later) == 1
    with pytest.raises(gs.ClaimExpired):
        gs.giveaway_claim(
            show=live_show, user=first.entry.user, giveaway_id=giveaway.pk
        )
    (drawn,) = of_type(sent, "giveaway.drawn")
    (redrawn,) = of_type(sent, "giveaway.redrawn")
    listed = [row["token"] for row in drawn["entries"]]
    assert redrawn["round"] == 2
    assert redrawn["previous"] == drawn["winner"]
    assert redrawn["token"] == independent_winner(drawn["seed"], 2, listed)
    assert redrawn["token"] != drawn["token"]
    second = GiveawayDraw.objects.get(giveaway=giveaway, round=2)
    # The host may redraw by hand once claim_by has passed.
    GiveawayDraw.objects.filter(pk=second.pk).update(
        claim_by=timezone.now() - timedelta(seconds=1)
    )
    gs.giveaway_redraw(show=live_show, user=host, giveaway_id=giveaway.pk)
    third = of_type(sent, "giveaway.redrawn")[-1]
    assert third["round"] == 3
    assert third["token"] == independent_winner(drawn["seed"], 3, listed)


def test_when_nobody_is_left_the_prize_stays_unclaimed(
    live_show, host, make_user, sent
):
    giveaway = open_giveaway(live_show, host, claim_seconds=60)
    enter_many(live_show, giveaway, make_user, 1)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    assert gs.giveaway_draw_due(now=timezone.now() + timedelta(minutes=2)) == 1
    giveaway.refresh_from_db()
    assert giveaway.status == Giveaway.Status.UNCLAIMED
    (redrawn,) = of_type(sent, "giveaway.redrawn")
    assert redrawn["winner"] is None
    assert gs.giveaway_draw_due(now=timezone.now() + timedelta(minutes=5)) == 0


def test_a_draw_without_entries_publishes_the_seed_and_no_winner(live_show, host, sent):
    giveaway = open_giveaway(live_show, host)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    (drawn,) = of_type(sent, "giveaway.drawn")
    assert drawn["winner"] is None
    assert drawn["entries"] == []
    assert drawn["seed"] == giveaway.seed
    assert of_type(sent, "giveaway.won") == []


def test_cancelling_publishes_the_seed_and_closes_entries(
    live_show, host, make_user, sent
):
    giveaway = open_giveaway(live_show, host)
    gs.giveaway_cancel(show=live_show, user=host, giveaway_id=giveaway.pk)
    (cancelled,) = of_type(sent, "giveaway.cancelled")
    assert cancelled["seed"] == giveaway.seed
    with pytest.raises(gs.GiveawayClosed):
        gs.giveaway_enter(show=live_show, user=make_user(), giveaway_id=giveaway.pk)
    with pytest.raises(gs.GiveawayClosed):
        gs.giveaway_cancel(show=live_show, user=host, giveaway_id=giveaway.pk)
    assert gs.giveaway_draw_due(now=timezone.now() + timedelta(hours=2)) == 0


def test_the_entry_count_goes_out_ephemeral(live_show, host, make_user, sent):
    giveaway = open_giveaway(live_show, host)
    enter_many(live_show, giveaway, make_user, 3)
    assert of_type(sent, "giveaway.entries") == []
    assert gs.giveaway_entries_publish(giveaway_id=giveaway.pk) == 3
    ((kind, _who, event),) = [s for s in sent if s[2]["type"] == "giveaway.entries"]
    assert kind == "ephemeral"
    assert event["count"] == 3


def test_the_snapshot_shows_the_viewer_their_token_and_later_the_list(
    live_show, host, make_user, sent, django_assert_max_num_queries
):
    assert room_giveaway(show=live_show, user=None) == {"giveaway": None}
    giveaway = open_giveaway(live_show, host)
    (entry,) = enter_many(live_show, giveaway, make_user, 1)
    with django_assert_max_num_queries(1):
        part = room_giveaway(show=live_show, user=entry.user)["giveaway"]
    assert part["my_token"] == entry.token
    assert part["entry_count"] == 1
    assert part["seed"] is None
    assert part["entries"] is None
    assert room_giveaway(show=live_show, user=None)["giveaway"]["my_token"] is None
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    part = room_giveaway(show=live_show, user=entry.user)["giveaway"]
    assert part["entries"] == [{"token": entry.token, "name": "Entrant 0"}]
    assert part["winner"] == "Entrant 0"
    assert part["seed"] == giveaway.seed


def test_the_winner_gets_an_email_in_the_language_they_entered_in(
    live_show, host, make_user, sent, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    giveaway = open_giveaway(live_show, host)
    (entry,) = enter_many(live_show, giveaway, make_user, 1, language="de")
    assert entry.language == "de"
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    draw = GiveawayDraw.objects.get(giveaway=giveaway)
    (task,) = DBTaskResult.objects.filter(status="READY")
    assert task.task_path == "shows.giveaway_emails.giveaway_won_email_deliver"
    assert task.args_kwargs["kwargs"] == {"draw_id": draw.pk}
    assert giveaway_won_email_attempt(draw_id=draw.pk) == "sent"
    (message,) = mail.outbox
    assert message.to == [entry.user.email]
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    assert '<html lang="de">' in html
    assert f"/shows/{live_show.slug}/giveaways/{giveaway.pk}/" in message.body
    assert entry.token in message.body
    gs.giveaway_claim(show=live_show, user=entry.user, giveaway_id=giveaway.pk)
    assert giveaway_won_email_attempt(draw_id=draw.pk) == "skipped"


def test_entries_racing_the_draw_are_in_the_published_list_or_refused(
    live_show, host, make_user, sent
):
    """Twelve entrants and the draw at once: every entry that went in is in
    the list the draw published, and every other entrant was told it closed."""
    giveaway = open_giveaway(live_show, host)
    people = [make_user(f"Racer {n}") for n in range(12)]
    barrier = threading.Barrier(len(people) + 1)
    outcomes: dict[int, str] = {}

    def enter(person):
        barrier.wait()
        try:
            gs.giveaway_enter(show=live_show, user=person, giveaway_id=giveaway.pk)
            outcomes[person.pk] = "in"
        except gs.GiveawayClosed:
            outcomes[person.pk] = "closed"
        finally:
            connection.close()

    def draw():
        barrier.wait()
        try:
            gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=enter, args=(p,)) for p in people]
    threads.append(threading.Thread(target=draw))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (drawn,) = of_type(sent, "giveaway.drawn")
    listed = {row["token"] for row in drawn["entries"]}
    stored = set(GiveawayEntry.objects.values_list("token", flat=True))
    assert listed == stored
    entered = {pk for pk, outcome in outcomes.items() if outcome == "in"}
    assert entered == set(GiveawayEntry.objects.values_list("user", flat=True))
    assert len(outcomes) == len(people)
