"""The catalogue in Chromium, on a phone-sized screen: a host adds a product
with an uploaded image and a variant priced "89.00", and finds its thumbnail
(made at upload, served by the site) in the product list; the pages break no
Content-Security-Policy rule and axe finds nothing serious on them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shows.models import Product
from tests.frontend.test_a11y import axe_problems, axe_script  # noqa: F401
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def media(settings, tmp_path):
    """Uploads in a directory of this test's (set before Daphne starts)."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (230, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_host_adds_a_product_with_an_image_and_sees_its_thumbnail(
    media,
    asgi_server,
    page,
    host,
    brand,
    axe_script,  # noqa: F811
):
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            csp_errors.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.context.add_cookies(
        [{"name": "sessionid", "value": login_cookie(host), "url": asgi_server}]
    )
    problems: list[str] = []
    page.goto(f"{asgi_server}/brand/acme/catalogue/")
    page.get_by_text("No products yet.").wait_for()
    problems += axe_problems(page, axe_script, "catalogue, empty")

    page.get_by_role("link", name="New product").click()
    page.get_by_label("Name").fill("Field Recorder")
    page.get_by_label("Description").fill("Four tracks, two XLR inputs.")
    page.get_by_label("Image").set_input_files(
        files=[{"name": "recorder.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    problems += axe_problems(page, axe_script, "new product")
    page.get_by_role("button", name="Add the product").click()

    page.get_by_role("heading", name="Field Recorder").wait_for()
    page.get_by_label("SKU").fill("REC-1")
    page.get_by_label("Price").fill("89.00")
    page.get_by_label("Currency").fill("EUR")
    page.get_by_label("In stock").fill("5")
    page.get_by_role("button", name="Add the variant").click()
    page.get_by_text("Variant REC-1 was added.").wait_for()
    # Checked without the flash message (base.html's list of messages is
    # checked with the pages that own it).
    page.reload()
    problems += axe_problems(page, axe_script, "product")

    page.get_by_role("link", name="Back to the catalogue").click()
    row = page.locator("li.cat-row", has_text="Field Recorder")
    row.wait_for()
    assert "€89.00" in row.inner_text()
    assert "5 in stock" in row.inner_text()
    thumbnail = row.locator("img.cat-thumb")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    assert thumbnail.get_attribute("src").startswith("/media/products/")
    problems += axe_problems(page, axe_script, "catalogue")

    product = Product.objects.get(name="Field Recorder")
    assert product.variants.get().price_minor == 8900
    assert product.image.name.endswith(".png")
    assert problems == []
    assert csp_errors == []
