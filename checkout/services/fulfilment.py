"""Fulfilment: the brand packs an order, ships it (carrier and tracking) and
sees it delivered; the buyer may cancel a paid order until it is packed.

Each step happens once and in order, decided by one conditional ``UPDATE`` on
the order row (``packed_at`` → ``shipped_at`` → ``delivered_at``), so a
double click, two hosts working the same list, or a bulk action over orders
already shipped changes nothing twice. Shipping moves the order from ``paid``
to ``fulfilled`` (``orders._move``) and asks the worker for the shipped email;
every step sends ``order.updated`` to the buyer's sockets.

A buyer's cancel and the brand's pack race on the same row: the cancel first
marks ``cancel_requested_at`` where ``packed_at`` is still empty, and packing
requires ``cancel_requested_at`` to be empty, so exactly one of them wins.
The cancel then refunds in full and returns the units to stock (they never
left); if the refund fails the mark is lifted and the buyer is told.
"""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from checkout import emails
from checkout.exceptions import (
    FulfilmentInvalid,
    NotCancellable,
    PaymentProviderError,
    TrackingInvalid,
)
from checkout.models import Order, OrderEmail
from checkout.services.orders import _move, _notify_order, order_cancel
from checkout.services.refunds import order_refund

logger = logging.getLogger(__name__)

S = Order.Status
_https = URLValidator(schemes=["https"])


def _locked(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def _step(order: Order, *, when: dict[str, object], field: str) -> Order:
    """Set the timestamp ``field`` on the order if it matches ``when`` (one
    conditional update, so each step happens once), then tell the buyer's
    sockets. Raises ``FulfilmentInvalid`` when it does not match."""
    now = timezone.now()
    with transaction.atomic():
        moved = Order.objects.filter(pk=order.pk, **when).update(
            **{field: now}, updated_at=now
        )
        if not moved:
            raise FulfilmentInvalid()
        locked = _locked(order)
        _notify_order(locked)
    return locked


def order_pack(*, order: Order) -> Order:
    """Mark a paid order packed. Raises ``FulfilmentInvalid`` unless it is paid,
    not yet packed and not being cancelled. Sends ``order.updated``."""
    return _step(
        order,
        when={
            "status": S.PAID,
            "packed_at__isnull": True,
            "cancel_requested_at__isnull": True,
        },
        field="packed_at",
    )


def order_ship(
    *,
    order: Order,
    carrier: str,
    tracking_number: str = "",
    tracking_url: str = "",
) -> Order:
    """Mark a paid order shipped with its carrier and tracking (packed too, if
    it was not): the order becomes ``fulfilled`` and the buyer is mailed, in
    their language, with the tracking link. Raises ``TrackingInvalid`` (no
    carrier, or a tracking link that is not https) or ``FulfilmentInvalid``
    (not paid, already shipped, or being cancelled)."""
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    tracking_url = tracking_url.strip()
    if not carrier or len(carrier) > 60 or len(tracking_number) > 100:
        raise TrackingInvalid()
    if tracking_url:
        try:
            _https(tracking_url)
        except ValidationError as exc:
            raise TrackingInvalid() from exc
    now = timezone.now()
    with transaction.atomic():
        shipped = Order.objects.filter(
            pk=order.pk,
            status=S.PAID,
            shipped_at__isnull=True,
            cancel_requested_at__isnull=True,
        ).update(
            shipped_at=now,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            updated_at=now,
        )
        if not shipped:
            raise FulfilmentInvalid()
        Order.objects.filter(pk=order.pk, packed_at__isnull=True).update(packed_at=now)
        locked = _locked(order)
        _move(locked, S.FULFILLED, f"shipped with {carrier}")
        transaction.on_commit(
            partial(
                emails.order_email_send,
                order_id=locked.pk,
                kind=OrderEmail.Kind.SHIPPED,
            )
        )
    return locked


def order_mark_delivered(*, order: Order) -> Order:
    """Record that a shipped order arrived. Raises ``FulfilmentInvalid`` unless
    it was shipped and not yet marked delivered. Sends ``order.updated``."""
    return _step(
        order,
        when={
            "status": S.FULFILLED,
            "shipped_at__isnull": False,
            "delivered_at__isnull": True,
        },
        field="delivered_at",
    )


def order_cancel_by_buyer(*, order: Order) -> Order:
    """The buyer cancels. A reserved order is simply cancelled (stock back, no
    money moved). A paid order not yet packed is refunded in full and its
    units return to stock. Raises ``NotCancellable`` once the brand has packed
    it (or it is not the buyer's to cancel any more), ``PaymentProviderError``
    when the refund could not be made (the order is then as it was)."""
    if order.status == S.RESERVED:
        return order_cancel(order=order)
    claimed = Order.objects.filter(
        Q(cancel_requested_at__isnull=True),
        pk=order.pk,
        status=S.PAID,
        packed_at__isnull=True,
    ).update(cancel_requested_at=timezone.now(), updated_at=timezone.now())
    if not claimed:
        raise NotCancellable()
    try:
        order_refund(
            order=Order.objects.get(pk=order.pk),
            reason="cancelled by the buyer",
            restock=True,
        )
    except PaymentProviderError:
        Order.objects.filter(pk=order.pk).update(cancel_requested_at=None)
        raise
    except Exception:
        Order.objects.filter(pk=order.pk).update(cancel_requested_at=None)
        logger.exception("the buyer's cancel of order %s failed", order.public_id)
        raise
    return Order.objects.get(pk=order.pk)
