"""Signed links to one order, for buyers without an account: the order email
carries one, and whoever follows it sees that order (and may cancel it while
it can be cancelled), nothing else. Signed with the project's secret key
(``django.core.signing``), valid for ``MAX_AGE``; the order is found by its
public id, which is unguessable besides."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from checkout.models import Order

SALT = "showfloor.checkout.order-link"
# Long enough for a delivery, a return and a refund.
MAX_AGE = 180 * 24 * 3600


def order_link_token(order: Order) -> str:
    return signing.dumps(str(order.public_id), salt=SALT)


def order_from_link(token: str) -> Order | None:
    """The order a link names, or None when the link is forged, altered or
    older than ``MAX_AGE``."""
    try:
        public_id = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return None
    return (
        Order.objects.select_related("show__brand", "payment")
        .prefetch_related("lines")
        .filter(public_id=public_id)
        .first()
    )


def order_link_url(order: Order) -> str:
    """The absolute link for the order's email."""
    path = reverse("order_link", args=[order_link_token(order)])
    return str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/") + path
