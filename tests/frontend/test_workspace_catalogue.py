"""The workspace's catalogue pages through Django's test client: owners and
hosts manage it, moderators are refused (403), members of another brand find
nothing (404); bad input comes back with its message next to the field and
nothing half-saved; a stock edit keeps the units sold between the form's GET
and its POST; a CSV import shows its preview and writes only when confirmed."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import Client
from django.urls import reverse
from PIL import Image

from frontend import workspace_catalogue_urls
from shows import services
from shows.models import AuditEntry, Product, Variant

pytestmark = pytest.mark.django_db

HEADER = "product_slug,product_name,sku,variant_name,price,currency,stock\n"


def png(size: tuple[int, int] = (48, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sell(variant: Variant, quantity: int) -> None:
    assert Variant.objects.filter(pk=variant.pk, stock_available__gte=quantity).update(
        stock_available=F("stock_available") - quantity
    )


def field_error(html: str, field_id: str) -> str:
    """The text of the error list rendered for the field ``field_id``."""
    found = re.search(rf'<ul class="errorlist" id="{field_id}_error">(.*?)</ul>', html)
    assert found, f"no error next to {field_id}"
    return re.sub(r"<[^>]+>", " ", found.group(1)).strip()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    services.membership_set(brand=brand, user=user, role="owner")
    return user


@pytest.fixture
def mic(products) -> Variant:
    return products[1].variants.get()


def catalogue_urls(product: Product, variant: Variant, slug: str = "acme") -> list[str]:
    """Every catalogue URL, with ids filled in (walks the URL module, so a page
    added there is checked too)."""
    kwargs = {"product_id": product.pk, "variant_id": variant.pk}
    urls = []
    for pattern in workspace_catalogue_urls.urlpatterns:
        wanted = {k: kwargs[k] for k in pattern.pattern.converters}
        urls.append(reverse(pattern.name, kwargs={"slug": slug, **wanted}))
    return urls


# --- Who may -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["host", "owner"])
def test_owners_and_hosts_see_products_with_price_and_stock(
    role, host, owner, products
):
    client = client_for(host if role == "host" else owner)
    response = client.get("/brand/acme/catalogue/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Desk Mic" in html
    assert "€89.00" in html
    assert "10 in stock" in html
    assert "Sold out" in html  # the cable
    assert 'aria-current="page">Catalogue<' in html


def test_a_moderator_is_refused_every_catalogue_page_and_action(
    moderator, products, mic
):
    client = client_for(moderator)
    for url in catalogue_urls(products[0], mic):
        assert client.get(url).status_code in {403, 405}, url
        assert client.post(url, {}).status_code in {403, 405}, url
    response = client.post(
        f"/brand/acme/catalogue/variants/{mic.pk}/",
        {
            f"v{mic.pk}-sku": mic.sku,
            f"v{mic.pk}-price": "1.00",
            f"v{mic.pk}-currency": "EUR",
            f"v{mic.pk}-stock": "0",
            f"v{mic.pk}-stock_seen": "10",
        },
    )
    assert response.status_code == 403
    mic.refresh_from_db()
    assert (mic.price_minor, mic.stock_available) == (8900, 10)


def test_a_member_of_another_brand_finds_no_catalogue(make_user, products, mic):
    stranger = make_user("Sam Stranger")
    services.brand_create(name="Other", slug="other", owner=stranger)
    client = client_for(stranger)
    for url in catalogue_urls(products[0], mic):
        # Not even a 405: the method says nothing to an outsider.
        assert client.get(url).status_code == 404, url
        assert client.post(url, {}).status_code == 404, url
    # Nor through their own brand's address.
    for url in catalogue_urls(products[0], mic, slug="other")[2:5]:
        assert client.post(url, {}).status_code == 404, url


def test_a_signed_out_visitor_is_sent_to_log_in(products):
    response = Client().get("/brand/acme/catalogue/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/brand/acme/catalogue/")


# --- Products and variants ----------------------------------------------------------


def test_a_host_adds_a_product_with_an_image_and_a_variant_in_major_units(
    host, brand, media
):
    client = client_for(host)
    response = client.post(
        "/brand/acme/catalogue/products/new/",
        {
            "name": "Field Recorder",
            "description": "Four tracks.",
            "requires_shipping": "on",
            "image": SimpleUploadedFile("recorder.png", png(), "image/png"),
        },
    )
    product = Product.objects.get(brand=brand, name="Field Recorder")
    assert response.status_code == 302
    assert response["Location"] == f"/brand/acme/catalogue/products/{product.pk}/"
    response = client.post(
        f"/brand/acme/catalogue/products/{product.pk}/variants/",
        {
            "new-name": "Black",
            "new-sku": "REC-1",
            "new-price": "89.00",
            "new-currency": "eur",
            "new-stock": "5",
        },
    )
    assert response.status_code == 302
    variant = product.variants.get()
    assert (variant.price_minor, variant.currency, variant.stock_available) == (
        8900,
        "EUR",
        5,
    )
    html = client.get("/brand/acme/catalogue/").content.decode()
    thumbnail = re.search(r'<img class="cat-thumb" src="([^"]+)"', html).group(1)
    assert thumbnail.startswith("/media/products/")
    served = client.get(thumbnail)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert "€89.00" in html
    created = AuditEntry.objects.get(action="variant.create", target="REC-1")
    assert created.actor == host


def test_a_price_in_german_is_read_with_its_comma(host, products):
    client = client_for(host)
    response = client.post(
        f"/brand/acme/catalogue/products/{products[0].pk}/variants/",
        {
            "new-sku": "HP-2",
            "new-price": "1.234,50",
            "new-currency": "EUR",
            "new-stock": "1",
        },
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert response.status_code == 302
    assert Variant.objects.get(sku="HP-2").price_minor == 123450


def test_a_yen_price_has_no_decimals(host, products):
    client = client_for(host)
    response = client.post(
        f"/brand/acme/catalogue/products/{products[0].pk}/variants/",
        {
            "new-sku": "HP-JP",
            "new-price": "8900",
            "new-currency": "JPY",
            "new-stock": "1",
        },
    )
    assert response.status_code == 302
    assert Variant.objects.get(sku="HP-JP").price_minor == 8900
    html = client.get(f"/brand/acme/catalogue/products/{products[0].pk}/").content
    assert b'value="8900"' in html


def test_bad_variant_input_is_told_next_to_each_field_and_nothing_is_saved(
    host, products
):
    client = client_for(host)
    url = f"/brand/acme/catalogue/products/{products[0].pk}/variants/"
    response = client.post(
        url,
        {
            "new-sku": "",
            "new-price": "89.001",
            "new-currency": "EUR",
            "new-stock": "-2",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "required" in field_error(html, "id_new-sku").lower()
    assert "at most 2 decimal places" in field_error(html, "id_new-price")
    assert "0 or more" in field_error(html, "id_new-stock")
    assert 'aria-describedby="id_new-price_helptext id_new-price_error"' in html
    response = client.post(
        url,
        {"new-sku": "X", "new-price": "1", "new-currency": "EUX", "new-stock": "1"},
    )
    assert "not a currency code" in field_error(
        response.content.decode(), "id_new-currency"
    )
    response = client.post(
        url,
        {"new-sku": "SKU-1", "new-price": "1", "new-currency": "EUR", "new-stock": "1"},
    )
    assert response.status_code == 400
    assert "already in use" in field_error(response.content.decode(), "id_new-sku")
    assert products[0].variants.count() == 1


def test_a_file_that_is_not_an_image_is_refused_next_to_the_field(host, brand, media):
    client = client_for(host)
    response = client.post(
        "/brand/acme/catalogue/products/new/",
        {
            "name": "Lamp",
            "image": SimpleUploadedFile(
                "lamp.png", b"<svg onload=alert(1)>", "image/png"
            ),
        },
    )
    assert response.status_code == 400
    assert "not an image" in field_error(response.content.decode(), "id_image")
    assert not Product.objects.filter(name="Lamp").exists()
    assert not any(media.rglob("*.*"))


def test_a_product_is_renamed_and_its_image_replaced(host, products, media):
    client = client_for(host)
    product = products[0]
    response = client.post(
        f"/brand/acme/catalogue/products/{product.pk}/",
        {
            "name": "Studio Headphones II",
            "description": "Closed back.",
            "image": SimpleUploadedFile("x.png", png(), "image/png"),
        },
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.slug, product.requires_shipping) == (
        "Studio Headphones II",
        "studio-headphones",
        False,
    )
    assert product.image.name.endswith(".png")


# --- Stock between GET and POST ------------------------------------------------


def _edit_form(client: Client, variant: Variant) -> dict[str, str]:
    """The variant's edit form as the page renders it (the GET)."""
    html = client.get(
        f"/brand/acme/catalogue/products/{variant.product_id}/"
    ).content.decode()
    prefix = f"v{variant.pk}-"
    fields = dict(re.findall(rf'name="({prefix}[a-z_]+)"[^>]*?value="([^"]*)"', html))
    assert fields[f"{prefix}stock_seen"] == str(variant.stock_available)
    return fields


def test_a_stock_edit_keeps_a_sale_made_while_the_form_was_open(host, mic):
    client = client_for(host)
    form = _edit_form(client, mic)
    sell(mic, 3)  # a viewer buys while the host types
    form[f"v{mic.pk}-stock"] = "15"
    response = client.post(
        f"/brand/acme/catalogue/variants/{mic.pk}/", form, follow=True
    )
    assert response.status_code == 200
    mic.refresh_from_db()
    assert mic.stock_available == 12
    assert "3 units were sold or held while you edited: 12 are in stock now." in (
        response.content.decode()
    )


def test_a_stock_edit_below_zero_after_a_sale_is_refused_next_to_the_field(host, mic):
    client = client_for(host)
    form = _edit_form(client, mic)
    sell(mic, 8)
    form[f"v{mic.pk}-stock"] = "0"
    form[f"v{mic.pk}-price"] = "1.00"
    response = client.post(f"/brand/acme/catalogue/variants/{mic.pk}/", form)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Only 2 left in stock now" in field_error(html, f"id_v{mic.pk}-stock")
    # The form now starts from the stock as it is, so saving again works.
    assert f'name="v{mic.pk}-stock_seen" value="2"' in html
    mic.refresh_from_db()
    assert (mic.stock_available, mic.price_minor) == (2, 8900)


# --- CSV import ----------------------------------------------------------------


def test_a_csv_is_previewed_then_written_when_confirmed(host, brand, mic):
    client = client_for(host)
    text = HEADER + (
        "lamp,Desk Lamp,LAMP-1,Brass,45.00,EUR,6\n"
        "desk-mic,Desk Mic,SKU-1,Standard,79.00,EUR,12\n"
    )
    response = client.post(
        "/brand/acme/catalogue/import/",
        {"file": SimpleUploadedFile("c.csv", text.encode(), "text/csv")},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Desk Lamp" in html
    assert "LAMP-1" in html
    assert "<del>€89.00</del> €79.00" in html
    assert not Variant.objects.filter(sku="LAMP-1").exists()
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    sell(mic, 2)
    response = client.post("/brand/acme/catalogue/import/confirm/", {"token": token})
    assert response.status_code == 302
    assert Variant.objects.get(sku="LAMP-1").price_minor == 4500
    mic.refresh_from_db()
    assert (mic.price_minor, mic.stock_available) == (7900, 10)


def test_a_csv_with_errors_lists_them_by_line_and_offers_no_confirmation(host, brand):
    client = client_for(host)
    text = HEADER + (
        "lamp,Desk Lamp,LAMP-1,Brass,45.00,EUR,6\ncup,Cup,CUP-1,,4.999,EUR,1\n"
    )
    response = client.post(
        "/brand/acme/catalogue/import/",
        {"file": SimpleUploadedFile("c.csv", text.encode(), "text/csv")},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 3:" in html
    assert "at most 2 decimal places" in html
    assert 'name="token"' not in html
    assert not Variant.objects.filter(sku="LAMP-1").exists()


def test_a_forged_or_borrowed_preview_token_writes_nothing(host, owner, brand):
    text = HEADER + "lamp,Desk Lamp,LAMP-1,Brass,45.00,EUR,6\n"
    response = client_for(owner).post(
        "/brand/acme/catalogue/import/",
        {"file": SimpleUploadedFile("c.csv", text.encode(), "text/csv")},
    )
    token = re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(
        1
    )
    client = client_for(host)
    for bad in (token, token[:-2] + "xx", ""):
        response = client.post("/brand/acme/catalogue/import/confirm/", {"token": bad})
        assert response.status_code == 302
        assert response["Location"] == "/brand/acme/catalogue/import/"
    assert not Variant.objects.filter(sku="LAMP-1").exists()


def test_a_file_that_is_not_utf8_is_refused_next_to_the_field(host, brand):
    response = client_for(host).post(
        "/brand/acme/catalogue/import/",
        {"file": SimpleUploadedFile("c.csv", "é".encode("latin-1"), "text/csv")},
    )
    assert response.status_code == 400
    assert "UTF-8" in field_error(response.content.decode(), "id_file")
