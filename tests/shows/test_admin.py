"""The admin goes through the services: creation, status actions, CSV upload."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from shows import services
from shows.models import Brand, LineupItem, Membership, Product, Show, Variant

pytestmark = pytest.mark.django_db


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def show_form(brand, slug="admin-show", products=(), **extra) -> dict:
    when = timezone.now() + timedelta(days=2)
    return {
        "brand": str(brand.pk),
        "slug": slug,
        "title": "Made in the admin",
        "description": "",
        "scheduled_at_0": when.strftime("%Y-%m-%d"),
        "scheduled_at_1": when.strftime("%H:%M:%S"),
        "access_code": "",
        **inline(
            "lineup",
            [
                {"product": str(p.pk), "position": str(i)}
                for i, p in enumerate(products)
            ],
        ),
        **extra,
    }


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_admin_creates_a_show_with_its_lineup(admin_client, brand, products):
    """A show added in the admin is scheduled, with the line-up in order."""
    response = admin_client.post(
        reverse("admin:shows_show_add"),
        show_form(brand, products=[products[1], products[0]]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    show = Show.objects.get(slug="admin-show")
    assert show.status == Show.Status.SCHEDULED
    assert [i.product for i in show.lineup.all()] == [products[1], products[0]]


def test_admin_refuses_a_duplicate_show_slug(admin_client, brand, show):
    """A taken slug is a form error and nothing is written."""
    response = admin_client.post(
        reverse("admin:shows_show_add"), show_form(brand, slug=show.slug)
    )
    assert response.status_code == 200
    assert "Show with this Slug already exists." in response.content.decode()
    assert Show.objects.count() == 1


def test_admin_refuses_a_lineup_product_of_another_brand(admin_client, brand):
    """The line-up only takes the show's brand's products."""
    other = services.brand_create(name="Other", slug="other")
    foreign = services.product_create(brand=other, name="Foreign")
    response = admin_client.post(
        reverse("admin:shows_show_add"), show_form(brand, products=[foreign])
    )
    assert response.status_code == 200
    assert "belongs to another brand" in response.content.decode()
    assert not Show.objects.exists()
    assert not LineupItem.objects.exists()


def test_admin_cannot_edit_the_status_directly(admin_client, show):
    """The status field is read-only: a posted status is ignored."""
    data = show_form(show.brand, slug=show.slug, status="ended")
    data.update(inline("lineup", [], initial=0))
    data["title"] = "Renamed"
    data.pop("brand")
    response = admin_client.post(
        reverse("admin:shows_show_change", args=[show.pk]), data
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    show.refresh_from_db()
    assert show.title == "Renamed"
    assert show.status == Show.Status.SCHEDULED


def test_end_action_on_a_scheduled_show_reports_the_invalid_transition(
    admin_client, show
):
    """Ending a show that never started is refused with an error message."""
    response = admin_client.post(
        reverse("admin:shows_show_changelist"),
        {"action": "end_shows", "_selected_action": [str(show.pk)]},
        follow=True,
    )
    texts = messages_of(response)
    assert any("scheduled cannot become ended" in t for t in texts), texts
    assert any(m.level_tag == "error" for m in response.context["messages"])
    show.refresh_from_db()
    assert show.status == Show.Status.SCHEDULED


def test_start_then_end_actions_move_the_show(admin_client, show):
    """Start makes the show live, End ends it, both through the services."""
    url = reverse("admin:shows_show_changelist")
    admin_client.post(url, {"action": "start_shows", "_selected_action": [show.pk]})
    show.refresh_from_db()
    assert show.status == Show.Status.LIVE
    assert show.started_at is not None
    admin_client.post(url, {"action": "end_shows", "_selected_action": [show.pk]})
    show.refresh_from_db()
    assert show.status == Show.Status.ENDED


def test_admin_refuses_a_negative_price_and_writes_nothing(admin_client, brand):
    """A negative price in the variant inline is a form error; no product."""
    data = {
        "brand": str(brand.pk),
        "name": "Lamp",
        "slug": "lamp",
        "description": "",
        "image_url": "",
        **inline(
            "variants",
            [
                {
                    "sku": "LAMP-1",
                    "name": "",
                    "price_minor": "-100",
                    "currency": "EUR",
                    "stock_available": "3",
                }
            ],
        ),
    }
    response = admin_client.post(reverse("admin:shows_product_add"), data)
    assert response.status_code == 200
    assert "A price cannot be negative." in response.content.decode()
    assert not Product.objects.filter(slug="lamp").exists()
    assert not Variant.objects.filter(sku="LAMP-1").exists()
    data["variants-0-price_minor"] = "2500"
    data["variants-0-currency"] = "eur"
    response = admin_client.post(reverse("admin:shows_product_add"), data)
    assert response.status_code == 302
    variant = Variant.objects.get(sku="LAMP-1")
    assert (variant.price_minor, variant.currency) == (2500, "EUR")


def test_admin_creates_a_brand_with_memberships(admin_client, make_user):
    """Memberships are added through the service, one per user and brand."""
    user = make_user()
    data = {
        "name": "New brand",
        "slug": "new-brand",
        "description": "Hi",
        **inline("memberships", [{"user": str(user.pk), "role": "host"}]),
    }
    response = admin_client.post(reverse("admin:shows_brand_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    brand = Brand.objects.get(slug="new-brand")
    assert brand.description == "Hi"
    assert Membership.objects.get(brand=brand, user=user).role == "host"


def test_catalog_upload_with_an_invalid_row_lists_lines_and_writes_nothing(
    admin_client, brand
):
    """The upload page lists every bad line and imports nothing."""
    csv = (
        "product_slug,product_name,sku,variant_name,price,currency,stock\n"
        "mug,Mug,MUG-1,,4.50,EUR,3\n"
        "mug,Mug,MUG-2,,-1,EUR,3\n"
    )
    url = reverse("admin:shows_brand_import_catalog", args=[brand.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"file": SimpleUploadedFile("c.csv", csv.encode(), "text/csv")}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Line 3" in page
    assert "price cannot be negative" in page
    assert not Product.objects.filter(brand=brand).exists()


def test_catalog_upload_imports_a_valid_file(admin_client, brand):
    """A valid UTF-8 file with a BOM is imported and reported."""
    csv = (
        "\ufeffproduct_slug,product_name,sku,variant_name,price,currency,stock\n"
        "mug,Mug,MUG-1,,4.50,EUR,3\n"
    )
    url = reverse("admin:shows_brand_import_catalog", args=[brand.pk])
    response = admin_client.post(
        url,
        {"file": SimpleUploadedFile("c.csv", csv.encode(), "text/csv")},
        follow=True,
    )
    assert any("Variants: 1 created" in t for t in messages_of(response))
    assert Variant.objects.get(sku="MUG-1").price_minor == 450


def test_catalog_upload_refuses_non_utf8(admin_client, brand):
    """A Latin-1 file is refused with a hint to export UTF-8."""
    url = reverse("admin:shows_brand_import_catalog", args=[brand.pk])
    data = "product_slug\nCafé\n".encode("latin-1")
    response = admin_client.post(
        url, {"file": SimpleUploadedFile("c.csv", data, "text/csv")}
    )
    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()


def test_catalog_upload_needs_change_permission(client, brand, make_user):
    """Staff without permission on brands cannot upload."""
    user = make_user()
    user.is_staff = True
    user.save()
    client.force_login(user)
    url = reverse("admin:shows_brand_import_catalog", args=[brand.pk])
    assert client.get(url).status_code == 403


def test_brand_admin_sets_blocked_words(admin_client, brand):
    """Blocked words typed one per line are stored trimmed and lower-cased."""
    data = {
        "name": brand.name,
        "slug": brand.slug,
        "description": "",
        "blocked_words": "  Spam \nCHEAP pills\n\n",
        **inline("memberships", []),
    }
    response = admin_client.post(
        reverse("admin:shows_brand_change", args=[brand.pk]), data
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert sorted(brand.blocked_words.values_list("word", flat=True)) == [
        "cheap pills",
        "spam",
    ]


def test_restriction_admin_lifts_a_ban_and_cannot_edit(admin_client, show, make_user):
    """Restrictions are listed read-only; the Lift action ends them."""
    from shows.models import Restriction

    user = make_user()
    ban = Restriction.objects.create(brand=show.brand, user=user, kind="ban")
    change = reverse("admin:shows_restriction_change", args=[ban.pk])
    assert admin_client.post(change, {"kind": "timeout"}).status_code == 403
    admin_client.post(
        reverse("admin:shows_restriction_changelist"),
        {"action": "lift", "_selected_action": [ban.pk]},
    )
    ban.refresh_from_db()
    assert ban.lifted_at is not None


def test_editing_a_price_in_the_admin_keeps_the_stock_sold_meanwhile(
    admin_client, products
):
    """The page showed 10 in stock; 3 sold before it was saved with a new
    price: the price changes and 7 stay in stock. A stock figure the person
    typed is written as typed."""
    mic = products[1]
    variant = Variant.objects.get(product=mic)
    url = reverse("admin:shows_product_change", args=[mic.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="initial-variants-0-stock_available" value="10"' in page
    row = {
        "id": str(variant.pk),
        "product": str(mic.pk),
        "sku": variant.sku,
        "name": variant.name,
        "price_minor": "7900",
        "currency": "EUR",
        "stock_available": "10",
    }
    data = {
        "brand": str(mic.brand_id),
        "name": mic.name,
        "slug": mic.slug,
        "description": "",
        "image_url": "",
        **inline("variants", [row], initial=1),
        "initial-variants-0-stock_available": "10",  # what the page showed
    }
    Variant.objects.filter(pk=variant.pk).update(stock_available=7)  # sales

    assert admin_client.post(url, data).status_code == 302
    variant.refresh_from_db()
    assert (variant.price_minor, variant.stock_available) == (7900, 7)

    data["variants-0-stock_available"] = "20"
    data["initial-variants-0-stock_available"] = "7"
    assert admin_client.post(url, data).status_code == 302
    variant.refresh_from_db()
    assert variant.stock_available == 20
