"""The buyer's emails: sent by the background worker, never in the request or
the webhook; once each, however often asked for or run; retried while the mail
server fails; written in the language the buyer ordered in."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from smtplib import SMTPServerDisconnected
from typing import ClassVar

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.utils import timezone, translation
from django_tasks.backends.database.models import DBTaskResult

from checkout import emails, services
from checkout.models import Order, OrderEmail
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


def paid(show, buyer, variant, **kwargs) -> Order:
    order = place(show, buyer, variant, **kwargs)
    services.order_pay(order=order, buyer=buyer, method="test")
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order


def waiting() -> list[DBTaskResult]:
    """The tasks not run yet, due or not."""
    return list(DBTaskResult.objects.filter(status="READY"))


def the_clock_moves_on() -> None:
    """Every task waiting for a later time is due now."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


class FlakyBackend(BaseEmailBackend):
    """A mail server that drops the connection while ``down`` is set."""

    down: ClassVar[bool] = True

    def send_messages(self, email_messages):
        if FlakyBackend.down:
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        mail.outbox.extend(email_messages)
        return len(email_messages)


class SlowBackend(BaseEmailBackend):
    """A mail server that takes a while to accept a message."""

    def send_messages(self, email_messages):
        time.sleep(0.3)
        mail.outbox.extend(email_messages)
        return len(email_messages)


def test_a_paid_order_mails_its_confirmation_once(
    settings, stripe_settings, pinned, mic, guest, run_tasks
):
    """Paying sends nothing in the webhook; the worker then sends the guest one
    confirmation with the order's number, the line and the total; a replayed
    success webhook and a second worker run send nothing more."""
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    order = place(pinned, guest, mic, quantity=2)
    assert order.language == "en"
    payload = events_for(order)["succeeded"]
    for _ in range(2):
        assert deliver(payload, sign(payload, SECRET)).status_code == 200
    assert mail.outbox == []

    assert run_tasks() == 1
    assert run_tasks() == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    order.refresh_from_db()
    assert message.to == ["guest@example.test"]
    assert message.subject == f"Your order from {pinned.brand.name} is confirmed"
    assert order.reference == f"#{order.number}"
    assert f"Order: {order.reference}\n" in message.body
    assert emails.order_reference(order) == order.reference
    assert "2 \N{MULTIPLICATION SIGN} Desk Mic" in message.body
    assert "€178.00" in message.body
    assert f"/shows/{pinned.slug}/" in message.body
    assert "€178.00" in html_part(message)
    record = OrderEmail.objects.get(order=order)
    assert (record.kind, record.key, record.attempts) == ("paid", "", 1)
    assert record.sent_at is not None
    assert record.last_error == ""


def test_the_confirmation_is_written_in_the_buyers_language(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """An order placed in German is confirmed in German, with German money,
    whatever language the worker runs in."""
    order = place(pinned, guest, mic, language="de")
    assert order.language == "de"
    services.order_pay(order=order, buyer=guest, method="test")
    run_tasks()

    [message] = mail.outbox
    assert "89,00\xa0€" in message.body
    assert "Bestellung" in message.subject
    assert "Bestellung" in message.body


def test_user_text_is_escaped_in_the_html_email(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """A product name with markup reaches the HTML part escaped."""
    mic.product.name = "<b>Desk</b> Mic"
    mic.product.save(update_fields=["name"])
    paid(pinned, guest, mic)
    run_tasks()

    html = html_part(mail.outbox[0])
    assert "<b>Desk</b>" not in html
    assert "&lt;b&gt;Desk&lt;/b&gt; Mic" in html


def test_a_full_refund_mails_the_buyer(stripe_settings, pinned, mic, guest, run_tasks):
    """A partial refund sends nothing; the refund that completes it does."""
    order = paid(pinned, guest, mic, quantity=2)
    services.order_refund(order=order, amount_minor=1000)
    run_tasks()
    assert len(mail.outbox) == 1
    services.order_refund(order=order)
    assert len(mail.outbox) == 1
    run_tasks()

    assert len(mail.outbox) == 2
    refund = mail.outbox[1]
    assert refund.subject == f"Your payment to {pinned.brand.name} was refunded"
    assert "€178.00" in refund.body
    assert [e.kind for e in OrderEmail.objects.filter(order=order)] == [
        "paid",
        "refunded",
    ]


def test_asking_again_for_a_sent_email_does_nothing(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """Once sent, the same email asked for again records and enqueues nothing;
    asked for twice before the worker runs, it is still sent once."""
    order = paid(pinned, guest, mic)
    assert emails.order_email_send(order_id=order.pk) is True
    assert len(waiting()) == 2
    run_tasks()
    assert len(mail.outbox) == 1

    assert emails.order_email_send(order_id=order.pk) is False
    assert emails.order_email_send(order_id=order.pk, kind="paid") is False
    assert waiting() == []
    assert OrderEmail.objects.filter(order=order).count() == 1
    assert run_tasks() == 0
    assert len(mail.outbox) == 1


def test_an_email_being_sent_by_another_worker_is_not_sent_again(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """A row another worker has claimed (and, say, died while sending) is
    skipped: at most once."""
    order = paid(pinned, guest, mic)
    OrderEmail.objects.filter(order=order).update(last_error=emails.SENDING)
    run_tasks()
    assert mail.outbox == []
    assert OrderEmail.objects.get(order=order).sent_at is None


def test_two_workers_racing_on_one_email_send_it_once(
    settings, stripe_settings, pinned, mic, guest
):
    """Two threads run the same email's task at the same instant against a slow
    mail server: one message, one attempt recorded."""
    settings.EMAIL_BACKEND = "tests.checkout.test_emails.SlowBackend"
    order = paid(pinned, guest, mic)
    email_id = OrderEmail.objects.get(order=order).pk
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            start.wait()
            outcomes.append(emails.order_email_attempt(email_id=email_id).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(mail.outbox) == 1
    record = OrderEmail.objects.get(pk=email_id)
    assert record.attempts == 1
    assert record.sent_at is not None


def test_a_failing_mail_server_is_retried_until_it_works(
    settings, stripe_settings, pinned, mic, guest, run_tasks
):
    """The payment never waits for the mail server. A failed attempt is
    recorded and tried again 30 s later; once the server is back the email goes
    out, and the row tells how many attempts it took."""
    settings.EMAIL_BACKEND = "tests.checkout.test_emails.FlakyBackend"
    FlakyBackend.down = True
    order = paid(pinned, guest, mic)

    assert run_tasks() == 1
    record = OrderEmail.objects.get(order=order)
    assert record.sent_at is None
    assert record.attempts == 1
    assert record.last_error.startswith("SMTPServerDisconnected: Connection")
    [retry] = waiting()
    assert retry.args_kwargs["kwargs"] == {"email_id": record.pk}
    due_in = retry.run_after - timezone.now()
    assert timedelta(seconds=25) < due_in <= timedelta(seconds=30)
    assert run_tasks() == 0  # not due yet

    the_clock_moves_on()
    assert run_tasks() == 1
    assert OrderEmail.objects.get(order=order).attempts == 2
    [retry] = waiting()
    assert retry.run_after - timezone.now() > timedelta(seconds=55)

    FlakyBackend.down = False
    the_clock_moves_on()
    assert run_tasks() == 1
    [message] = mail.outbox
    assert message.to == ["guest@example.test"]
    record.refresh_from_db()
    assert record.sent_at is not None
    assert (record.attempts, record.last_error) == (3, "")
    assert waiting() == []


def test_the_worker_gives_up_after_eight_attempts_over_about_an_hour(
    settings, stripe_settings, pinned, mic, guest, run_tasks
):
    """Eight attempts, the last about an hour after the first; then the error
    stays on the row and nothing is retried."""
    assert emails.MAX_ATTEMPTS == 8
    waits = sum((emails.retry_delay(n) for n in range(1, 8)), timedelta())
    assert timedelta(minutes=55) < waits < timedelta(minutes=70)
    settings.EMAIL_BACKEND = "tests.checkout.test_emails.FlakyBackend"
    FlakyBackend.down = True
    order = paid(pinned, guest, mic)

    for _ in range(8):
        assert run_tasks() == 1
        the_clock_moves_on()
    assert run_tasks() == 0
    record = OrderEmail.objects.get(order=order)
    assert (record.attempts, record.sent_at) == (8, None)
    assert "SMTPServerDisconnected" in record.last_error
    assert mail.outbox == []


def test_the_shipped_email_gives_the_tracking_in_german(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """Asked for by the fulfilment service: carrier, tracking number, a link to
    the tracking page and the parcel's lines, in the buyer's German."""
    order = paid(pinned, guest, mic, language="de", quantity=2)
    run_tasks()
    url = "https://track.example.test/?n=00340434161094042557"
    Order.objects.filter(pk=order.pk).update(
        carrier="DHL", tracking_number="00340434161094042557", tracking_url=url
    )

    assert emails.order_email_send(order_id=order.pk, kind="shipped") is True
    assert len(mail.outbox) == 1
    run_tasks()

    message = mail.outbox[1]
    assert message.subject == (
        f"Deine Bestellung {order.reference} bei {pinned.brand.name} ist unterwegs"
    )
    assert "Versanddienst: DHL" in message.body
    assert "Sendungsnummer: 00340434161094042557" in message.body
    assert f"Hier kannst du dein Paket verfolgen:\n{url}\n" in message.body
    assert "2 \N{MULTIPLICATION SIGN} Desk Mic" in message.body
    html = html_part(message)
    assert f'<a href="{url.replace("&", "&amp;")}">' in html
    assert '<html lang="de">' in html
    assert emails.order_email_send(order_id=order.pk, kind="shipped") is False


def test_a_tracking_url_that_is_not_a_web_address_is_not_linked(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """Only http(s) addresses become links."""
    order = paid(pinned, guest, mic)
    Order.objects.filter(pk=order.pk).update(
        carrier="DHL", tracking_url="javascript:alert(1)"
    )
    emails.order_email_send(order_id=order.pk, kind="shipped")
    run_tasks()

    shipped = mail.outbox[1]
    assert "javascript" not in shipped.body
    assert "javascript" not in html_part(shipped)
    assert "Carrier: DHL" in shipped.body


def test_the_cancelled_email_says_the_refund_is_on_its_way_in_german(
    stripe_settings, pinned, mic, guest, run_tasks
):
    """The buyer cancelled: the note names the order and the amount coming
    back, in German."""
    order = paid(pinned, guest, mic, language="de")
    assert emails.order_email_send(order_id=order.pk, kind="cancelled") is True
    run_tasks()

    message = mail.outbox[1]
    assert message.subject == (
        f"Deine Bestellung {order.reference} bei {pinned.brand.name} ist storniert"
    )
    assert f"Du hast deine Bestellung {order.reference} bei" in message.body
    assert "Deine Zahlung von 89,00\xa0€ wird erstattet." in message.body
    assert "89,00\xa0€ wird erstattet." in html_part(message)


def test_an_order_without_an_email_for_its_status_asks_for_nothing(
    stripe_settings, pinned, mic, guest
):
    """A reserved order has no email of its status; nothing is recorded."""
    order = place(pinned, guest, mic)
    assert emails.order_email_send(order_id=order.pk) is False
    assert not OrderEmail.objects.filter(order=order).exists()
    assert waiting() == []
