"""Comment to buy: a pinned product's keyword typed in the chat holds one
unit for the viewer as a reserved order (checkout.services.claims)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from checkout import claim_cards, services
from checkout.models import Order, StockHold
from checkout.services.claims import ClaimRefused, claim_from_chat
from shows import attribution
from shows.exceptions import NotAHost, NotInLineup
from shows.models import LineupItem, User, Variant
from shows.services import claim_keywords, room
from shows.services.claim_keywords import KeywordInvalid, claim_keyword_set
from tests.checkout.conftest import of_type

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sold(pinned, products, host):
    """The live show with "Desk Mic" pinned and claimed by typing SOLD."""
    claim_keyword_set(
        show=pinned, actor=host, product_id=products[1].pk, keyword="SOLD"
    )
    return pinned


@pytest.fixture
def viewer(make_user):
    return make_user("Ana")


@pytest.fixture
def tee(brand, live_show, host):
    """A pinned T-shirt in three options, claimed with +1."""
    from shows import services as show_services

    product = show_services.product_create(brand=brand, name="Tee")
    for sku, name, stock in [
        ("TEE-RS", "Red / S", 3),
        ("TEE-RM", "Red / M", 3),
        ("TEE-BS", "Blue / S", 3),
        ("TEE-RO", "Rosé / L", 1),
    ]:
        show_services.variant_create(
            product=product,
            sku=sku,
            name=name,
            price_minor=2500,
            currency="EUR",
            stock_available=stock,
        )
    LineupItem.objects.create(show=live_show, product=product, position=9)
    room.product_pin(show=live_show, actor=host, product_id=product.pk)
    claim_keyword_set(show=live_show, actor=host, product_id=product.pk, keyword="+1")
    return product


def refusal(show, user, text) -> ClaimRefused:
    with pytest.raises(ClaimRefused) as caught:
        claim_from_chat(show=show, user=user, text=text)
    return caught.value


def test_the_keyword_holds_one_unit_as_a_reserved_order_from_the_comment(
    sold, viewer, mic, stripe_settings, sent
):
    """One unit off the stock into a hold, the order reserved with the source
    ``comment``; the room hears ``claim.made`` with the claimer's name and the
    claimer ``claim.held`` with the total in every language and the hold's end."""
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    assert claim is not None
    order = Order.objects.get()
    assert order == claim.order
    assert (order.status, order.source, order.buyer) == ("reserved", "comment", viewer)
    hold = StockHold.objects.get(order=order)
    assert (hold.status, hold.quantity, hold.variant_id) == ("held", 1, mic.pk)
    mic.refresh_from_db()
    assert mic.stock_available == 9
    (made,) = of_type(sent, "claim.made")
    assert made["name"] == "Ana"
    assert made["product"] == "Desk Mic"
    assert made["variant"] == ""
    (held,) = of_type(sent, "claim.held")
    assert held["order_id"] == str(order.public_id)
    assert held["amount_minor"] == 8900
    assert held["amount"]["en"] == "€89.00"
    assert held["amount"]["de"] == "89,00\xa0€"
    assert held["expires_at"] == int(hold.expires_at.timestamp() * 1000)
    assert held["saved_card"] is None
    (target,) = [t for kind, t, e in sent if e["type"] == "claim.held"]
    assert target == f"user:{viewer.pk}"


@pytest.mark.parametrize("text", ["sold", "Sold!", "  SOLD please", "sóld"])
def test_the_keyword_is_the_first_word_with_case_accents_and_punctuation_ignored(
    sold, viewer, stripe_settings, text
):
    assert claim_from_chat(show=sold, user=viewer, text=text) is not None
    assert Order.objects.filter(source="comment").count() == 1


@pytest.mark.parametrize("text", ["I sold mine", "SOLDOUT", "hello", "!!!"])
def test_a_message_that_does_not_start_with_the_keyword_is_only_chat(
    sold, viewer, text
):
    assert claim_from_chat(show=sold, user=viewer, text=text) is None
    assert not Order.objects.exists()


def test_the_keyword_of_a_product_that_is_not_pinned_claims_nothing(
    sold, viewer, products, host, mic
):
    room.product_unpin(show=sold, actor=host, product_id=products[1].pk)
    refused = refusal(sold, viewer, "SOLD")
    assert refused.code == "not_pinned"
    assert "Desk Mic" in refused.message
    assert not Order.objects.exists()
    mic.refresh_from_db()
    assert mic.stock_available == 10


def test_the_brands_staff_typing_the_keyword_claim_nothing(sold, host, moderator):
    assert claim_from_chat(show=sold, user=host, text="SOLD") is None
    assert claim_from_chat(show=sold, user=moderator, text="SOLD") is None
    assert not Order.objects.exists()


def test_sold_sold_makes_one_hold_and_the_second_is_told_which(
    sold, viewer, mic, stripe_settings, sent
):
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    refused = refusal(sold, viewer, "sold")
    assert refused.code == "already_claimed"
    assert refused.order_id == str(claim.order.public_id)
    assert Order.objects.count() == 1
    mic.refresh_from_db()
    assert mic.stock_available == 9
    assert len(of_type(sent, "claim.made")) == 1


def test_a_sold_out_product_is_refused_sold_out(sold, viewer, mic):
    Variant.objects.filter(pk=mic.pk).update(stock_available=0)
    assert refusal(sold, viewer, "SOLD").code == "sold_out"
    assert not Order.objects.exists()


def test_a_show_that_ended_takes_no_claims(sold, viewer):
    from shows import services as show_services

    show_services.show_end(show=sold)
    assert refusal(sold, viewer, "SOLD").code == "show_not_live"


@pytest.mark.parametrize(
    ("text", "variant"),
    [
        ("+1 blue", "Blue / S"),
        ("+1 RED m", "Red / M"),
        ("+1 m red", "Red / M"),
        ("+1 rose", "Rosé / L"),
        ("+1 Red / M", "Red / M"),
        ("+1 l!", "Rosé / L"),
    ],
)
def test_a_variant_word_after_the_keyword_chooses_the_option(
    tee_show, viewer, stripe_settings, text, variant
):
    """Colours and sizes, whole names, any order, case and accents ignored."""
    claim = claim_from_chat(show=tee_show.lineup_show, user=viewer, text=text)
    assert claim is not None
    assert claim.order.lines.get().variant_name == variant
    assert claim.card["variant"]["name"] == variant


@pytest.fixture
def tee_show(tee, live_show):
    tee.lineup_show = live_show
    return tee


def test_several_options_and_no_variant_word_is_refused_with_the_options(
    tee_show, viewer
):
    refused = refusal(tee_show.lineup_show, viewer, "+1")
    assert refused.code == "variant_required"
    for option in ("Red / S", "Red / M", "Blue / S", "Rosé / L"):
        assert option in refused.message
    assert "+1" in refused.message
    assert not Order.objects.exists()


def test_a_word_that_names_no_option_is_refused_with_the_options(tee_show, viewer):
    refused = refusal(tee_show.lineup_show, viewer, "+1 green")
    assert refused.code == "no_variant_match"
    assert "green" in refused.message
    assert "Blue / S" in refused.message
    assert refusal(tee_show.lineup_show, viewer, "+1 blue m").code == (
        "no_variant_match"
    )


def test_with_just_one_option_in_stock_the_keyword_alone_holds_that_one(
    tee_show, viewer, make_user, stripe_settings
):
    Variant.objects.filter(product=tee_show).exclude(name="Red / M").update(
        stock_available=0
    )
    claim = claim_from_chat(show=tee_show.lineup_show, user=viewer, text="+1")
    assert claim.order.lines.get().variant_name == "Red / M"
    other = make_user("Bo")
    claim = claim_from_chat(show=tee_show.lineup_show, user=other, text="+1 red")
    assert claim.order.lines.get().variant_name == "Red / M"


def test_a_shared_keyword_claims_the_product_pinned_last(
    sold, viewer, products, host, stripe_settings
):
    room.product_pin(show=sold, actor=host, product_id=products[0].pk)
    claim_keyword_set(show=sold, actor=host, product_id=products[0].pk, keyword="sold")
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    assert claim.order.lines.get().product_name == "Studio Headphones"


def test_a_claim_that_expires_gives_its_unit_back_and_the_viewer_may_claim_again(
    sold, viewer, mic, stripe_settings
):
    """The sweeper's expiry service ends the hold as any other."""
    first = claim_from_chat(show=sold, user=viewer, text="SOLD").order
    StockHold.objects.filter(order=first).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.order_expire_due() == 1
    first.refresh_from_db()
    assert first.status == "expired"
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert claim_cards.open_claims(show=sold, user=viewer) == []
    second = claim_from_chat(show=sold, user=viewer, text="SOLD").order
    assert second.pk != first.pk
    assert second.status == "reserved"


def test_a_sales_per_buyer_limit_counts_claims(
    sold, viewer, products, host, stripe_settings
):
    """A paid claim makes room for the next one, within the sale's limit."""
    services.sale_start(
        show=sold,
        user=host,
        product_id=products[1].pk,
        price_minor=4900,
        duration_seconds=60,
        per_buyer_limit=1,
    )
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    assert claim.card["amount"]["en"] == "€49.00"
    buyer = services.Buyer(user=viewer)
    assert (
        services.order_pay(order=claim.order, buyer=buyer, method="test").outcome
        == "paid"
    )
    assert refusal(sold, viewer, "SOLD").code == "over_limit"


def test_the_snapshot_part_lists_the_keywords_and_the_viewers_held_claims(
    sold, viewer, make_user, products, stripe_settings
):
    anonymous = claim_cards.room_claims(show=sold, user=None)["claim"]
    assert anonymous["keywords"] == [{"product_id": products[1].pk, "keyword": "SOLD"}]
    assert anonymous["mine"] == []
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    mine = claim_cards.room_claims(show=sold, user=viewer)["claim"]["mine"]
    assert [card["order_id"] for card in mine] == [str(claim.order.public_id)]
    other = claim_cards.room_claims(show=sold, user=make_user("Bo"))["claim"]
    assert other["mine"] == []


def test_a_show_without_keywords_has_no_claim_in_its_snapshot(live_show, viewer):
    assert claim_cards.room_claims(show=live_show, user=viewer) == {"claim": None}


def test_only_the_brands_staff_set_keywords(live_show, products, viewer, moderator):
    with pytest.raises(NotAHost):
        claim_keyword_set(
            show=live_show, actor=viewer, product_id=products[1].pk, keyword="SOLD"
        )
    item = claim_keyword_set(
        show=live_show, actor=moderator, product_id=products[1].pk, keyword="+1"
    )
    assert item.claim_keyword == "+1"


def test_a_keyword_is_one_short_word_of_a_line_up_product(
    live_show, products, host, brand, sent
):
    from shows import services as show_services

    for bad in ("two words", "x" * 21, "!!!"):
        with pytest.raises(KeywordInvalid):
            claim_keyword_set(
                show=live_show, actor=host, product_id=products[1].pk, keyword=bad
            )
    stray = show_services.product_create(brand=brand, name="Not shown")
    with pytest.raises(NotInLineup):
        claim_keyword_set(
            show=live_show, actor=host, product_id=stray.pk, keyword="SOLD"
        )
    claim_keyword_set(
        show=live_show, actor=host, product_id=products[1].pk, keyword=" SOLD "
    )
    claim_keyword_set(show=live_show, actor=host, product_id=products[1].pk, keyword="")
    assert [e["keyword"] for e in of_type(sent, "claim.keyword")] == ["SOLD", ""]
    assert LineupItem.objects.get(product=products[1]).claim_keyword == ""


def test_option_words_split_a_variant_name_into_its_options():
    assert claim_keywords.option_words("Rosé / XL") == {"rose / xl", "rose", "xl"}
    assert claim_keywords.chat_words("Sold!  Red, M extra more").rest == (
        "red",
        "m",
        "extra",
    )


def test_claims_are_their_own_source_in_the_traffic_report():
    assert attribution.kind_of("comment") == "comment"
    assert "chat" in attribution.label_of("comment")


@pytest.mark.slow
def test_200_keyword_claims_for_5_units_make_exactly_5_holds(
    postgres, sold, mic, stripe_settings, settings
):
    """200 viewers type the keyword at once from 16 threads on PostgreSQL:
    exactly 5 holds, every other claimer refused ``sold_out``, each told."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0
    Variant.objects.filter(pk=mic.pk).update(stock_available=5)
    users = User.objects.bulk_create(
        User(
            username=f"claimer{n}@example.test",
            email=f"claimer{n}@example.test",
            display_name=f"Claimer {n}",
        )
        for n in range(200)
    )

    def claim(user: User) -> tuple[str, str]:
        try:
            made = claim_from_chat(show=sold, user=user, text="sold")
            return ("held", str(made.order.public_id)) if made else ("none", "")
        except ClaimRefused as refused:
            return refused.code, ""
        except Exception as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(claim, users))
    kinds = [kind for kind, _ in outcomes]
    assert kinds.count("held") == 5, [o for o in outcomes if o[0] == "error"][:3]
    assert kinds.count("sold_out") == 195
    mic.refresh_from_db()
    assert mic.stock_available == 0
    held = StockHold.objects.filter(status="held", variant=mic)
    assert held.count() == 5
    assert Order.objects.filter(source="comment").count() == 5
    assert {str(h.order.public_id) for h in held} == {r for k, r in outcomes if r}


def test_the_snapshot_part_reads_one_query_and_a_few_more_for_a_claimer(
    sold, viewer, stripe_settings, django_assert_num_queries
):
    """The room snapshot is a hot path: the keywords in one query, the
    viewer's claims in one more, their cards (lines, options, card) in four."""
    with django_assert_num_queries(1):
        claim_cards.room_claims(show=sold, user=None)
    with django_assert_num_queries(2):
        claim_cards.room_claims(show=sold, user=viewer)
    claim_from_chat(show=sold, user=viewer, text="SOLD")
    with django_assert_num_queries(6):
        claim_cards.room_claims(show=sold, user=viewer)


def test_a_posted_product_is_claimed_to_the_saved_address_with_its_shipping(
    sold, viewer, brand, stripe_settings, sent
):
    """Where the brand delivers, the claim uses the viewer's saved address and
    the card's amount includes shipping; without a saved address it is
    refused, saying how to give one."""
    from checkout.addresses import address_clean
    from checkout.models import OrderAddress
    from checkout.services import delivery

    delivery.shipping_zone_set(
        brand=brand, name="Europe", countries=["DE"], rate_minor=490, currency="EUR"
    )
    refused = refusal(sold, viewer, "SOLD")
    assert refused.code == "address_required"
    assert "Buy" in refused.message
    delivery.saved_address_set(
        user=viewer,
        address=address_clean(
            {
                "name": "Ana Vogel",
                "line1": "Torstraße 1",
                "postal_code": "10119",
                "city": "Berlin",
                "country": "DE",
            }
        ),
    )
    claim = claim_from_chat(show=sold, user=viewer, text="SOLD")
    assert claim.order.total_minor == 8900 + 490
    assert claim.card["amount"]["en"] == "€93.90"
    assert OrderAddress.objects.get(order=claim.order).city == "Berlin"


def test_a_viewer_holding_one_is_told_so_before_words_or_stock(
    tee_show, viewer, stripe_settings
):
    """The second "+1" of a viewer who holds a Tee says they hold one, not
    that the options need naming or that it sold out meanwhile."""
    claim = claim_from_chat(show=tee_show.lineup_show, user=viewer, text="+1 blue")
    Variant.objects.filter(product=tee_show).update(stock_available=0)
    for text in ("+1", "+1 red", "+1 blue"):
        refused = refusal(tee_show.lineup_show, viewer, text)
        assert refused.code == "already_claimed"
        assert refused.order_id == str(claim.order.public_id)
