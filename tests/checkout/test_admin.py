"""Admin: orders with payments and events, refunds, CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from checkout import services
from checkout.models import Order, Payment, Refund
from tests.checkout.conftest import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paid(stripe_settings, pinned, mic, guest):
    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=2,
        idempotency_key=new_key(),
    ).order
    services.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    return order


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user("Ada Admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    return client


def test_order_page_shows_payment_and_transitions(staff_client, paid):
    """The change page lists the payment intent and the status history."""
    page = staff_client.get(f"/admin/checkout/order/{paid.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert Payment.objects.get(order=paid).intent_id in body
    assert "reserved" in body
    assert "paid" in body
    assert f"/admin/checkout/order/{paid.pk}/refund/" in body


def test_partial_refund_form_refunds_through_the_gateway(staff_client, paid):
    """A partial refund of €10.00 goes to Stripe; more than the rest is refused."""
    url = f"/admin/checkout/order/{paid.pk}/refund/"
    assert staff_client.get(url).status_code == 200
    answer = staff_client.post(url, {"amount": "10.00", "reason": "scratched box"})
    assert answer.status_code == 302
    refund = Refund.objects.get()
    assert refund.amount_minor == 1000
    assert refund.provider_refund_id.startswith("re_")
    too_much = staff_client.post(url, {"amount": "168.01"})
    assert too_much.status_code == 200
    assert "cannot exceed" in too_much.content.decode()
    assert Refund.objects.count() == 1
    paid.refresh_from_db()
    assert paid.status == Order.Status.PAID


def test_full_refund_action_and_csv_export(staff_client, paid):
    """The list actions refund in full and export orders as CSV."""
    changelist = "/admin/checkout/order/"
    answer = staff_client.post(
        changelist, {"action": "refund_in_full", "_selected_action": [paid.pk]}
    )
    assert answer.status_code == 302
    paid.refresh_from_db()
    assert paid.status == Order.Status.REFUNDED
    assert Payment.objects.get(order=paid).refunded_minor == 17800
    export = staff_client.post(
        changelist, {"action": "export_csv", "_selected_action": [paid.pk]}
    )
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:4] == ["order", "number", "created_at", "status"]
    assert rows[1][3] == "refunded"
    assert rows[1][7:11] == ["17800", "EUR", "17800", "17800"]


def test_a_refund_returns_units_to_stock_only_when_asked_and_once(
    staff_client, paid, mic
):
    """A partial refund leaves the stock alone; one with "Return the units to
    stock" gives the order's two units back; the list action afterwards
    returns nothing more."""
    url = f"/admin/checkout/order/{paid.pk}/refund/"
    staff_client.post(url, {"amount": "10.00", "reason": "late"})
    mic.refresh_from_db()
    assert mic.stock_available == 8
    answer = staff_client.post(
        url, {"amount": "20.00", "reason": "returned", "restock": "on"}
    )
    assert answer.status_code == 302
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert paid.holds.get().status == "restocked"
    staff_client.post(
        "/admin/checkout/order/", {"action": "restock", "_selected_action": [paid.pk]}
    )
    mic.refresh_from_db()
    assert mic.stock_available == 10
    assert Payment.objects.get(order=paid).refunded_minor == 3000


def test_an_unpaid_order_cannot_be_restocked(stripe_settings, pinned, mic, guest):
    """A reserved order's units are held, not sold: nothing to restock."""
    from checkout.exceptions import NotRefundable

    order = services.order_create(
        show=pinned,
        buyer=guest,
        variant_id=mic.pk,
        quantity=1,
        idempotency_key=new_key(),
    ).order
    with pytest.raises(NotRefundable):
        services.order_restock(order=order)
    mic.refresh_from_db()
    assert mic.stock_available == 9
