"""The catalogue and show services: rows, constraints and transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from shows import services
from shows.exceptions import InvalidInput, InvalidTransition, SlugTaken
from shows.models import Brand, Membership, Show, Variant

pytestmark = pytest.mark.django_db


def test_show_moves_scheduled_live_ended(show):
    assert show.status == Show.Status.SCHEDULED
    services.show_start(show=show)
    assert show.status == Show.Status.LIVE
    assert show.started_at is not None
    services.show_end(show=show)
    show.refresh_from_db()
    assert show.status == Show.Status.ENDED
    assert show.ended_at >= show.started_at


def test_ending_a_show_that_never_started_is_refused(show):
    with pytest.raises(InvalidTransition, match="scheduled cannot become ended"):
        services.show_end(show=show)
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED
    assert show.ended_at is None


def test_an_ended_show_cannot_go_live_again(live_show):
    services.show_end(show=live_show)
    with pytest.raises(InvalidTransition):
        services.show_start(show=live_show)
    live_show.refresh_from_db()
    assert live_show.status == Show.Status.ENDED


def test_duplicate_show_slug_is_refused_and_nothing_is_written(brand, show):
    with pytest.raises(SlugTaken, match="launch-night"):
        services.show_create(
            brand=brand,
            slug="launch-night",
            title="Again",
            scheduled_at=timezone.now() + timedelta(days=1),
        )
    assert Show.objects.filter(slug="launch-night").count() == 1
    assert not Show.objects.filter(title="Again").exists()


def test_negative_price_is_refused_by_service_and_database(products):
    product = products[0]
    with pytest.raises(InvalidInput, match="negative"):
        services.variant_create(
            product=product, sku="NEG", price_minor=-1, currency="EUR"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.create(
            product=product, sku="NEG2", price_minor=-5, currency="EUR"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(sku="SKU-1").update(stock_available=-1)
    assert not Variant.objects.filter(sku__startswith="NEG").exists()


def test_unknown_currency_is_refused(products):
    with pytest.raises(InvalidInput, match="ISO 4217"):
        services.variant_create(
            product=products[0], sku="X1", price_minor=100, currency="EUX"
        )


def test_one_membership_per_user_and_brand(brand, make_user):
    user = make_user()
    services.membership_set(brand=brand, user=user, role="host")
    services.membership_set(brand=brand, user=user, role="moderator")
    assert Membership.objects.get(brand=brand, user=user).role == "moderator"
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(brand=brand, user=user, role="host")


def test_lineup_refuses_products_of_another_brand(show, make_user):
    other = services.brand_create(name="Other", slug="other")
    foreign = services.product_create(brand=other, name="Foreign thing")
    with pytest.raises(InvalidInput, match="another brand"):
        services.lineup_set(show=show, products=[foreign])
    assert show.lineup.count() == 3


def test_brand_slug_is_unique(brand):
    with pytest.raises(SlugTaken):
        services.brand_create(name="Copy", slug="acme")
    assert Brand.objects.filter(slug="acme").count() == 1
