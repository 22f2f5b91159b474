"""The giveaway's public verification page (frontend/giveaways.py): the
commitment before the draw, the seed, the list and each round recomputed
after it, the JSON to check it elsewhere, and the winner's claim."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from shows.models import Giveaway, GiveawayDraw
from shows.services import giveaways as gs

pytestmark = pytest.mark.django_db


def client_of(user=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def giveaway(live_show, host):
    return gs.giveaway_start(
        show=live_show, user=host, prize="A signed vinyl", duration_seconds=60
    )


def url(show, giveaway):
    return f"/shows/{show.slug}/giveaways/{giveaway.pk}/"


def test_before_the_draw_the_page_shows_the_commitment_and_hides_the_seed(
    live_show, giveaway
):
    response = client_of().get(url(live_show, giveaway))
    assert response.status_code == 200
    page = response.content.decode()
    assert giveaway.seed_hash in page
    assert giveaway.seed not in page
    data = client_of().get(url(live_show, giveaway) + "?format=json").json()
    assert data == {
        "seed_hash": giveaway.seed_hash,
        "seed": None,
        "entries": [],
        "draws": [],
    }


def test_after_the_draw_the_json_lets_anybody_recompute_the_winner(
    live_show, giveaway, host, make_user
):
    for n in range(5):
        gs.giveaway_enter(
            show=live_show, user=make_user(f"E{n}"), giveaway_id=giveaway.pk
        )
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    data = client_of().get(url(live_show, giveaway) + "?format=json").json()
    seed = bytes.fromhex(data["seed"])
    assert hashlib.sha256(seed).hexdigest() == data["seed_hash"]
    tokens = [row["token"] for row in data["entries"]]
    assert tokens == sorted(tokens)
    message = seed + b"\n1\n" + "\n".join(tokens).encode()
    index = int.from_bytes(hashlib.sha256(message).digest(), "big") % len(tokens)
    (draw,) = data["draws"]
    assert draw["token"] == tokens[index]
    assert draw["winner"] == data["entries"][index]["name"]
    page = client_of().get(url(live_show, giveaway)).content.decode()
    assert "Matches" in page
    assert "Does not match" not in page


def test_the_winner_claims_on_the_page_and_nobody_else_can(
    live_show, giveaway, host, make_user
):
    vera, otto = make_user("Vera"), make_user("Otto")
    gs.giveaway_enter(show=live_show, user=vera, giveaway_id=giveaway.pk)
    gs.giveaway_draw(show=live_show, user=host, giveaway_id=giveaway.pk)
    assert (
        "Claim the prize"
        not in client_of(otto).get(url(live_show, giveaway)).content.decode()
    )
    refused = client_of(otto).post(url(live_show, giveaway))
    assert refused.status_code == 400
    assert "Only the winner" in refused.content.decode()
    winner = client_of(vera)
    assert "Claim the prize" in winner.get(url(live_show, giveaway)).content.decode()
    response = winner.post(url(live_show, giveaway))
    assert response.status_code == 302
    assert GiveawayDraw.objects.get(giveaway=giveaway).claimed_at is not None
    assert Giveaway.objects.get(pk=giveaway.pk).status == Giveaway.Status.CLAIMED


def test_another_shows_giveaway_is_not_found_here(live_show, giveaway, brand):
    from datetime import timedelta

    from django.utils import timezone

    from shows import services

    other = services.show_create(
        brand=brand,
        slug="other-night",
        title="Other night",
        scheduled_at=timezone.now() + timedelta(hours=1),
        products=[],
    )
    assert client_of().get(url(other, giveaway)).status_code == 404


def test_a_private_shows_giveaway_needs_the_access_code(private_live_show, host):
    giveaway = gs.giveaway_start(
        show=private_live_show, user=host, prize="Tote", duration_seconds=60
    )
    response = client_of().get(url(private_live_show, giveaway))
    assert response.status_code == 302
    assert response["Location"] == f"/shows/{private_live_show.slug}/"
