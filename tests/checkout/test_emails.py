"""The buyer's emails: one confirmation per paid order, in the language the
buyer ordered in, and a note when the payment is refunded."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import translation

from checkout import emails, services
from checkout.models import Order
from tests.checkout.conftest import new_key, sign
from tests.checkout.test_webhooks import SECRET, deliver, events_for

pytestmark = pytest.mark.django_db(transaction=True)


def html_part(message: mail.EmailMessage) -> str:
    assert isinstance(message, mail.EmailMultiAlternatives)
    [(content, kind)] = message.alternatives
    assert kind == "text/html"
    return str(content)


def place(show, buyer, variant, *, language: str = "en", quantity: int = 1) -> Order:
    with translation.override(language):
        return services.order_create(
            show=show,
            buyer=buyer,
            variant_id=variant.pk,
            quantity=quantity,
            idempotency_key=new_key(),
        ).order


def test_a_paid_order_mails_its_confirmation_once(
    settings, stripe_settings, pinned, mic, guest
):
    """Paying sends the guest one confirmation with the order reference, the
    line and the total; a replayed success webhook sends nothing more."""
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    order = place(pinned, guest, mic, quantity=2)
    assert order.language == "en"
    payload = events_for(order)["succeeded"]
    for _ in range(2):
        assert deliver(payload, sign(payload, SECRET)).status_code == 200

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["guest@example.test"]
    assert message.subject == f"Your order from {pinned.brand.name} is confirmed"
    assert emails.order_reference(order) in message.body
    assert "2 \N{MULTIPLICATION SIGN} Desk Mic" in message.body
    assert "€178.00" in message.body
    assert f"/shows/{pinned.slug}/" in message.body
    assert "€178.00" in html_part(message)


def test_the_confirmation_is_written_in_the_buyers_language(
    stripe_settings, pinned, mic, guest
):
    """An order placed in German is confirmed in German, with German money."""
    order = place(pinned, guest, mic, language="de")
    assert order.language == "de"
    services.order_pay(order=order, buyer=guest, method="test")

    [message] = mail.outbox
    assert "89,00\xa0€" in message.body
    assert "Bestellung" in message.subject
    assert "Bestellung" in message.body


def test_user_text_is_escaped_in_the_html_email(stripe_settings, pinned, mic, guest):
    """A product name with markup reaches the HTML part escaped."""
    mic.product.name = "<b>Desk</b> Mic"
    mic.product.save(update_fields=["name"])
    order = place(pinned, guest, mic)
    services.order_pay(order=order, buyer=guest, method="test")

    html = html_part(mail.outbox[0])
    assert "<b>Desk</b>" not in html
    assert "&lt;b&gt;Desk&lt;/b&gt; Mic" in html


def test_a_full_refund_mails_the_buyer(stripe_settings, pinned, mic, guest):
    """A partial refund sends nothing; the refund that completes it does."""
    order = place(pinned, guest, mic, quantity=2)
    services.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    services.order_refund(order=order, amount_minor=1000)
    assert len(mail.outbox) == 1
    services.order_refund(order=order)

    assert len(mail.outbox) == 2
    refund = mail.outbox[1]
    assert refund.subject == f"Your payment to {pinned.brand.name} was refunded"
    assert "€178.00" in refund.body


def test_a_failing_mail_server_does_not_undo_the_payment(
    settings, stripe_settings, pinned, mic, guest
):
    """SMTP that refuses the connection is logged; the order stays paid."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens, the connection is refused
    settings.EMAIL_TIMEOUT = 2
    order = place(pinned, guest, mic)
    services.order_pay(order=order, buyer=guest, method="test")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert emails.order_email_send(order_id=order.pk) is False
