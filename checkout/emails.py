"""The buyer's emails, written in the language the buyer ordered in: the order
confirmation when an order is paid, a note when its payment is refunded, the
parcel's tracking when it ships, and a note when the buyer cancelled.

Nothing is sent here. ``order_email_send`` records the email (an
``OrderEmail`` row, unique per order, kind and key) and enqueues
``checkout.tasks.order_email_deliver``, in one transaction; the background
worker renders and sends it (``order_email_attempt`` below), so a slow or
failing mail server never holds up a buyer's request or Stripe's webhook, and
a rolled-back payment mails nobody.

Once: asking again for an email already sent does nothing (the unique row
says so). The worker claims the row with one conditional update (an
in-progress marker in ``last_error``) before it talks to the mail server, so
two workers running the same task send it at most once. A worker that dies in
the middle of the SMTP conversation leaves the marker, and the email is not
sent again: at most once, because a buyer who gets two "refunded" notes can
think they got two refunds, while a lost note still leaves the order in the
sheet, their Stripe receipt and the admin, where the stuck marker shows
(django-tasks does not run a task again whose worker died either). A mail
server that refuses is another matter: the attempt is recorded and retried
with backoff (``RETRY_DELAYS``), eight attempts over about an hour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from checkout.models import Order, OrderEmail
from checkout.money import Money
from checkout.order_links import order_link_url

logger = logging.getLogger(__name__)

# The order statuses whose transition mails the buyer (``services.orders._move``
# asks for these). Shipped and cancelled emails are asked for by name.
TEMPLATES = {
    Order.Status.PAID: "checkout/email/order_paid",
    Order.Status.REFUNDED: "checkout/email/order_refunded",
}
KIND_TEMPLATES = {
    OrderEmail.Kind.PAID: "checkout/email/order_paid",
    OrderEmail.Kind.REFUNDED: "checkout/email/order_refunded",
    OrderEmail.Kind.SHIPPED: "checkout/email/order_shipped",
    OrderEmail.Kind.CANCELLED: "checkout/email/order_cancelled",
}
KIND_OF_STATUS = {
    Order.Status.PAID: OrderEmail.Kind.PAID,
    Order.Status.REFUNDED: OrderEmail.Kind.REFUNDED,
}

# Seconds to wait before the attempt after each failed one: 30 s doubling to
# 32 min. The eighth and last attempt comes about 64 minutes after the first,
# long enough for a mail server's restart or a provider's short outage.
RETRY_DELAYS = (30, 60, 120, 240, 480, 960, 1920)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# ``last_error`` while a worker talks to the mail server (the claim).
SENDING = "sending"


@dataclass(frozen=True)
class Attempt:
    """What one run of the worker's task did: ``sent``, ``skipped`` (sent,
    being sent, gone or no address), ``retry`` (the mail server failed; try
    again after ``retry_delay(attempts)``) or ``failed`` (the last attempt
    failed)."""

    outcome: str
    attempts: int = 0


def order_reference(order: Order) -> str:
    """The short order reference shown to buyers and hosts (``Order.reference``)."""
    return order.reference


def _subject(kind: OrderEmail.Kind, order: Order) -> str:
    values = {"brand": order.show.brand.name, "reference": order.reference}
    if kind == OrderEmail.Kind.PAID:
        return _("Your order from %(brand)s is confirmed") % values
    if kind == OrderEmail.Kind.REFUNDED:
        return _("Your payment to %(brand)s was refunded") % values
    if kind == OrderEmail.Kind.SHIPPED:
        return _("Your order %(reference)s from %(brand)s is on its way") % values
    return _("Your order %(reference)s from %(brand)s is cancelled") % values


def _recipient(order: Order) -> str:
    return order.email or (order.buyer.email if order.buyer else "")


def order_email_send(*, order_id: int, kind: str | None = None, key: str = "") -> bool:
    """Ask the background worker to mail the buyer about their order: ``kind``
    is an ``OrderEmail.Kind`` (by default the one for the order's status, paid
    or refunded), ``key`` tells apart emails of one kind that can happen more
    than once (a refund's id).

    Records the email and enqueues its task in one transaction (inside the
    caller's, if there is one: a rollback asks for nothing). Returns whether a
    task was enqueued: not when the order has no address, its status has no
    email, or this email was already sent. Asking again for an email not yet
    sent enqueues another try (the worker's claim keeps it to one message).
    Never raises for a database error: it is logged, the payment stands.
    """
    from checkout.tasks import order_email_deliver  # the task imports this module

    try:
        with transaction.atomic():
            order = Order.objects.select_related("buyer").get(pk=order_id)
            chosen = (
                OrderEmail.Kind(kind)
                if kind is not None
                else KIND_OF_STATUS.get(Order.Status(order.status))
            )
            if chosen is None or not _recipient(order):
                return False
            email, _created = OrderEmail.objects.get_or_create(
                order=order, kind=chosen, key=key
            )
            if email.sent_at is not None:
                return False
            order_email_deliver.enqueue(email_id=email.pk)
    except DatabaseError:
        # Called after the payment's commit: the buyer's answer and Stripe's
        # webhook must not fail for want of an email.
        logger.exception("could not queue the %s email of order %s", kind, order_id)
        return False
    return True


def _lines(order: Order) -> list[dict[str, object]]:
    return [
        {
            "line": line,
            "total": Money(
                line.unit_price_minor * line.quantity, line.currency
            ).format(),
        }
        for line in order.lines.all()
    ]


def _message(email: OrderEmail, recipient: str) -> EmailMultiAlternatives:
    """The email in the buyer's language, both parts rendered."""
    order = email.order
    kind = OrderEmail.Kind(email.kind)
    template = KIND_TEMPLATES[kind]
    language = order.language or settings.LANGUAGE_CODE
    with translation.override(language):
        context = {
            "order": order,
            "reference": order.reference,
            "lines": _lines(order),
            "total": Money(order.total_minor, order.currency).format(),
            "show_url": settings.SHOWFLOOR_PUBLIC_URL.rstrip("/")
            + reverse("show_detail", args=[order.show.slug]),
            "brand": order.show.brand.name,
            "language": language,
            # The order's page through a signed link: guests have no account.
            "order_url": order_link_url(order),
            "address": getattr(order, "shipping_address", None),
            "shipping": Money(order.shipping_minor, order.currency).format(),
            "tax": Money(order.tax_minor, order.currency).format(),
            "tax_rate": f"{order.tax_rate_bp / 100:g} %",
            # Linked only when it is a web address (it is typed by the brand).
            "tracking_url": order.tracking_url
            if order.tracking_url.startswith(("https://", "http://"))
            else "",
        }
        message = EmailMultiAlternatives(
            subject=_subject(kind, order),
            body=render_to_string(f"{template}.txt", context),
            to=[recipient],
        )
        message.attach_alternative(
            render_to_string(f"{template}.html", context), "text/html"
        )
    return message


def order_email_attempt(*, email_id: int) -> Attempt:
    """Send one recorded email unless it was sent or another worker is sending
    it (the worker's task; the module docstring tells why this is once).

    Records the attempt and any error on the row; the caller schedules a
    retry. Raises only for bugs (a template that does not render).
    """
    email = (
        OrderEmail.objects.select_related("order__show__brand", "order__buyer")
        .filter(pk=email_id)
        .first()
    )
    if email is None or email.sent_at is not None or email.last_error == SENDING:
        return Attempt("skipped")
    recipient = _recipient(email.order)
    if not recipient:
        OrderEmail.objects.filter(pk=email_id).update(last_error="no address")
        return Attempt("skipped")
    # Rendered before the claim: a template error leaves no stuck marker.
    message = _message(email, recipient)
    claimed = (
        OrderEmail.objects.filter(pk=email_id, sent_at__isnull=True)
        .exclude(last_error=SENDING)
        .update(last_error=SENDING, attempts=F("attempts") + 1)
    )
    if not claimed:
        return Attempt("skipped")
    try:
        message.send()
    except Exception as error:
        # Any failure of the mail server or its connection: record it (without
        # the marker) and let the caller retry.
        OrderEmail.objects.filter(pk=email_id).update(
            last_error=f"{type(error).__name__}: {error}"[:200]
        )
        attempts = OrderEmail.objects.get(pk=email_id).attempts
        if attempts >= MAX_ATTEMPTS:
            logger.error(
                "gave up on the %s email of order %s after %s attempts",
                email.kind,
                email.order.public_id,
                attempts,
            )
            return Attempt("failed", attempts)
        logger.warning(
            "could not send the %s email of order %s (attempt %s): %s",
            email.kind,
            email.order.public_id,
            attempts,
            error,
        )
        return Attempt("retry", attempts)
    OrderEmail.objects.filter(pk=email_id).update(sent_at=timezone.now(), last_error="")
    return Attempt("sent", email.attempts + 1)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    return timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])
