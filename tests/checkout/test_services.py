"""Checkout services against PostgreSQL and localstripe."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import services
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    EmailRequired,
    IdempotencyKeyInvalid,
    NotPinned,
    OverBuyerLimit,
    PaymentDeclined,
    QuantityInvalid,
    RefundTooLarge,
    ShowNotLive,
    SoldOut,
    UnknownVariant,
)
from checkout.models import Order, OrderTransition, Payment, Refund, StockHold
from tests.checkout.conftest import new_key, of_type

pytestmark = pytest.mark.django_db(transaction=True)

S = Order.Status


def stock(variant) -> int:
    variant.refresh_from_db()
    return variant.stock_available


def place(show, buyer, variant, quantity=1, key=None, **extra):
    return services.order_create(
        show=show,
        buyer=buyer,
        variant_id=variant.pk,
        quantity=quantity,
        idempotency_key=key or new_key(),
        **extra,
    )


def test_order_create_holds_stock_and_opens_a_payment_intent(
    stripe_settings, pinned, mic, guest, sent
):
    """A Buy takes the units into a hold, starts the order reserved, opens a
    PaymentIntent for the total and tells the room the new stock."""
    placed = place(pinned, guest, mic, quantity=2)
    order = placed.order
    assert order.status == S.RESERVED
    assert (order.total_minor, order.currency) == (17800, "EUR")
    assert stock(mic) == 8
    hold = StockHold.objects.get(order=order)
    assert hold.quantity == 2
    assert hold.status == StockHold.Status.HELD
    assert hold.expires_at > timezone.now() + timedelta(seconds=290)
    payment = Payment.objects.get(order=order)
    intent = gateway.intent_retrieve(payment.intent_id)
    assert intent.amount_minor == 17800
    assert intent.order_ref == str(order.public_id)
    assert placed.client_secret.startswith(payment.intent_id)
    assert of_type(sent, "stock.changed") == [
        {
            "type": "stock.changed",
            "variant_id": mic.pk,
            "product_id": mic.product_id,
            "stock_available": 8,
        }
    ]
    assert [e["status"] for e in of_type(sent, "order.updated")] == ["reserved"]


def test_same_idempotency_key_returns_the_same_order(
    stripe_settings, pinned, mic, guest
):
    """Repeating a Buy with its key gives the same order, one hold, one intent."""
    key = new_key()
    first = place(pinned, guest, mic, key=key)
    again = place(pinned, guest, mic, key=key)
    assert again.order.pk == first.order.pk
    assert not again.created
    assert again.client_secret == first.client_secret
    assert Order.objects.count() == 1
    assert stock(mic) == 9


def test_idempotency_key_is_scoped_to_the_buyer(stripe_settings, pinned, mic, guest):
    """Another buyer reusing a key gets their own order, never someone else's."""
    key = new_key()
    first = place(pinned, guest, mic, key=key)
    other = services.Buyer(
        user=None, session_key="other-session", email="o@example.test"
    )
    second = place(pinned, other, mic, key=key)
    assert second.order.pk != first.order.pk


def test_sold_out_changes_nothing(stripe_settings, pinned, mic, guest, sent):
    """Asking for more than is left raises SoldOut; stock and orders stay."""
    mic.__class__.objects.filter(pk=mic.pk).update(stock_available=1)
    mic.refresh_from_db()
    with pytest.raises(SoldOut) as caught:
        place(pinned, guest, mic, quantity=2)
    assert caught.value.code == "sold_out"
    assert stock(mic) == 1
    assert Order.objects.count() == 0
    assert sent == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"quantity": 0}, QuantityInvalid),
        ({"quantity": 6}, OverBuyerLimit),
        ({"key": "short"}, IdempotencyKeyInvalid),
    ],
)
def test_invalid_orders_are_refused(stripe_settings, pinned, mic, guest, change, error):
    """Bad quantities, a quantity over the per-buyer limit and a bad key are refused."""
    with pytest.raises(error):
        place(pinned, guest, mic, **change)
    assert stock(mic) == 10
    assert Order.objects.count() == 0


def test_guest_needs_an_email(stripe_settings, pinned, mic):
    """A guest without a valid email address cannot buy."""
    nobody = services.Buyer(user=None, session_key="s1", email="not-an-email")
    with pytest.raises(EmailRequired):
        place(pinned, nobody, mic)


def test_unpinned_unknown_and_not_live_are_refused(
    stripe_settings, show, live_show, products, guest, host
):
    """Only a pinned product of a live show can be bought."""
    from shows.models import Variant
    from shows.services import room

    mic = products[1].variants.get()
    with pytest.raises(NotPinned):
        place(live_show, guest, mic)
    with pytest.raises(UnknownVariant):
        place(live_show, guest, Variant(pk=987654))
    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    from shows.services import show_end

    show_end(show=live_show)
    live_show.refresh_from_db()
    with pytest.raises(ShowNotLive):
        place(live_show, guest, mic)


def test_test_method_pays_the_order_and_sells_the_hold(
    stripe_settings, pinned, mic, guest, sent
):
    """Server-confirmed test payment: the order is paid, the hold consumed, the
    room hears of the purchase without personal data."""
    order = place(pinned, guest, mic).order
    result = services.order_pay(order=order, buyer=guest, method="test")
    assert result.outcome == "paid"
    order.refresh_from_db()
    assert order.status == S.PAID
    assert order.paid_at is not None
    assert StockHold.objects.get(order=order).status == StockHold.Status.CONSUMED
    assert stock(mic) == 9
    payment = Payment.objects.get(order=order)
    assert payment.status == "succeeded"
    assert payment.captured_minor == 8900
    (made,) = of_type(sent, "purchase.made")
    assert made["product_name"] == "Desk Mic"
    assert made["quantity"] == 1
    assert "guest@example.test" not in str(made)


def test_purchase_city_only_when_the_buyer_opted_in(
    stripe_settings, pinned, mic, guest, sent
):
    """The city reaches the room only from a buyer who chose to share it."""
    shared = place(pinned, guest, mic, proof_city="Berlin").order
    services.order_pay(order=shared, buyer=guest, method="test")
    assert of_type(sent, "purchase.made")[-1]["city"] == "Berlin"
    quiet = place(pinned, guest, mic).order
    services.order_pay(order=quiet, buyer=guest, method="test")
    assert of_type(sent, "purchase.made")[-1]["city"] is None


def test_declined_card_fails_the_order_and_returns_stock(
    stripe_settings, pinned, mic, guest, sent
):
    """The …0341 card is declined: the order fails and its unit is back."""
    order = place(pinned, guest, mic).order
    with pytest.raises(PaymentDeclined):
        services.order_pay(
            order=order,
            buyer=guest,
            method="test",
            test_payment_method="pm_card_chargeCustomerFail",
        )
    order.refresh_from_db()
    assert order.status == S.FAILED
    assert stock(mic) == 10
    assert StockHold.objects.get(order=order).status == StockHold.Status.RELEASED
    assert of_type(sent, "stock.changed")[-1]["stock_available"] == 10


def test_three_d_secure_is_handed_to_the_browser(stripe_settings, pinned, mic, guest):
    """A card that needs 3-D Secure comes back ``requires_action`` with the
    client secret; once the buyer authenticates, the payment is applied."""
    import stripe

    client = stripe.StripeClient("sk_test_x", base_addresses={"api": stripe_settings})
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {
                "number": "4000002760003184",
                "exp_month": 12,
                "exp_year": 2030,
                "cvc": "123",
            },
        }
    )
    order = place(pinned, guest, mic).order
    result = services.order_pay(
        order=order, buyer=guest, method="test", test_payment_method=pm.id
    )
    assert result.outcome == "requires_action"
    assert result.client_secret.startswith(Payment.objects.get(order=order).intent_id)
    order.refresh_from_db()
    assert order.status == S.RESERVED
    # What Stripe.js does in the browser (localstripe's authentication endpoint).
    import requests

    answer = requests.post(
        f"{stripe_settings}/v1/payment_intents/"
        f"{Payment.objects.get(order=order).intent_id}/_authenticate?success=true",
        json={"client_secret": result.client_secret, "key": "pk_test_showfloor"},
        timeout=10,
    )
    assert answer.status_code == 200
    services.order_mark_paid(
        intent=gateway.intent_retrieve(Payment.objects.get(order=order).intent_id)
    )
    order.refresh_from_db()
    assert order.status == S.PAID


def test_saved_card_pays_in_one_step(stripe_settings, pinned, mic, make_user):
    """A buyer who saved their card pays the next order with it, server-side."""
    user = make_user("Returning Rita")
    buyer = services.Buyer(user=user)
    first = place(pinned, buyer, mic, save_card=True).order
    services.order_pay(order=first, buyer=buyer, method="test")
    card = user.saved_card
    card.refresh_from_db()
    assert card.payment_method_id.startswith("pm_")
    assert card.last4 == "4242"
    second = place(pinned, buyer, mic).order
    result = services.order_pay(order=second, buyer=buyer, method="saved")
    assert result.outcome == "paid"
    second.refresh_from_db()
    assert second.status == S.PAID


def test_expired_hold_returns_stock_and_cancels_the_intent(
    stripe_settings, pinned, mic, guest, sent
):
    """The sweeper expires a hold past its time: stock back, intent cancelled."""
    order = place(pinned, guest, mic, quantity=3).order
    assert services.order_expire_due() == 0
    StockHold.objects.filter(order=order).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.order_expire_due() == 1
    order.refresh_from_db()
    assert order.status == S.EXPIRED
    assert stock(mic) == 10
    assert (
        gateway.intent_retrieve(Payment.objects.get(order=order).intent_id).status
        == "canceled"
    )
    assert services.order_expire_due() == 0
    assert of_type(sent, "order.updated")[-1]["status"] == "expired"


def test_late_payment_with_stock_left_takes_it_again(
    stripe_settings, pinned, mic, guest
):
    """A payment that lands after the hold expired takes the stock again if any."""
    order = place(pinned, guest, mic).order
    intent_id = Payment.objects.get(order=order).intent_id
    gateway.intent_confirm(intent_id=intent_id, payment_method_id="pm_card_visa")
    StockHold.objects.filter(order=order).update(expires_at=timezone.now())
    # Expire while the success has not been recorded yet: the sweeper finds the
    # intent succeeded when cancelling and records it.
    services.order_expire_due()
    order.refresh_from_db()
    assert order.status == S.PAID
    assert stock(mic) == 9


def test_late_payment_after_stock_is_gone_is_refunded(
    stripe_settings, pinned, mic, guest, monkeypatch
):
    """A payment that succeeds after its hold expired, when the units were sold
    to someone else meanwhile, is refunded in full automatically."""
    order = place(pinned, guest, mic).order
    intent_id = Payment.objects.get(order=order).intent_id
    StockHold.objects.filter(order=order).update(expires_at=timezone.now())

    def unreachable(intent_id):
        raise gateway.GatewayError("stripe unreachable")

    # Stripe is unreachable while the sweeper expires it: the intent stays open.
    with monkeypatch.context() as patch:
        patch.setattr(gateway, "intent_cancel", unreachable)
        assert services.order_expire_due() == 1
    assert stock(mic) == 10
    mic.__class__.objects.filter(pk=mic.pk).update(stock_available=0)  # sold since
    succeeded = gateway.intent_confirm(
        intent_id=intent_id, payment_method_id="pm_card_visa"
    )
    assert succeeded.status == "succeeded"
    services.order_mark_paid(intent=succeeded)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    payment = Payment.objects.get(order=order)
    assert payment.refunded_minor == payment.captured_minor == 8900
    refund = Refund.objects.get(payment=payment)
    assert refund.automatic
    assert refund.amount_minor == 8900
    assert stock(mic) == 0
    # The same success again (a webhook) changes nothing.
    services.order_mark_paid(intent=succeeded)
    assert Refund.objects.filter(payment=payment).count() == 1


def test_partial_and_full_refunds_never_exceed_captured(
    stripe_settings, pinned, mic, guest
):
    """Refunds go through the gateway and together never exceed the capture."""
    order = place(pinned, guest, mic, quantity=2).order
    services.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    services.order_refund(order=order, amount_minor=5000)
    order.refresh_from_db()
    assert order.status == S.PAID
    with pytest.raises(RefundTooLarge):
        services.order_refund(order=order, amount_minor=12801)
    services.order_refund(order=order)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    assert sorted(Refund.objects.values_list("amount_minor", flat=True)) == [
        5000,
        12800,
    ]
    assert Payment.objects.get(order=order).refunded_minor == 17800


def test_cancel_returns_stock_at_once(stripe_settings, pinned, mic, guest):
    """Closing the sheet cancels the reserved order and its intent."""
    order = place(pinned, guest, mic, quantity=2).order
    services.order_cancel(order=order)
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert stock(mic) == 10
    assert (
        gateway.intent_retrieve(Payment.objects.get(order=order).intent_id).status
        == "canceled"
    )
    assert list(
        OrderTransition.objects.filter(order=order).values_list("to_status", flat=True)
    ) == ["reserved", "cancelled"]


@pytest.mark.slow
def test_sale_limit_holds_when_one_buyer_sends_many_orders_at_once(
    stripe_settings, postgres, pinned, mic, host, make_user
):
    """Eight concurrent orders (different keys) from one buyer in a sale with a
    limit of two: exactly two units are reserved, the rest are ``over_limit``."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    services.sale_start(
        show=pinned,
        user=host,
        product_id=mic.product_id,
        price_minor=4900,
        duration_seconds=60,
        per_buyer_limit=2,
    )
    buyer = services.Buyer(user=make_user("Eager Eve"))

    def attempt(_):
        try:
            place(pinned, buyer, mic)
            return "ok"
        except OverBuyerLimit:
            return "over_limit"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert sorted(outcomes) == ["ok", "ok"] + ["over_limit"] * 6
    assert Order.objects.filter(buyer=buyer.user, sale__isnull=False).count() == 2
    assert stock(mic) == 8
