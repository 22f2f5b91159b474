"""Fulfilment and order numbers (checkout/services/fulfilment.py): each step
once and in order, the buyer's cancel racing the brand's pack, the brand's
gapless numbers, and the admin's actions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from checkout import services
from checkout.exceptions import FulfilmentInvalid, NotCancellable, TrackingInvalid
from checkout.models import Order, OrderEmail, Refund, StockHold
from checkout.services import fulfilment
from shows import services as show_services
from shows.services import room
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


def place(show, buyer, variant, quantity=1):
    return services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=quantity,
        idempotency_key=new_key(),
    ).order


def paid_order(show, buyer, variant, quantity=1):
    order = place(show, buyer, variant, quantity)
    services.order_pay(order=order, buyer=buyer, method="test")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order


@pytest.fixture
def paid(stripe_settings, pinned, mic, guest):
    return paid_order(pinned, guest, mic, quantity=2)


def test_paid_orders_are_numbered_per_brand_without_gaps(
    stripe_settings, pinned, mic, guest, make_user
):
    """The brand's paid orders are #1001, #1002; a hold that ran out takes no
    number; another brand starts at #1001 too."""
    first = paid_order(pinned, guest, mic)
    unpaid = place(pinned, guest, mic)
    second = paid_order(pinned, guest, mic)
    assert (first.number, second.number) == (1001, 1002)
    assert first.reference == "#1001"
    unpaid.refresh_from_db()
    assert unpaid.number is None
    assert unpaid.reference == str(unpaid.public_id)[:8]
    other = show_services.brand_create(name="Other", slug="other")
    lamp_product = show_services.product_create(brand=other, name="Lamp")
    lamp = show_services.variant_create(
        product=lamp_product,
        sku="LAMP",
        name="Standard",
        price_minor=1000,
        currency="EUR",
        stock_available=5,
    )
    other_show = show_services.show_start(
        show=show_services.show_create(
            brand=other,
            slug="other-show",
            title="Other show",
            scheduled_at=pinned.scheduled_at,
            products=[lamp_product],
        )
    )
    other_host = make_user(display_name="Olga", email="olga@example.test")
    show_services.membership_set(brand=other, user=other_host, role="host")
    room.product_pin(show=other_show, actor=other_host, product_id=lamp_product.pk)
    assert paid_order(other_show, guest, lamp).number == 1001


def test_pack_ship_deliver_once_each_in_order(paid):
    """Packing, shipping (carrier, tracking number and link) and delivery each
    happen once; shipping makes the order fulfilled and asks for the shipped
    email once; out-of-order or repeated steps are refused and change nothing."""
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_mark_delivered(order=paid)
    fulfilment.order_pack(order=paid)
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_pack(order=paid)
    shipped = fulfilment.order_ship(
        order=paid,
        carrier="DHL",
        tracking_number="JJD0099",
        tracking_url="https://track.example/JJD0099",
    )
    assert shipped.status == Order.Status.FULFILLED
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_ship(order=paid, carrier="UPS")
    paid.refresh_from_db()
    assert (paid.carrier, paid.tracking_number) == ("DHL", "JJD0099")
    assert paid.packed_at <= paid.shipped_at
    assert OrderEmail.objects.filter(order=paid, kind="shipped").count() == 1
    fulfilment.order_mark_delivered(order=paid)
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_mark_delivered(order=paid)
    paid.refresh_from_db()
    assert paid.delivered_at is not None


@pytest.mark.parametrize(
    ("carrier", "url"),
    [("", ""), ("DHL", "http://track.example/1"), ("DHL", "javascript:alert(1)")],
)
def test_a_ship_without_carrier_or_with_an_unsafe_link_is_refused(paid, carrier, url):
    with pytest.raises(TrackingInvalid):
        fulfilment.order_ship(order=paid, carrier=carrier, tracking_url=url)
    paid.refresh_from_db()
    assert paid.shipped_at is None
    assert paid.status == Order.Status.PAID


def test_an_unpaid_order_cannot_be_packed_or_shipped(
    stripe_settings, pinned, mic, guest
):
    order = place(pinned, guest, mic)
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_pack(order=order)
    with pytest.raises(FulfilmentInvalid):
        fulfilment.order_ship(order=order, carrier="DHL")


def test_the_buyer_cancels_a_paid_order_before_packing(paid, mic):
    """Refunded in full, its two units back on sale, once."""
    assert selectors_cancellable(paid)
    cancelled = fulfilment.order_cancel_by_buyer(order=paid)
    assert cancelled.status == Order.Status.REFUNDED
    assert Refund.objects.get().amount_minor == paid.total_minor
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert paid.holds.get().status == StockHold.Status.RESTOCKED
    with pytest.raises(NotCancellable):
        fulfilment.order_cancel_by_buyer(order=paid)
    assert not selectors_cancellable(Order.objects.get(pk=paid.pk))


def test_a_packed_order_cannot_be_cancelled_by_the_buyer(paid, mic):
    fulfilment.order_pack(order=paid)
    with pytest.raises(NotCancellable):
        fulfilment.order_cancel_by_buyer(order=paid)
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID
    mic.refresh_from_db()
    assert mic.stock_available == 8


def test_a_reserved_order_cancelled_by_the_buyer_returns_its_hold(
    stripe_settings, pinned, mic, guest
):
    order = place(pinned, guest, mic)
    assert fulfilment.order_cancel_by_buyer(order=order).status == "cancelled"
    mic.refresh_from_db()
    assert mic.stock_available == 10


@pytest.mark.parametrize("run", range(3))
def test_the_buyers_cancel_and_the_brands_pack_at_once_one_wins(paid, mic, run):
    """Racing threads on PostgreSQL: either the order is packed and paid, or
    cancelled (refunded, stock back) and never packed; never both."""
    start = threading.Barrier(2)

    def pack():
        start.wait()
        try:
            fulfilment.order_pack(order=paid)
            return "packed"
        except FulfilmentInvalid:
            return "refused"
        finally:
            connection.close()

    def cancel():
        start.wait()
        try:
            fulfilment.order_cancel_by_buyer(order=paid)
            return "cancelled"
        except NotCancellable:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        packed, cancelled = pool.submit(pack), pool.submit(cancel)
        outcome = {packed.result(), cancelled.result()}
    assert outcome in ({"packed", "refused"}, {"cancelled", "refused"})
    paid.refresh_from_db()
    mic.refresh_from_db()
    if "packed" in outcome:
        assert (paid.status, paid.packed_at is not None) == ("paid", True)
        assert mic.stock_available == 8
    else:
        assert (paid.status, paid.packed_at) == ("refunded", None)
        assert mic.stock_available == 10


def selectors_cancellable(order) -> bool:
    from checkout import selectors

    return selectors.order_cancellable(order)


# --- The admin ---------------------------------------------------------------


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user("Ada Admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    return client


def test_the_admin_packs_and_ships_in_bulk_and_one_with_its_tracking(
    staff_client, stripe_settings, pinned, mic, guest
):
    """The list's actions pack and ship the selected orders with one carrier
    (asking for it first); an order already shipped is named, not shipped
    twice; the per-order form ships with a tracking link."""
    first, second, third = (paid_order(pinned, guest, mic) for _ in range(3))
    changelist = "/admin/checkout/order/"
    staff_client.post(
        changelist, {"action": "mark_packed", "_selected_action": [first.pk]}
    )
    first.refresh_from_db()
    assert first.packed_at is not None
    asked = staff_client.post(
        changelist,
        {"action": "mark_shipped", "_selected_action": [first.pk, second.pk]},
    )
    assert asked.status_code == 200
    assert "Carrier" in asked.content.decode()
    done = staff_client.post(
        changelist,
        {
            "action": "mark_shipped",
            "_selected_action": [first.pk, second.pk],
            "carrier": "PostNL",
        },
        follow=True,
    )
    assert "2 orders shipped." in done.content.decode()
    for order in (first, second):
        order.refresh_from_db()
        assert (order.status, order.carrier) == ("fulfilled", "PostNL")
    again = staff_client.post(
        changelist,
        {"action": "mark_shipped", "_selected_action": [first.pk], "carrier": "UPS"},
        follow=True,
    )
    assert first.reference in again.content.decode()
    first.refresh_from_db()
    assert first.carrier == "PostNL"
    form = f"/admin/checkout/order/{third.pk}/ship/"
    assert staff_client.get(form).status_code == 200
    shipped = staff_client.post(
        form,
        {
            "carrier": "DHL",
            "tracking_number": "JJD1",
            "tracking_url": "https://track.example/JJD1",
        },
    )
    assert shipped.status_code == 302
    third.refresh_from_db()
    assert third.tracking_url == "https://track.example/JJD1"
    page = staff_client.get(f"/admin/checkout/order/{third.pk}/change/")
    assert "Order #1003" in page.content.decode()
