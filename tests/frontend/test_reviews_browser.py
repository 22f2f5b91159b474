"""Reviews in Chromium, as the issue tells it: a buyer whose order was
delivered rates the product on their order page with the keyboard, and in
the brand's next show the pinned card of that product shows the rating; the
host features the review from the studio and it appears in the room."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import services
from checkout.models import Review
from checkout.services import fulfilment
from shows import services as show_services
from shows.services import room
from tests.checkout.conftest import new_key
from tests.frontend.test_a11y import (  # noqa: F401
    axe_problems,
    axe_script,
    open_live_room,
    signed_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_a_buyer_reviews_a_delivered_product_and_the_next_show_shows_it(
    stripe_settings,
    asgi_server,
    browser,
    page,
    live_show,
    products,
    brand,
    host,
    make_user,
    axe_script,  # noqa: F811
):
    buyer = make_user(display_name="Noor", email="noor@example.test")
    mic = products[1]
    room.product_pin(show=live_show, actor=host, product_id=mic.pk)
    order = services.order_create(
        show=live_show,
        buyer=services.Buyer(user=buyer),
        variant_id=mic.variants.get().pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    services.order_pay(order=order, buyer=services.Buyer(user=buyer), method="test")
    fulfilment.order_ship(order=order, carrier="DHL")
    fulfilment.order_mark_delivered(order=order)
    show_services.show_end(show=live_show)

    # The buyer rates it five stars from the keyboard and writes a line.
    signed_in(page, asgi_server, buyer)
    page.goto(f"{asgi_server}/orders/{order.public_id}/")
    stars = page.get_by_role("group", name="Your rating")
    assert stars.get_by_role("radio").count() == 5
    problems = axe_problems(page, axe_script, "order page, review form")
    assert not problems, "\n".join(problems)
    page.get_by_role("radio", name="1 star", exact=True).focus()
    page.keyboard.press("Space")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    assert page.get_by_role("radio", name="5 stars").is_checked()
    page.get_by_label("Your review (optional)").fill("Crisp and warm, no hiss.")
    page.get_by_role("button", name="Publish review").press("Enter")
    page.get_by_text("Thank you: your review is saved.").wait_for()
    assert page.get_by_role("radio").count() == 0
    assert page.get_by_text("Crisp and warm, no hiss.").is_visible()
    review = Review.objects.get()
    assert (review.buyer_id, review.product_id, review.rating) == (buyer.pk, mic.pk, 5)

    # The brand's next show: the host pins the mic; the card shows the rating.
    next_show = show_services.show_start(
        show=show_services.show_create(
            brand=brand,
            slug="encore",
            title="Encore",
            scheduled_at=timezone.now() + timedelta(minutes=5),
            products=products,
        )
    )
    room.product_pin(show=next_show, actor=host, product_id=mic.pk)
    viewer = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    open_live_room(viewer, f"{asgi_server}/shows/{next_show.slug}/")
    card = viewer.locator(f".room-pin[data-product='{mic.pk}']")
    card.wait_for()
    assert "★ 5.0 (1)" in card.locator(".room-rating").inner_text()
    lineup = viewer.locator(f".lineup-item[data-product-id='{mic.pk}']")
    assert "★ 5.0 (1)" in lineup.locator(".lineup-rating").inner_text()
    problems = axe_problems(viewer, axe_script, "room, a rated card")
    assert not problems, "\n".join(problems)

    # The host features it from the studio's Reviews panel; the room shows it.
    studio = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    signed_in(studio, asgi_server, host)
    studio.goto(f"{asgi_server}/shows/{next_show.slug}/studio/")
    panel = studio.locator("#studio-reviews")
    panel.get_by_text("Desk Mic: ★ 5.0 (1)").wait_for()
    problems = axe_problems(studio, axe_script, "studio, reviews panel")
    assert not problems, "\n".join(problems)
    panel.get_by_role("button", name="Feature: Desk Mic, Noor").click()
    panel.get_by_text("Shown in the room.").wait_for()
    proof = viewer.locator("#room-proof")
    proof.get_by_text("Crisp and warm, no hiss.").wait_for()
    assert proof.inner_text().startswith("★★★★★")
    assert "Noor · Desk Mic" in proof.inner_text()

    # The brand's Reviews page lists it with the product's average.
    studio.goto(f"{asgi_server}/brand/{brand.slug}/reviews/")
    assert studio.get_by_text("★ 5.0 (1)").is_visible()
    assert studio.get_by_text("Crisp and warm, no hiss.").is_visible()
    problems = axe_problems(studio, axe_script, "workspace reviews")
    assert not problems, "\n".join(problems)
    viewer.context.close()
    studio.context.close()
