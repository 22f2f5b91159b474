"""Catalogue import: validation with line numbers, all or nothing, updates."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from shows import services
from shows.exceptions import CatalogImportError
from shows.models import Product, Variant

pytestmark = pytest.mark.django_db

HEADER = "product_slug,product_name,sku,variant_name,price,currency,stock\n"


def test_import_creates_products_and_variants_in_minor_units(brand):
    """Prices become minor units per the currency (EUR 2 digits, JPY none)."""
    text = HEADER + (
        "mug,Enamel mug,MUG-W,White,12.50,EUR,30\n"
        "mug,Enamel mug,MUG-B,Blue,12.50,eur,4\n"
        "tea,Green tea,TEA-1,,1500,JPY,7\n"
    )
    result = services.catalog_import(brand=brand, text=text)
    assert (result.products_created, result.variants_created) == (2, 3)
    blue = Variant.objects.get(sku="MUG-B")
    assert (blue.price_minor, blue.currency, blue.stock_available) == (1250, "EUR", 4)
    assert blue.product.brand == brand
    assert Variant.objects.get(sku="TEA-1").price_minor == 1500


def test_one_invalid_row_writes_nothing_and_names_each_line(brand):
    """Every invalid row is reported by line; not even the valid rows are written."""
    text = HEADER + (
        "mug,Enamel mug,MUG-W,White,12.50,EUR,30\n"
        "cup,Cup,CUP-1,,-3.00,EUR,1\n"
        "Bad Slug,Thing,T-1,,1.00,EUR,1\n"
        "ok,Fine,OK-1,,1.00,EUX,1\n"
        "ok2,Fine,OK-2,,1.005,EUR,-1\n"
    )
    with pytest.raises(CatalogImportError) as caught:
        services.catalog_import(brand=brand, text=text)
    lines = dict(caught.value.errors)
    assert set(lines) == {3, 4, 5, 6}
    assert "negative" in lines[3]
    assert "product_slug" in lines[4]
    assert "ISO 4217" in lines[5]
    assert "decimal places" in lines[6]
    assert "stock cannot be negative" in lines[6]
    assert "line 3" in str(caught.value)
    assert not Product.objects.filter(brand=brand).exists()
    assert not Variant.objects.exists()


def test_byte_order_mark_and_quoted_fields_are_read(brand):
    """A UTF-8 BOM is ignored; quoted commas, quotes and newlines survive."""
    text = (
        "\ufeff"
        + HEADER.replace("stock", "stock,description")
        + (
            'scarf,"Scarf, wool",SC-1,"Red, long",39.90,EUR,3,"Warm.\nVery ""soft""."\n'
            "hat,Hat,HAT-1,,19.00,EUR,2,\n"
        )
    )
    services.catalog_import(brand=brand, text=text)
    scarf = Product.objects.get(slug="scarf")
    assert scarf.name == "Scarf, wool"
    assert scarf.description == 'Warm.\nVery "soft".'
    assert Variant.objects.get(sku="SC-1").name == "Red, long"


def test_line_numbers_count_physical_lines_of_multiline_records(brand):
    """A record after a quoted newline and a blank line is named by its own line."""
    text = HEADER.replace("stock", "stock,description") + (
        'a,A,A-1,,1.00,EUR,1,"two\nlines"\n\nb,B,B-1,,oops,EUR,1,\n'
    )
    with pytest.raises(CatalogImportError) as caught:
        services.catalog_import(brand=brand, text=text)
    assert [line for line, _ in caught.value.errors] == [5]


def test_reimport_updates_stock_and_price_without_duplicates(brand):
    """Importing again updates price and stock in place and adds new SKUs."""
    services.catalog_import(
        brand=brand, text=HEADER + "mug,Enamel mug,MUG-W,White,12.50,EUR,30\n"
    )
    result = services.catalog_import(
        brand=brand,
        text=HEADER
        + "mug,Enamel mug,MUG-W,White,11.00,EUR,5\n"
        + "mug,Enamel mug,MUG-G,Green,11,EUR,9\n",
    )
    assert (result.products_updated, result.variants_updated) == (1, 1)
    assert result.variants_created == 1
    white = Variant.objects.get(sku="MUG-W")
    assert (white.price_minor, white.stock_available) == (1100, 5)
    assert Product.objects.filter(brand=brand, slug="mug").count() == 1


def test_missing_columns_repeated_sku_and_empty_file_are_refused(brand):
    """Structural problems are refused with a clear message and nothing written."""
    with pytest.raises(
        CatalogImportError, match="missing columns: variant_name, currency"
    ):
        services.catalog_import(
            brand=brand, text="product_slug,product_name,sku,price,stock\n"
        )
    with pytest.raises(CatalogImportError) as caught:
        services.catalog_import(
            brand=brand,
            text=HEADER + "a,A,S-1,,1,EUR,1\nb,B,S-1,,1,EUR,1\n",
        )
    assert caught.value.errors == [(3, "sku “S-1” repeats line 2")]
    with pytest.raises(CatalogImportError, match="empty"):
        services.catalog_import(brand=brand, text="")
    with pytest.raises(CatalogImportError, match="no product rows"):
        services.catalog_import(brand=brand, text=HEADER)
    assert not Variant.objects.exists()


def test_sku_of_another_brand_is_refused(brand, products):
    """A SKU owned by another brand is not taken over."""
    other = services.brand_create(name="Other", slug="other")
    with pytest.raises(CatalogImportError, match="belongs to Acme Audio"):
        services.catalog_import(brand=other, text=HEADER + "x,X,SKU-0,,1,EUR,1\n")
    assert Variant.objects.get(sku="SKU-0").product.brand == brand
    assert not Product.objects.filter(brand=other).exists()


def test_import_catalog_command_reports_line_numbers(brand, tmp_path, capsys):
    """The command prints FILE:LINE: problem, fails, and imports a good file."""
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "a,A,A-1,,1,EUR,1\nb,B,B-1,,abc,EUR,1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_catalog", "acme", str(bad))
    assert f"{bad}:3: price “abc” is not a number" in capsys.readouterr().err
    assert not Variant.objects.exists()

    good = tmp_path / "good.csv"
    good.write_bytes(("\ufeff" + HEADER + "a,A,A-1,,1.99,EUR,8\n").encode("utf-8"))
    call_command("import_catalog", "acme", str(good))
    assert "1 variant(s) created" in capsys.readouterr().out
    assert Variant.objects.get(sku="A-1").price_minor == 199


def test_import_catalog_command_refuses_unknown_brand_and_non_utf8(brand, tmp_path):
    """Unknown brand, non-UTF-8 and unreadable files are clear command errors."""
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "a,Café,A-1,,1,EUR,1\n").encode("latin-1"))
    with pytest.raises(CommandError, match="no brand “nope”"):
        call_command("import_catalog", "nope", str(path))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_catalog", "acme", str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_catalog", "acme", str(tmp_path / "missing.csv"))


@pytest.fixture
def published(monkeypatch):
    """Room events handed to the bus after commit: (show id, event without seq)."""
    from realtime import bus

    sent: list[tuple[int, dict]] = []

    class Recorder:
        def publish_event(self, show_id, seq, payload, *, strict):
            event = json.loads(payload)
            event.pop("seq")
            sent.append((show_id, event))
            return bus.PUBLISHED

    monkeypatch.setattr(bus, "get_bus", lambda: Recorder())
    return sent


def test_editing_a_price_keeps_the_stock_sold_while_the_form_was_open(products):
    """The admin's form read 10 in stock; 3 sold meanwhile; saving a new price
    writes the price only, so the 3 sold units do not come back."""
    edited = Variant.objects.get(product=products[1])
    sold = F("stock_available") - 3
    Variant.objects.filter(pk=edited.pk).update(stock_available=sold)
    edited.price_minor = 7900

    services.variant_update(variant=edited, fields=["price_minor"])

    edited.refresh_from_db()
    assert (edited.price_minor, edited.stock_available) == (7900, 7)


def test_a_restock_reaches_the_rooms_of_live_shows_only(
    live_show, products, brand, published, django_capture_on_commit_callbacks
):
    """A new stock figure for a product in a live show's line-up is sent to
    that room after commit; a product in no live show sends nothing."""
    cable = Variant.objects.get(product=products[2])
    cable.stock_available = 12
    other = services.product_create(brand=brand, name="Not in the show")
    loose = services.variant_create(
        product=other, sku="LOOSE-1", price_minor=100, currency="EUR"
    )
    loose.stock_available = 5
    with django_capture_on_commit_callbacks(execute=True):
        services.variant_update(variant=cable, fields=["stock_available"])
        services.variant_update(variant=loose, fields=["stock_available"])

    assert published == [
        (
            live_show.pk,
            {
                "type": "stock.changed",
                "variant_id": cable.pk,
                "product_id": products[2].pk,
                "stock_available": 12,
            },
        )
    ]


def test_a_reimport_announces_the_new_stock_to_live_shows(
    live_show, products, brand, published, django_capture_on_commit_callbacks
):
    """Restocking through the catalogue CSV reaches the live room too."""
    csv = (
        "product_slug,product_name,sku,variant_name,price,currency,stock\n"
        f"{products[2].slug},Cable,SKU-2,Standard,15.00,EUR,30\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.catalog_import(brand=brand, text=csv)

    [(show_id, event)] = published
    assert show_id == live_show.pk
    assert (event["type"], event["stock_available"]) == ("stock.changed", 30)
