"""The buyer's emails: the order confirmation when an order is paid, and a note
when its payment is refunded. Written in the language the buyer ordered in.

Sent after the transaction that made the change commits (a rolled-back
payment mails nobody), once per transition, because ``_move`` only moves an
order forward. A mail server that fails is logged and never undoes a payment.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from checkout.models import Order
from checkout.money import Money

logger = logging.getLogger(__name__)

TEMPLATES = {
    Order.Status.PAID: "checkout/email/order_paid",
    Order.Status.REFUNDED: "checkout/email/order_refunded",
}


def order_reference(order: Order) -> str:
    """The short order reference shown to buyers and hosts."""
    return str(order.public_id)[:8]


def _subject(order: Order) -> str:
    brand = order.show.brand.name
    if order.status == Order.Status.PAID:
        return _("Your order from %(brand)s is confirmed") % {"brand": brand}
    return _("Your payment to %(brand)s was refunded") % {"brand": brand}


def order_email_send(*, order_id: int) -> bool:
    """Mail the buyer about the order's current status (paid or refunded).

    Returns whether a message was sent: not when the order has no address or
    its status has no email. Never raises for a failing mail server.
    """
    order = (
        Order.objects.select_related("show__brand", "buyer")
        .prefetch_related("lines")
        .get(pk=order_id)
    )
    template = TEMPLATES.get(Order.Status(order.status))
    recipient = order.email or (order.buyer.email if order.buyer else "")
    if template is None or not recipient:
        return False
    language = order.language or settings.LANGUAGE_CODE
    with translation.override(language):
        lines = [
            {
                "line": line,
                "total": Money(
                    line.unit_price_minor * line.quantity, line.currency
                ).format(),
            }
            for line in order.lines.all()
        ]
        context = {
            "order": order,
            "reference": order_reference(order),
            "lines": lines,
            "total": Money(order.total_minor, order.currency).format(),
            "show_url": settings.SHOWFLOOR_PUBLIC_URL.rstrip("/")
            + reverse("show_detail", args=[order.show.slug]),
            "brand": order.show.brand.name,
            "language": language,
        }
        message = EmailMultiAlternatives(
            subject=_subject(order),
            body=render_to_string(f"{template}.txt", context),
            to=[recipient],
        )
        message.attach_alternative(
            render_to_string(f"{template}.html", context), "text/html"
        )
    try:
        message.send()
    except Exception:
        # The payment stands whatever the mail server does; the order is in
        # the admin and the studio, and the buyer saw it in the sheet.
        logger.exception("could not mail order %s", order.public_id)
        return False
    return True
