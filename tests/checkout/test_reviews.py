"""Reviews (checkout/services/reviews.py): who may review which product and
when, once per product, blocked words, hiding, replies and featuring by
role, and the ratings the cards show."""

from __future__ import annotations

import pytest
from django.test import Client

from checkout import selectors, services
from checkout.models import Review
from checkout.order_links import order_link_token
from checkout.services import fulfilment
from checkout.services import reviews as svc
from shows import services as show_services
from shows.exceptions import NotAHost, ShowNotLive
from shows.models import BlockedWord
from shows.services.workspace import NotAllowed, NotAMember
from tests.checkout.conftest import new_key, of_type

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def buyer(make_user):
    return make_user(display_name="Noor", email="noor@example.test")


def paid_order(show, buyer, variant):
    placed = services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    services.order_pay(order=placed, buyer=buyer, method="test")
    placed.refresh_from_db()
    return placed


def delivered(order):
    fulfilment.order_ship(order=order, carrier="DHL")
    return fulfilment.order_mark_delivered(order=order)


def write(order, product, rating=5, text="Great sound.", language="en"):
    return svc.review_write(
        order=order,
        product_id=product.pk,
        rating=rating,
        text=text,
        language=language,
    )


def test_a_buyer_reviews_a_delivered_product_and_not_before(
    stripe_settings, pinned, products, mic, buyer
):
    order = paid_order(pinned, services.Buyer(user=buyer), mic)
    with pytest.raises(svc.ReviewNotAllowed):
        write(order, products[1])
    fulfilment.order_ship(order=order, carrier="DHL")
    with pytest.raises(svc.ReviewNotAllowed):
        write(order, products[1])
    assert not Review.objects.exists()
    fulfilment.order_mark_delivered(order=order)
    review = write(order, products[1], rating=4, text="Warm, clear.", language="de")
    assert (review.buyer, review.email, review.author_name) == (buyer, "", "Noor")
    assert (review.rating, review.language, review.hidden) == (4, "de", False)
    assert review.order == order


def test_a_product_without_delivery_is_reviewed_once_paid(
    stripe_settings, pinned, products, mic, buyer
):
    products[1].requires_shipping = False
    products[1].save(update_fields=["requires_shipping"])
    order = paid_order(pinned, services.Buyer(user=buyer), mic)
    assert svc.reviewable_product_ids(order) == [products[1].pk]
    assert write(order, products[1]).rating == 5


def test_a_refunded_order_and_another_product_give_no_right_to_review(
    stripe_settings, pinned, products, mic, buyer
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    with pytest.raises(svc.ReviewNotAllowed):
        write(order, products[0])  # not in the order
    order.status = "refunded"
    order.save(update_fields=["status"])
    with pytest.raises(svc.ReviewNotAllowed):
        write(order, products[1])


def test_each_product_is_reviewed_once_even_from_a_second_order(
    stripe_settings, pinned, products, mic, buyer
):
    first = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    second = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    write(first, products[1])
    with pytest.raises(svc.AlreadyReviewed):
        write(second, products[1], rating=1)
    assert Review.objects.get().rating == 5
    # The second order's page shows the review instead of a form.
    assert selectors.reviews_of_order(second)[products[1].pk].order == first


def test_rating_and_text_are_checked(stripe_settings, pinned, products, mic, buyer):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    for rating in (0, 6):
        with pytest.raises(svc.RatingInvalid):
            write(order, products[1], rating=rating)
    with pytest.raises(svc.ReviewTextInvalid):
        write(order, products[1], text="x" * 2001)
    assert not Review.objects.exists()
    assert write(order, products[1], text="x" * 2000).text == "x" * 2000


def test_another_buyer_cannot_reach_the_order_page_to_review(
    stripe_settings, pinned, products, mic, buyer, make_user
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    stranger = Client()
    stranger.force_login(make_user(display_name="Sam", email="sam@example.test"))
    answer = stranger.post(
        f"/orders/{order.public_id}/",
        {"action": "review", "product": products[1].pk, "rating": "1", "text": "x"},
    )
    assert answer.status_code == 404
    assert not Review.objects.exists()


def test_a_guest_reviews_through_the_signed_link_as_their_email(
    stripe_settings, pinned, products, mic, guest
):
    order = delivered(paid_order(pinned, guest, mic))
    path = f"/orders/link/{order_link_token(order)}/"
    page = Client().get(path)
    assert 'name="rating"' in page.content.decode()
    answer = Client().post(
        path,
        {"action": "review", "product": products[1].pk, "rating": "3", "text": "Ok."},
    )
    assert answer.status_code == 302
    review = Review.objects.get()
    assert (review.buyer, review.email, review.rating) == (None, guest.email, 3)
    again = Client().get(path).content.decode()
    assert "Ok." in again
    assert 'name="rating"' not in again


def test_the_order_page_shows_the_error_next_to_the_stars(
    stripe_settings, pinned, products, mic, buyer
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    client = Client()
    client.force_login(buyer)
    answer = client.post(
        f"/orders/{order.public_id}/",
        {"action": "review", "product": products[1].pk, "text": "No stars"},
    )
    assert answer.status_code == 400
    body = answer.content.decode()
    assert "Choose from one to five stars." in body
    assert 'aria-invalid="true"' in body
    assert not Review.objects.exists()


def test_a_blocked_word_keeps_the_review_hidden_as_the_room_does(
    stripe_settings, pinned, products, mic, buyer, brand
):
    BlockedWord.objects.create(brand=brand, word="scam")
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    review = write(order, products[1], rating=1, text="A SCAM, avoid.")
    assert review.hidden
    assert review.hidden_by is None
    assert selectors.product_ratings([products[1].pk]) == {}
    assert selectors.reviews_of_order(order)[products[1].pk] == review


def test_moderators_hide_and_unhide_and_only_hosts_and_owners_reply(
    stripe_settings, pinned, products, mic, buyer, brand, host, moderator, make_user
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    review = write(order, products[1])
    hidden = svc.review_set_hidden(
        actor=moderator, brand_id=brand.pk, review_id=review.pk, hidden=True
    )
    assert (hidden.hidden, hidden.hidden_by) == (True, moderator)
    shown = svc.review_set_hidden(
        actor=host, brand_id=brand.pk, review_id=review.pk, hidden=False
    )
    assert (shown.hidden, shown.hidden_by) == (False, None)
    with pytest.raises(NotAllowed):
        svc.review_reply(
            actor=moderator, brand_id=brand.pk, review_id=review.pk, text="Thanks"
        )
    replied = svc.review_reply(
        actor=host, brand_id=brand.pk, review_id=review.pk, text="Thank you!"
    )
    assert replied.reply == "Thank you!"
    assert replied.replied_at is not None
    with pytest.raises(NotAMember):
        svc.review_set_hidden(
            actor=buyer, brand_id=brand.pk, review_id=review.pk, hidden=True
        )
    other = show_services.brand_create(name="Other", slug="other")
    with pytest.raises(svc.ReviewNotFound):
        svc.review_set_hidden(
            actor=host, brand_id=other.pk, review_id=review.pk, hidden=True
        )
    assert not Review.objects.get().hidden


def test_ratings_count_visible_reviews_with_an_exact_average(
    stripe_settings, pinned, products, mic, make_user, brand, moderator
):
    ratings = [5, 4, 4, 5, 2]
    made = []
    for index, stars in enumerate(ratings):
        user = make_user(display_name=f"B{index}", email=f"b{index}@example.test")
        order = delivered(paid_order(pinned, services.Buyer(user=user), mic))
        made.append(write(order, products[1], rating=stars))
    rating = selectors.product_ratings([products[1].pk, products[0].pk])
    assert rating == {products[1].pk: selectors.Rating(total=20, count=5)}
    assert rating[products[1].pk].average == 4.0
    svc.review_set_hidden(
        actor=moderator, brand_id=brand.pk, review_id=made[4].pk, hidden=True
    )
    after = selectors.product_ratings([products[1].pk])[products[1].pk]
    assert (after.average, after.count) == (4.5, 4)
    assert selectors.room_ratings(show=pinned) == {
        "ratings": {str(products[1].pk): {"average": 4.5, "count": 4}}
    }


def test_the_host_features_a_review_in_the_live_room(
    stripe_settings, pinned, products, mic, buyer, host, make_user, sent
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    review = write(order, products[1], rating=5, text="Best mic. " * 40)
    with pytest.raises(NotAHost):
        svc.review_feature(show=pinned, actor=buyer, review_id=review.pk)
    svc.review_feature(show=pinned, actor=host, review_id=review.pk)
    (event,) = of_type(sent, "review.featured")
    assert event["review"]["rating"] == 5
    assert event["review"]["author"] == "Noor"
    assert event["review"]["product"] == {"id": products[1].pk, "name": "Desk Mic"}
    assert len(event["review"]["text"]) == svc.FEATURED_TEXT_MAX
    show_services.show_end(show=pinned)
    with pytest.raises(ShowNotLive):
        svc.review_feature(show=pinned, actor=host, review_id=review.pk)
    assert len(of_type(sent, "review.featured")) == 1


def test_the_workspace_lists_hides_and_replies_by_role(
    stripe_settings, pinned, products, mic, buyer, brand, host, moderator
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    review = write(order, products[1], rating=4, text="Solid.")
    url = f"/brand/{brand.slug}/reviews/"
    mod = Client()
    mod.force_login(moderator)
    page = mod.get(url).content.decode()
    assert "Solid." in page
    assert "★ 4.0 (1)" in page
    assert 'name="reply"' not in page  # moderators do not reply
    assert mod.post(f"{url}{review.pk}/", {"action": "hide"}).status_code == 302
    assert Review.objects.get().hidden_by == moderator
    mod.post(f"{url}{review.pk}/", {"action": "reply", "reply": "No"})
    assert Review.objects.get().reply == ""
    boss = Client()
    boss.force_login(host)
    boss.post(f"{url}{review.pk}/", {"action": "reply", "reply": "Thanks, Noor!"})
    assert Review.objects.get().reply == "Thanks, Noor!"
    outsider = Client()
    outsider.force_login(buyer)
    assert outsider.get(url).status_code == 404
    assert outsider.post(f"{url}{review.pk}/", {"action": "show"}).status_code == 404
    assert Review.objects.get().hidden


def test_the_studio_lists_the_lineup_ratings_and_features_with_csrf(
    stripe_settings, pinned, products, mic, buyer, host, sent
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    review = write(order, products[1], rating=5, text="Love it.")
    api = f"/brand/{pinned.brand.slug}/reviews/shows/{pinned.slug}/"
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(host)
    data = staff.get(api).json()
    assert {"id": products[1].pk, "name": "Desk Mic", "average": 5.0, "count": 1} in (
        data["lineup"]
    )
    assert [r["id"] for r in data["reviews"]] == [review.pk]
    assert staff.post(f"{api}{review.pk}/feature/").status_code == 403  # no token
    assert not of_type(sent, "review.featured")
    token = staff.get(f"/shows/{pinned.slug}/studio/").context["csrf_token"]
    answer = staff.post(f"{api}{review.pk}/feature/", HTTP_X_CSRFTOKEN=str(token))
    assert answer.status_code == 200
    assert len(of_type(sent, "review.featured")) == 1
    viewer = Client()
    viewer.force_login(buyer)
    assert viewer.get(api).status_code == 404


def test_the_room_snapshot_carries_the_lineup_ratings_in_one_query(
    stripe_settings, pinned, products, mic, buyer, django_assert_num_queries
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    write(order, products[1], rating=3)
    with django_assert_num_queries(1):
        part = selectors.room_ratings(show=pinned)
    assert part == {"ratings": {str(products[1].pk): {"average": 3.0, "count": 1}}}


def test_the_catalogues_product_page_shows_the_average_and_count(
    stripe_settings, pinned, products, mic, buyer, brand, host
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    write(order, products[1], rating=4)
    client = Client()
    client.force_login(host)
    url = f"/brand/{brand.slug}/catalogue/products/"
    assert (
        "★ 4.0 from 1 review" in client.get(f"{url}{products[1].pk}/").content.decode()
    )
    assert "No reviews yet" in client.get(f"{url}{products[0].pk}/").content.decode()


def test_the_show_pages_lineup_shows_each_products_rating(
    stripe_settings, pinned, products, mic, buyer
):
    order = delivered(paid_order(pinned, services.Buyer(user=buyer), mic))
    write(order, products[1], rating=4)
    body = Client().get(f"/shows/{pinned.slug}/").content.decode()
    assert body.count('class="lineup-rating"') == 1
    assert "★ 4.0 (1)" in body
