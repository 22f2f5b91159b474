"""Resuming a checkout after a reload: the buyer's open order, to its owner only
(``checkout/services/resume.py`` and ``GET /api/shows/<slug>/orders/open``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.utils import timezone

from checkout import services
from checkout.models import Order, StockHold
from checkout.services.resume import order_resume
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


def guest_session() -> str:
    session = SessionStore()
    session.create()
    return str(session.session_key)


def place(show, variant, buyer, quantity: int = 1):
    return services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=quantity,
        idempotency_key=new_key(),
    )


def ask(slug: str, *, session_key: str = "", user=None, query: str = ""):
    client = Client()
    if user is not None:
        client.force_login(user)
    elif session_key:
        client.cookies["sessionid"] = session_key
    return client.get(f"/api/shows/{slug}/orders/open{query}")


def test_a_guest_resumes_their_open_order_with_its_secret_and_hold(
    stripe_settings, pinned, mic
):
    """The same session gets the reserved order in the order API's shape, with
    its client secret and the hold's expiry; no second order is made."""
    session_key = guest_session()
    buyer = services.Buyer(user=None, session_key=session_key, email="g@example.test")
    placed = place(pinned, mic, buyer, quantity=2)

    answer = ask(pinned.slug, session_key=session_key, query=f"?variant_id={mic.pk}")

    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["id"] == str(placed.order.public_id)
    assert data["status"] == "reserved"
    assert data["client_secret"] == placed.client_secret
    assert data["expires_at"] == placed.expires_at.isoformat()
    assert data["lines"][0]["quantity"] == 2
    assert data["pay_url"] == f"/api/orders/{placed.order.public_id}/pay"
    assert Order.objects.count() == 1


def test_another_guest_or_a_visitor_without_a_session_gets_404(
    stripe_settings, pinned, mic
):
    """A stranger's session never sees someone else's hold."""
    session_key = guest_session()
    place(
        pinned,
        mic,
        services.Buyer(user=None, session_key=session_key, email="g@example.test"),
    )

    stranger = ask(pinned.slug, session_key=guest_session())
    nobody = ask(pinned.slug)

    for answer in (stranger, nobody):
        assert answer.status_code == 404
        assert answer.json()["code"] == "no_open_order"
        assert "client_secret" not in answer.json()


def test_a_signed_in_buyers_order_is_theirs_alone(
    stripe_settings, pinned, mic, make_user
):
    """The user who reserved gets it back; another user, and a guest session,
    get 404."""
    owner, other = make_user("Olga"), make_user("Otto")
    placed = place(pinned, mic, services.Buyer(user=owner))

    assert ask(pinned.slug, user=owner).json()["id"] == str(placed.order.public_id)
    assert ask(pinned.slug, user=other).status_code == 404
    assert ask(pinned.slug, session_key=guest_session()).status_code == 404
    assert (
        order_resume(show=pinned, user=other, session_key="", variant_id=mic.pk) is None
    )


def test_an_expired_hold_is_not_resumed_even_before_the_sweeper_runs(
    stripe_settings, pinned, mic, guest
):
    """A reservation whose hold ran out (still ``reserved`` until the sweeper
    expires it) is not offered: paying it would sell stock that is back on sale."""
    place(pinned, mic, guest)
    StockHold.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert Order.objects.get().status == Order.Status.RESERVED
    assert order_resume(show=pinned, user=None, session_key=guest.session_key) is None


def test_a_paid_or_cancelled_order_is_not_resumed(stripe_settings, pinned, mic, guest):
    """Only a reserved order waiting for a card is resumed."""
    paid = place(pinned, mic, guest)
    services.order_pay(order=paid.order, buyer=guest, method="test")
    cancelled = place(pinned, mic, guest)
    services.order_cancel(order=cancelled.order)

    assert order_resume(show=pinned, user=None, session_key=guest.session_key) is None

    open_one = place(pinned, mic, guest)
    found = order_resume(show=pinned, user=None, session_key=guest.session_key)
    assert found is not None
    assert found.order.pk == open_one.order.pk


def test_the_open_order_is_for_the_option_asked_about(
    stripe_settings, pinned, mic, products, host, guest
):
    """With ``variant_id``, an order for another option of the show is not
    resumed (the buyer is about to buy something else)."""
    from shows.services import room

    room.product_pin(show=pinned, actor=host, product_id=products[0].pk)
    headphones = products[0].variants.get()
    place(pinned, mic, guest)

    assert (
        order_resume(
            show=pinned,
            user=None,
            session_key=guest.session_key,
            variant_id=headphones.pk,
        )
        is None
    )
    assert (
        order_resume(
            show=pinned, user=None, session_key=guest.session_key, variant_id=mic.pk
        )
        is not None
    )


def test_a_malformed_variant_id_is_refused(stripe_settings, pinned):
    answer = ask(pinned.slug, session_key=guest_session(), query="?variant_id=x")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
