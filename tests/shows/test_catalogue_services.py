"""The catalogue services the brand workspace calls: prices read in major units
per currency, stock moved by the difference the member made (a sale in between
stays sold), images checked and thumbnailed at upload, every price and stock
change audited, and every one of them refused to a moderator."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F
from PIL import Image

from shows import images, selectors, services
from shows.exceptions import (
    CatalogImportError,
    CatalogInputError,
    ImageInvalid,
    NotFound,
    StockMoved,
)
from shows.models import AuditEntry, Product, Variant
from shows.services import catalog
from shows.services.catalog import ImageUpload, price_parse
from shows.services.workspace import NotAllowed, NotAMember

pytestmark = pytest.mark.django_db

HEADER = "product_slug,product_name,sku,variant_name,price,currency,stock\n"


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, kind)
    return buffer.getvalue()


def upload(data: bytes) -> ImageUpload:
    return ImageUpload(file=io.BytesIO(data), size=len(data))


def changes_audited() -> bool:
    """Whether anything beyond the fixtures' new variants was audited."""
    return AuditEntry.objects.exclude(action=catalog.AUDIT_VARIANT_CREATE).exists()


def stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def mic(products) -> Variant:
    return products[1].variants.get()  # Desk Mic, EUR 89.00, 10 in stock


def sell(variant: Variant, quantity: int) -> None:
    """A sale as checkout takes it: one conditional decrement."""
    assert Variant.objects.filter(pk=variant.pk, stock_available__gte=quantity).update(
        stock_available=F("stock_available") - quantity
    )


# --- Prices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "currency", "minor"),
    [
        ("89.00", "EUR", 8900),
        ("89", "EUR", 8900),
        ("0.5", "EUR", 50),
        ("8900", "JPY", 8900),
        ("1.234", "BHD", 1234),
        ("12.5", "GBP", 1250),
    ],
)
def test_a_price_in_major_units_becomes_minor_units_per_currency(raw, currency, minor):
    assert price_parse(raw, currency) == minor


@pytest.mark.parametrize(
    ("raw", "currency", "problem"),
    [
        ("89.001", "EUR", "at most 2 decimal places"),
        ("89.5", "JPY", "at most 0 decimal places"),
        ("-1.00", "EUR", "negative"),
        ("eighty", "EUR", "not a number"),
        ("NaN", "EUR", "not a number"),
        ("1e20", "EUR", "too large"),
    ],
)
def test_a_price_the_currency_cannot_hold_is_refused(raw, currency, problem):
    with pytest.raises(ValueError, match=problem):
        price_parse(raw, currency)


def test_a_price_change_is_audited_with_its_value_before(host, mic):
    catalog.variant_edit(
        actor=host,
        variant=mic,
        name="Standard",
        sku=mic.sku,
        price_minor=7900,
        currency="EUR",
        stock_seen=10,
        stock_new=10,
    )
    mic.refresh_from_db()
    assert mic.price_minor == 7900
    entry = AuditEntry.objects.get(action=catalog.AUDIT_VARIANT_PRICE)
    assert entry.actor == host
    assert entry.target == mic.sku
    assert entry.detail["before"] == {"price_minor": 8900, "currency": "EUR"}
    assert entry.detail["after"] == {"price_minor": 7900, "currency": "EUR"}
    assert not AuditEntry.objects.filter(action=catalog.AUDIT_VARIANT_STOCK).exists()


# --- Stock by difference ------------------------------------------------------------


def test_a_stock_edit_keeps_the_units_sold_after_the_form_was_read(host, mic):
    """The form showed 10 and the member entered 15; 3 were sold meanwhile:
    the stock becomes 12, not 15, and the audit says so."""
    seen = mic.stock_available
    sell(mic, 3)
    now = catalog.variant_stock_adjust(actor=host, variant=mic, seen=seen, new=15)
    assert now == 12
    mic.refresh_from_db()
    assert mic.stock_available == 12
    entry = AuditEntry.objects.get(action=catalog.AUDIT_VARIANT_STOCK)
    assert entry.actor == host
    assert entry.detail["before"] == {"stock_available": 7}
    assert entry.detail["after"] == {"stock_available": 12}
    assert (entry.detail["seen"], entry.detail["entered"]) == (10, 15)


def test_a_stock_edit_that_would_go_below_zero_after_a_sale_changes_nothing(host, mic):
    """Shown 10, entered 0 (take all 10 away), but 8 were sold: refused on the
    stock field, the price edited with it kept as it was."""
    sell(mic, 8)
    with pytest.raises(StockMoved) as caught:
        catalog.variant_edit(
            actor=host,
            variant=mic,
            name="Standard",
            sku=mic.sku,
            price_minor=100,
            currency="EUR",
            stock_seen=10,
            stock_new=0,
        )
    assert caught.value.field == "stock"
    assert "Only 2 left" in caught.value.message
    mic.refresh_from_db()
    assert (mic.stock_available, mic.price_minor) == (2, 8900)
    assert not changes_audited()


def test_a_negative_stock_figure_is_refused(host, mic):
    with pytest.raises(CatalogInputError) as caught:
        catalog.variant_stock_adjust(actor=host, variant=mic, seen=10, new=-1)
    assert caught.value.field == "stock"
    mic.refresh_from_db()
    assert mic.stock_available == 10


@pytest.mark.django_db(transaction=True)
def test_stock_edits_racing_sales_lose_no_unit(host, mic, postgres):
    """Eight buyers take one unit each while the member adds 20 to the 10 they
    saw: every sale and every added unit counts (PostgreSQL, real threads)."""
    barrier = threading.Barrier(9)
    errors: list[BaseException] = []

    def buyer() -> None:
        try:
            barrier.wait()
            sell(mic, 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def member() -> None:
        try:
            barrier.wait()
            catalog.variant_stock_adjust(actor=host, variant=mic, seen=10, new=30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buyer) for _ in range(8)]
    threads.append(threading.Thread(target=member))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    mic.refresh_from_db()
    assert mic.stock_available == 10 - 8 + 20


# --- Roles ------------------------------------------------------------------------


def test_a_moderator_is_refused_by_every_catalogue_service(
    moderator, brand, products, mic, media
):
    text = HEADER + "mic,Desk Mic,SKU-1,Standard,1.00,EUR,99\n"
    calls = [
        lambda: catalog.product_list(actor=moderator, brand=brand),
        lambda: catalog.product_get(
            actor=moderator, brand=brand, product_id=products[0].pk
        ),
        lambda: catalog.variant_get(actor=moderator, brand=brand, variant_id=mic.pk),
        lambda: catalog.product_create(
            actor=moderator, brand=brand, name="Sneaky", image=upload(image_bytes())
        ),
        lambda: catalog.product_update(
            actor=moderator,
            product=products[0],
            name="Renamed",
            description="",
            requires_shipping=True,
        ),
        lambda: catalog.variant_create(
            actor=moderator,
            product=products[0],
            sku="NEW-1",
            price_minor=100,
            currency="EUR",
        ),
        lambda: catalog.variant_edit(
            actor=moderator,
            variant=mic,
            name="",
            sku=mic.sku,
            price_minor=1,
            currency="EUR",
            stock_seen=10,
            stock_new=10,
        ),
        lambda: catalog.variant_stock_adjust(
            actor=moderator, variant=mic, seen=10, new=0
        ),
        lambda: catalog.catalog_preview(actor=moderator, brand=brand, text=text),
        lambda: catalog.catalog_import(actor=moderator, brand=brand, text=text),
    ]
    for call in calls:
        with pytest.raises(NotAllowed):
            call()
    mic.refresh_from_db()
    assert (mic.price_minor, mic.stock_available) == (8900, 10)
    assert list(Product.objects.values_list("name", flat=True).order_by("pk")) == [
        "Studio Headphones",
        "Desk Mic",
        "Cable",
    ]
    assert not changes_audited()
    assert stored_files(media) == []


def test_a_member_of_another_brand_is_told_there_is_no_such_brand(
    make_user, brand, products
):
    other = services.brand_create(
        name="Other", slug="other", owner=(stranger := make_user())
    )
    assert other
    with pytest.raises(NotAMember):
        catalog.product_list(actor=stranger, brand=brand)
    with pytest.raises(NotAMember):
        catalog.product_update(
            actor=stranger,
            product=products[0],
            name="Mine now",
            description="",
            requires_shipping=True,
        )


def test_a_host_cannot_reach_another_brands_rows_through_their_own(
    host, brand, make_user
):
    other = services.brand_create(name="Other", slug="other", owner=make_user())
    foreign = services.product_create(brand=other, name="Foreign")
    variant = services.variant_create(
        product=foreign, sku="F-1", price_minor=1, currency="EUR"
    )
    with pytest.raises(NotFound):
        catalog.product_get(actor=host, brand=brand, product_id=foreign.pk)
    with pytest.raises(NotFound):
        catalog.variant_get(actor=host, brand=brand, variant_id=variant.pk)


# --- Images -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")]
)
def test_an_uploaded_image_is_stored_with_its_thumbnail_made_at_once(
    host, brand, media, kind, extension
):
    product = catalog.product_create(
        actor=host,
        brand=brand,
        name="Lamp",
        image=upload(image_bytes(kind, (400, 300))),
    )
    product.refresh_from_db()
    assert product.image.name.startswith(f"products/{brand.pk}/")
    assert product.image.name.endswith(f".{extension}")
    url = images.thumbnail_url(product.image)
    name = url.removeprefix("/media/")
    assert default_storage.exists(name), stored_files(media)
    with default_storage.open(name) as thumb, Image.open(thumb) as picture:
        assert picture.size == (160, 160)
        assert picture.format == kind
    # Stored as uploaded: the same bytes.
    with default_storage.open(product.image.name) as original:
        assert original.read() == image_bytes(kind, (400, 300))


def test_the_room_card_shows_the_thumbnail_rather_than_the_image_url(
    host, brand, media, django_assert_num_queries
):
    product = catalog.product_create(
        actor=host,
        brand=brand,
        name="Lamp",
        image_url="https://cdn.example/lamp.jpg",
        image=upload(image_bytes()),
    )
    plain = services.product_create(
        brand=brand, name="Rug", image_url="https://cdn.example/rug.jpg"
    )
    product = Product.objects.prefetch_related("variants").get(pk=product.pk)
    with django_assert_num_queries(0):
        card = selectors.product_card(product)
    assert card["image_url"] == images.thumbnail_url(product.image)
    assert card["image_url"].startswith("/media/products/")
    assert selectors.product_card(plain)["image_url"] == "https://cdn.example/rug.jpg"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"GIF89a" + b"\0" * 40, "not an image that can be read"),
        (b"just some text, named lamp.png", "not an image that can be read"),
        (image_bytes("PNG")[:60], "not an image that can be read"),
        (image_bytes("GIF"), "JPEG, PNG or WebP"),
        (image_bytes("BMP"), "JPEG, PNG or WebP"),
    ],
)
def test_what_is_not_a_jpeg_png_or_webp_is_refused_and_nothing_stored(
    host, brand, media, data, problem
):
    with pytest.raises(ImageInvalid, match=problem) as caught:
        catalog.product_create(actor=host, brand=brand, name="Lamp", image=upload(data))
    assert caught.value.field == "image"
    assert not Product.objects.filter(name="Lamp").exists()
    assert stored_files(media) == []


def test_an_image_over_five_megabytes_is_refused(host, brand, media):
    data = image_bytes()
    too_big = ImageUpload(file=io.BytesIO(data), size=images.MAX_IMAGE_BYTES + 1)
    with pytest.raises(ImageInvalid, match="larger than 5 MB"):
        catalog.product_create(actor=host, brand=brand, name="Lamp", image=too_big)
    assert stored_files(media) == []


def test_an_image_with_too_many_pixels_is_refused_before_it_is_decoded(
    host, brand, media, monkeypatch
):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageInvalid, match="too many pixels"):
        catalog.product_create(
            actor=host, brand=brand, name="Lamp", image=upload(image_bytes())
        )


def test_a_product_address_taken_keeps_neither_row_nor_image(
    host, brand, products, media
):
    with pytest.raises(CatalogInputError) as caught:
        catalog.product_create(
            actor=host, brand=brand, name="Desk Mic", image=upload(image_bytes())
        )
    assert caught.value.field == "name"
    assert Product.objects.filter(brand=brand, slug="desk-mic").count() == 1
    assert stored_files(media) == []


def test_a_new_image_replaces_the_old_one_and_its_thumbnail(
    host, brand, media, django_capture_on_commit_callbacks
):
    product = catalog.product_create(
        actor=host, brand=brand, name="Lamp", image=upload(image_bytes())
    )
    old = [product.image.name, images.thumbnail_url(product.image)]
    with django_capture_on_commit_callbacks(execute=True):
        catalog.product_update(
            actor=host,
            product=product,
            name="Lamp",
            description="Warm light",
            requires_shipping=True,
            image=upload(image_bytes("JPEG")),
        )
    files = stored_files(media)
    assert len(files) == 2
    assert all(old_name.removeprefix("/media/") not in files for old_name in old)
    assert product.image.name in files


# --- Import by difference -------------------------------------------------------------


def test_an_import_confirmed_after_sales_moves_stock_by_the_difference(
    host, brand, mic
):
    """The preview showed 10 for SKU-1; 4 sold before the confirmation; the file
    says 12: 8 are in stock (12 - 10 + 6 left), the price change audited."""
    text = HEADER + "desk-mic,Desk Mic,SKU-1,Standard,79.00,EUR,12\n"
    preview = catalog.catalog_preview(actor=host, brand=brand, text=text)
    assert [(p.row.sku, p.current.stock_available) for p in preview] == [("SKU-1", 10)]
    sell(mic, 4)
    catalog.catalog_import(actor=host, brand=brand, text=text, stock_seen={"SKU-1": 10})
    mic.refresh_from_db()
    assert (mic.stock_available, mic.price_minor) == (8, 7900)
    actions = set(
        AuditEntry.objects.filter(actor=host).values_list("action", flat=True)
    )
    assert actions == {
        catalog.AUDIT_VARIANT_PRICE,
        catalog.AUDIT_VARIANT_STOCK,
        catalog.AUDIT_CATALOG_IMPORT,
    }


def test_an_import_whose_stock_would_go_below_zero_writes_nothing(host, brand, mic):
    text = HEADER + (
        "new-thing,New thing,NEW-1,,5.00,EUR,3\n"
        "desk-mic,Desk Mic,SKU-1,Standard,79.00,EUR,0\n"
    )
    sell(mic, 9)
    with pytest.raises(CatalogImportError) as caught:
        catalog.catalog_import(
            actor=host, brand=brand, text=text, stock_seen={"SKU-1": 10}
        )
    assert [line for line, _text in caught.value.errors] == [3]
    mic.refresh_from_db()
    assert (mic.stock_available, mic.price_minor) == (1, 8900)
    assert not Variant.objects.filter(sku="NEW-1").exists()
    assert not changes_audited()
