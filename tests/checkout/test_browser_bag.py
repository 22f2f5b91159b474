"""The bag in Chromium: "Add to bag" on the pinned card and in the line-up, the
bag button's count, the sheet's lines with their quantities and holds, and one
payment for all of it. Taps are counted as clicks from the first "Add" to
"paid"; typing the email is not a tap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import services
from checkout.models import Order, StockHold
from shows.models import Variant
from tests.checkout.conftest import new_key
from tests.conftest import ARTIFACTS
from tests.frontend.test_a11y import axe_problems
from tests.frontend.test_a11y import axe_script as axe_script_fixture  # noqa: F401
from tests.live.conftest import login_cookie

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def phones(products):
    """Studio Headphones: in the line-up, not pinned (25 in stock, €149.00)."""
    return products[0].variants.get()


class Taps:
    """Clicks on the page, counted."""

    def __init__(self, page):
        self.page = page
        self.count = 0

    def __call__(self, selector: str) -> None:
        self.page.click(selector)
        self.count += 1


def open_show(context, base: str, slug: str):
    page = context.new_page()
    page.goto(f"{base}/shows/{slug}/")
    page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
    page.wait_for_selector(".room-pin .room-add", timeout=10000)
    return page


def wait_for_count(page, n: int) -> None:
    page.wait_for_function(
        f"document.getElementById('room-bag-n').textContent === '{n}'",
        timeout=10000,
    )


def lineup_add(product_id: int) -> str:
    return f".lineup-item[data-product-id='{product_id}'] .lineup-add"


def stock(variant) -> int:
    return Variant.objects.get(pk=variant.pk).stock_available


def test_a_guest_bags_a_pinned_and_a_lineup_product_and_pays_once(
    stripe_settings, asgi_server, browser, pinned, mic, phones
):
    """Add the pinned Desk Mic and the line-up's Studio Headphones, one more
    Desk Mic in the sheet: the badge counts 3, the sheet shows both lines, the
    subtotal and each line's hold; email, Continue, Pay → one paid order with
    two lines, and another viewer's card shows the stock it took."""
    buyer_context = browser.new_context(viewport={"width": 390, "height": 844})
    other_context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        other = open_show(other_context, asgi_server, pinned.slug)
        assert "10 left" in other.inner_text(".room-pin .room-stock")
        page = open_show(buyer_context, asgi_server, pinned.slug)
        tap = Taps(page)
        assert page.is_visible("#room-bag")
        assert page.get_attribute("#room-bag-count", "role") == "status"

        tap(".room-pin .room-add")
        wait_for_count(page, 1)
        assert page.inner_text(".room-pin .room-bag-note") == "Added to your bag."
        tap(lineup_add(phones.product_id))
        wait_for_count(page, 2)
        assert (stock(mic), stock(phones)) == (9, 24)
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "bag-phone-room.png"))

        tap("#room-bag")
        page.wait_for_selector("#buy-sheet[open][data-mode='bag']")
        page.wait_for_function(
            "document.querySelectorAll('#buy-lines .buy-line').length === 2"
        )
        assert page.inner_text("#buy-product") == "Your bag"
        mic_line = f".buy-line[data-variant='{mic.pk}']"
        assert "Desk Mic" in page.inner_text(mic_line)
        assert "Held for" in page.inner_text(f"{mic_line} .buy-line-hold")
        tap(f"{mic_line} button[aria-label^='One more']")
        wait_for_count(page, 3)
        page.wait_for_function(
            f"document.querySelector(\"{mic_line} .buy-line-qty\").textContent === '2'"
        )
        # The keyboard stays where it was: on the line's "+".
        assert page.evaluate("document.activeElement.dataset.key") == f"more-{mic.pk}"
        assert page.inner_text(f"{mic_line} .buy-line-total") == "€178.00"
        page.wait_for_function(
            "document.getElementById('buy-total').textContent === '€327.00'"
        )
        assert stock(mic) == 8
        page.screenshot(path=str(ARTIFACTS / "bag-phone-sheet.png"))
        # Nothing is wider than the phone, in the room or in the sheet.
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        assert page.evaluate(
            "document.getElementById('buy-sheet').scrollWidth"
            " <= document.getElementById('buy-sheet').clientWidth"
        )

        page.fill("#buy-email", "bag@example.test")
        tap("#buy-primary")  # reserve the whole bag
        page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
        assert page.inner_text("#buy-primary") == "Pay €327.00 with the test card"
        tap("#buy-primary")  # pay once
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        assert "Paid" in page.inner_text("#buy-status")
        order = Order.objects.get(status=Order.Status.PAID)
        assert order.from_bag
        assert order.email == "bag@example.test"
        assert sorted((x.product_name, x.quantity) for x in order.lines.all()) == [
            ("Desk Mic", 2),
            ("Studio Headphones", 1),
        ]
        assert order.total_minor == 32700
        assert page.locator("#buy-order-link").is_visible()
        assert order.reference in page.inner_text("#buy-order-link")
        wait_for_count(page, 0)
        other.wait_for_function(
            "document.querySelector('.room-pin .room-stock')"
            ".textContent.includes('8 left')",
            timeout=10000,
        )
        assert (stock(mic), stock(phones)) == (8, 24)
        print(f"\nguest, two products with a quantity change: {tap.count} taps")
        # Add, Add, bag, +, Continue, Pay.
        assert tap.count == 6
    finally:
        buyer_context.close()
        other_context.close()


def test_a_returning_buyer_pays_a_two_item_bag_with_delivery_in_one_tap_in_german(
    stripe_settings, asgi_server, browser, europe, pinned, mic, phones, make_user
):
    """With a saved card and a saved Berlin address, the bag's sheet offers
    "… mit Visa •••• 4242 bezahlen" for the delivered total (free shipping
    above €100, German VAT included): one tap pays both lines."""
    user = make_user("Lena Vogel", email="lena@example.test")
    buyer = services.Buyer(user=user)
    first = services.order_create(
        show=pinned,
        buyer=buyer,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
        save_card=True,
        address={
            "name": "Lena Vogel",
            "line1": "Torstraße 1",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
        },
        save_address=True,
    )
    services.order_pay(order=first.order, buyer=buyer, method="test")
    context = browser.new_context(
        locale="de-DE", viewport={"width": 390, "height": 844}
    )
    try:
        context.add_cookies(
            [{"name": "sessionid", "value": login_cookie(user), "url": asgi_server}]
        )
        page = open_show(context, asgi_server, pinned.slug)
        assert page.evaluate("document.documentElement.lang") == "de"
        tap = Taps(page)
        tap(".room-pin .room-add")
        wait_for_count(page, 1)
        tap(lineup_add(phones.product_id))
        wait_for_count(page, 2)
        tap("#room-bag")
        page.wait_for_selector("#buy-sheet[open][data-mode='bag']")
        assert "Torstraße 1" in page.inner_text("#buy-address-label")
        assert page.locator("#buy-address-form").is_hidden()
        page.wait_for_function(
            "document.getElementById('buy-primary').textContent.includes('238,00')"
        )
        primary = page.inner_text("#buy-primary").replace("\xa0", " ")
        assert primary == "238,00 € mit Visa •••• 4242 bezahlen", primary
        tap("#buy-primary")  # the one tap on Pay
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        assert "Bezahlt" in page.inner_text("#buy-status")
        order = Order.objects.filter(buyer=user).order_by("-id").first()
        assert order.status == Order.Status.PAID
        assert order.from_bag
        assert order.lines.count() == 2
        assert (order.subtotal_minor, order.shipping_minor) == (23800, 0)
        assert order.total_minor == 23800
        assert order.tax_included
        assert order.shipping_address.city == "Berlin"
        print(f"\nsigned in, saved card and address, two products: {tap.count} taps")
        # Add, Add, bag, Pay.
        assert tap.count == 4
    finally:
        context.close()


def test_a_line_whose_hold_runs_out_leaves_the_open_sheet(
    stripe_settings, asgi_server, browser, pinned, mic, phones
):
    """The sweeper gives back the headphones' hold: ``bag.updated`` takes the
    line out of the open sheet and the count down, without a reload (a guest,
    whose socket connected before their first Add started their session)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = open_show(context, asgi_server, pinned.slug)
        page.evaluate("window.sameDocument = true")
        page.click(".room-pin .room-add")
        wait_for_count(page, 1)
        page.click(lineup_add(phones.product_id))
        wait_for_count(page, 2)
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        # Opening the bag reads it (which also gives back holds that ran out):
        # let that read finish before the hold runs out.
        with page.expect_response(lambda r: r.url.endswith(f"/{pinned.slug}/bag")):
            page.click("#room-bag")
        page.wait_for_function(
            "document.querySelectorAll('#buy-lines .buy-line').length === 2"
        )
        StockHold.objects.filter(variant=phones, status=StockHold.Status.HELD).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert services.bag_expire_due() == 1
        page.wait_for_selector(
            f".buy-line[data-variant='{phones.pk}']", state="detached", timeout=10000
        )
        assert page.locator("#buy-lines .buy-line").count() == 1
        assert page.is_visible(f".buy-line[data-variant='{mic.pk}']")
        wait_for_count(page, 1)
        page.wait_for_function(
            "document.getElementById('buy-total').textContent === '€89.00'"
        )
        assert page.evaluate("window.sameDocument") is True
        assert page.is_visible("#buy-sheet[open]")
        assert stock(phones) == 25
    finally:
        context.close()


def test_the_bag_works_by_keyboard_and_a_checked_out_bag_outlives_the_sheet(
    stripe_settings, asgi_server, browser, pinned, mic, request
):
    """Add, open the bag, one more and Continue by keyboard, with no serious
    axe violations in the room or the sheet; Escape closes the sheet and gives
    the focus back to the bag button, and the checked-out bag stays reserved
    (a one-tap order would be cancelled): the bag button brings it back to
    pay, also after a reload."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = open_show(context, asgi_server, pinned.slug)
        page.focus(".room-pin .room-add")
        page.keyboard.press("Enter")
        wait_for_count(page, 1)
        assert page.evaluate("document.activeElement.id") == f"pin-add-{mic.product_id}"
        page.focus("#room-bag")
        page.keyboard.press("Enter")
        page.wait_for_selector("#buy-sheet[open][data-mode='bag']")
        page.wait_for_function("document.activeElement.id === 'buy-primary'")
        axe = request.getfixturevalue("axe_script_fixture")
        problems = axe_problems(page, axe, "the bag's sheet")
        assert not problems, "\n".join(problems)
        for _ in range(10):
            if page.evaluate("document.activeElement.dataset.key") == f"more-{mic.pk}":
                break
            page.keyboard.press("Shift+Tab")
        page.keyboard.press("Enter")
        wait_for_count(page, 2)
        page.fill("#buy-email", "keys@example.test")
        page.focus("#buy-primary")
        page.keyboard.press("Enter")  # Continue: the bag is checked out
        page.wait_for_selector("#buy-sheet[data-order-id]", timeout=10000)
        order = Order.objects.get()
        assert (order.status, order.from_bag) == (Order.Status.RESERVED, True)

        page.keyboard.press("Escape")
        page.wait_for_selector("#buy-sheet:not([open])", state="attached")
        assert page.evaluate("document.activeElement.id") == "room-bag"
        order.refresh_from_db()
        assert order.status == Order.Status.RESERVED
        wait_for_count(page, 2)
        page.keyboard.press("Enter")
        page.wait_for_selector("#buy-sheet[open]")
        assert page.inner_text("#buy-primary") == "Pay €178.00 with the test card"

        page.keyboard.press("Escape")
        page.reload()
        page.wait_for_selector("#room-conn[data-state='live']", timeout=15000)
        wait_for_count(page, 2)
        page.click("#room-bag")
        page.wait_for_selector("#buy-sheet[data-resumed='1']", timeout=10000)
        assert page.get_attribute("#buy-sheet", "data-order-id") == str(order.public_id)
        assert page.locator("#buy-lines .buy-stepper").count() == 0
        assert "2 \u00d7 €89.00" in page.inner_text("#buy-lines")
        assert page.inner_text("#buy-primary") == "Pay €178.00 with the test card"
        page.click("#buy-primary")
        page.wait_for_selector("#buy-sheet[data-order-status='paid']", timeout=15000)
        order.refresh_from_db()
        assert order.status == Order.Status.PAID
        wait_for_count(page, 0)
    finally:
        context.close()


@pytest.fixture
def one_per_buyer(settings):
    """At most one unit per buyer (set before the server process starts, which
    inherits the settings)."""
    settings.SHOWFLOOR_MAX_PER_BUYER = 1


def test_refusals_are_said_in_words_next_to_the_control_that_caused_them(
    one_per_buyer, stripe_settings, asgi_server, browser, pinned, mic, phones
):
    """A second Desk Mic over the per-buyer limit: the pinned card says so
    under its "Add to bag", and the sheet's "+" says so on its line; the last
    headphones taken meanwhile: the line-up item says they are sold out."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = open_show(context, asgi_server, pinned.slug)
        page.click(".room-pin .room-add")
        wait_for_count(page, 1)
        page.click(".room-pin .room-add")
        note = f"#pin-note-{mic.product_id}"
        page.wait_for_selector(f"{note}[data-kind='error']", timeout=10000)
        assert page.inner_text(note) == "You can take at most 1 of this."
        assert page.get_attribute(".room-pin .room-add", "aria-describedby") == (
            f"pin-note-{mic.product_id}"
        )

        Variant.objects.filter(pk=phones.pk).update(stock_available=0)
        page.click(lineup_add(phones.product_id))
        lineup_note = f"#lineup-note-{phones.product_id}"
        page.wait_for_selector(f"{lineup_note}[data-kind='error']", timeout=10000)
        assert page.inner_text(lineup_note).startswith("Sold out")

        page.click("#room-bag")
        page.wait_for_selector("#buy-sheet[open][data-mode='bag']")
        mic_line = f".buy-line[data-variant='{mic.pk}']"
        page.click(f"{mic_line} button[aria-label^='One more']")
        error = f"#buy-line-{mic.pk}-error"
        page.wait_for_function(
            f"document.querySelector('{error}').textContent.includes('at most 1')",
            timeout=10000,
        )
        assert page.get_attribute(
            f"{mic_line} button[aria-label^='One more']", "aria-describedby"
        ) == (f"buy-line-{mic.pk}-error")
        assert page.inner_text(f"{mic_line} .buy-line-qty") == "1"
        assert stock(mic) == 9
    finally:
        context.close()
