"""The brand's orders in the workspace (frontend/workspace_orders.py over
checkout/services/brand_orders.py): who may see and change them, filters,
fulfilment and refunds with their errors next to the field, bulk packing and
the formula-safe CSV."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.core import mail

from checkout import services
from checkout.models import Order, Refund
from checkout.services import brand_orders
from shows import services as show_services
from shows.models import AuditEntry
from shows.services.workspace import NotAllowed, NotAMember
from tests.checkout.conftest import mic, new_key, pinned, run_tasks  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paid(stripe_settings, pinned, mic):  # noqa: F811
    def make(email: str = "buyer@example.test") -> Order:
        guest = services.Buyer(user=None, session_key=uuid.uuid4().hex, email=email)
        order = services.order_create(
            show=pinned,
            buyer=guest,
            variant_id=mic.pk,
            quantity=1,
            idempotency_key=new_key(),
        ).order
        services.order_pay(order=order, buyer=guest, method="test")
        order.refresh_from_db()
        return order

    return make


@pytest.fixture
def owner(make_user, brand):
    user = make_user("Olga Owner")
    show_services.membership_set(brand=brand, user=user, role="owner")
    return user


def test_each_role_may_or_may_not_see_and_change_orders(
    client, paid, brand, owner, host, moderator, make_user
):
    """Owners and hosts: the list, the order, its actions. A moderator: 403
    in the page and ``NotAllowed`` in the service. Another brand's member:
    404 for every orders URL, ``NotAMember`` in the service."""
    order = paid()
    urls = [
        f"/brand/{brand.slug}/orders/",
        f"/brand/{brand.slug}/orders/?format=csv",
        f"/brand/{brand.slug}/orders/{order.public_id}/",
    ]
    for user in (owner, host):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 200, (user, url)
    client.force_login(moderator)
    for url in urls:
        assert client.get(url).status_code == 403, url
    refused = client.post(urls[2], {"action": "pack"})
    assert refused.status_code == 403
    with pytest.raises(NotAllowed):
        brand_orders.brand_order_pack(user=moderator, brand=brand, order=order)
    stranger = make_user("Sam Stranger")
    other = show_services.brand_create(name="Other", slug="other")
    show_services.membership_set(brand=other, user=stranger, role="owner")
    client.force_login(stranger)
    for url in urls:
        assert client.get(url).status_code == 404, url
    with pytest.raises(NotAMember):
        brand_orders.brand_orders(user=stranger, brand=brand)
    # Their own workspace does not reach our order either.
    assert client.get(f"/brand/other/orders/{order.public_id}/").status_code == 404
    order.refresh_from_db()
    assert order.packed_at is None


def test_the_list_filters_and_exports_formula_safe_csv(client, paid, brand, host):
    first = paid("=1+2@example.test")
    second = paid()
    services.order_refund(order=second, reason="test")
    client.force_login(host)
    listed = client.get(f"/brand/{brand.slug}/orders/?status=paid").content.decode()
    assert first.reference in listed
    assert second.reference not in listed
    bad = client.get(f"/brand/{brand.slug}/orders/?since=yesterday&status=nope")
    assert "Enter dates as YYYY-MM-DD." in bad.content.decode()
    assert "Choose a status from the list." in bad.content.decode()
    export = client.get(f"/brand/{brand.slug}/orders/?format=csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0] == brand_orders.CSV_COLUMNS
    emails = {row[5] for row in rows[1:]}
    assert "'=1+2@example.test" in emails
    assert len(rows) == 3


def test_pack_ship_and_deliver_with_errors_next_to_the_field(
    client,
    paid,
    brand,
    host,
    settings,
    run_tasks,  # noqa: F811
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    order = paid()
    client.force_login(host)
    url = f"/brand/{brand.slug}/orders/{order.public_id}/"
    assert client.post(url, {"action": "pack"}).status_code == 302
    refused = client.post(
        url,
        {"action": "ship", "carrier": "DHL", "tracking_url": "javascript:alert(1)"},
    )
    assert refused.status_code == 400
    assert 'id="ship-error"' in refused.content.decode()
    order.refresh_from_db()
    assert order.status == "paid"
    assert order.shipped_at is None
    shipped = client.post(
        url,
        {
            "action": "ship",
            "carrier": "DHL",
            "tracking_number": "00340434",
            "tracking_url": "https://track.example/00340434",
        },
    )
    assert shipped.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.carrier) == ("fulfilled", "DHL")
    run_tasks()
    assert any("00340434" in message.body for message in mail.outbox)
    assert client.post(url, {"action": "deliver"}).status_code == 302
    order.refresh_from_db()
    assert order.delivered_at is not None
    page = client.get(url).content.decode()
    assert "Delivered" in page
    assert "Shipped" in page


def test_a_partial_refund_is_audited_and_a_bad_amount_changes_nothing(
    client,
    paid,
    brand,
    owner,
    mic,  # noqa: F811
):
    order = paid()
    client.force_login(owner)
    url = f"/brand/{brand.slug}/orders/{order.public_id}/"
    for amount in ("abc", "0", "1.234", "500.00"):
        answer = client.post(url, {"action": "refund", "amount": amount})
        assert answer.status_code == 400, amount
        assert "errorlist" in answer.content.decode()
    assert not Refund.objects.exists()
    done = client.post(
        url, {"action": "refund", "amount": "10,00", "reason": "scratched"}
    )
    assert done.status_code == 302
    (refund,) = Refund.objects.all()
    assert refund.amount_minor == 1000
    entry = AuditEntry.objects.get(action="order.refund")
    assert entry.actor == owner
    assert entry.target == order.reference
    assert entry.detail["amount_minor"] == 1000
    mic.refresh_from_db()
    assert mic.stock_available == 9, "no restock unless asked"


def test_bulk_packing_packs_what_it_can_and_says_why_not(client, paid, brand, host):
    ready, cancelled_first = paid(), paid()
    services.order_refund(order=cancelled_first, reason="test")
    client.force_login(host)
    answer = client.post(
        f"/brand/{brand.slug}/orders/bulk/",
        {"action": "pack", "order": [ready.public_id, cancelled_first.public_id]},
        follow=True,
    )
    page = answer.content.decode()
    assert "1 order updated." in page
    assert cancelled_first.reference in page
    ready.refresh_from_db()
    assert ready.packed_at is not None
