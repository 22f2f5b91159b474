"""Checkout fixtures: a live show with a pinned product, a recorder of room
events, Stripe-signed webhook deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from checkout.services import Buyer


@pytest.fixture(autouse=True)
def _no_reservation_limit(settings):
    """Many tests reserve from 127.0.0.1; the limit has its own test."""
    settings.SHOWFLOOR_RESERVATIONS_PER_MINUTE = 0


@pytest.fixture
def pinned(live_show, products, host):
    """The live show with "Desk Mic" (10 in stock, €89.00) pinned."""
    from shows.services import room

    room.product_pin(show=live_show, actor=host, product_id=products[1].pk)
    return live_show


@pytest.fixture
def mic(products):
    return products[1].variants.get()


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, Any, dict[str, Any]]]:
    """Every room event checkout sends, recorded when its transaction commits."""
    from realtime import events

    recorded: list[tuple[str, Any, dict[str, Any]]] = []

    def recorder(kind: str):
        def send(show_id, *args):
            event = args[-1]
            target = args[0] if len(args) == 2 else show_id
            transaction.on_commit(lambda: recorded.append((kind, target, event)))

        return send

    monkeypatch.setattr(events, "broadcast", recorder("broadcast"))
    monkeypatch.setattr(events, "broadcast_ephemeral", recorder("ephemeral"))
    monkeypatch.setattr(events, "notify", recorder("notify"))
    return recorded


def of_type(sent, event_type: str) -> list[dict[str, Any]]:
    return [event for _, _, event in sent if event["type"] == event_type]


@pytest.fixture
def guest() -> Buyer:
    return Buyer(user=None, session_key=uuid.uuid4().hex, email="guest@example.test")


def new_key() -> str:
    return uuid.uuid4().hex


def sign(payload: bytes, secret: str, *, at: int | None = None) -> str:
    """Stripe's webhook signature scheme (t=…,v1=HMAC-SHA256 of "t.payload")."""
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def intent_event(
    event_type: str,
    *,
    intent_id: str,
    order_ref: str,
    amount: int,
    status: str,
    event_id: str | None = None,
) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "created": int(timezone.now().timestamp()),
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_received": amount if status == "succeeded" else 0,
                    "currency": "eur",
                    "status": status,
                    "metadata": {"order": order_ref},
                }
            },
        }
    ).encode()


@pytest.fixture
def run_tasks(monkeypatch):
    """Run the background tasks that are due, in this thread, as
    ``manage.py db_worker --batch`` does; returns how many ran. A task that
    raised fails the test."""
    from django_tasks.backends.database.management.commands import db_worker
    from django_tasks.backends.database.models import DBTaskResult

    # The worker closes stale connections between tasks; the test's is not.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)

    def run() -> int:
        finished = DBTaskResult.objects.finished().count()
        worker = db_worker.Worker(
            queue_names=["*"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="tests",
        )
        worker.run()
        failed = DBTaskResult.objects.failed().first()
        assert failed is None, failed.traceback
        return DBTaskResult.objects.finished().count() - finished

    return run


@pytest.fixture
def europe(brand):
    """The brand ships to Germany, Austria and the Netherlands for €4.90 (free
    from €100.00), with German VAT of 19 % in its prices."""
    from checkout.services import delivery

    delivery.shipping_zone_set(
        brand=brand,
        name="Europe",
        countries=["de", "AT", " nl "],
        rate_minor=490,
        currency="EUR",
        free_from_minor=10000,
    )
    delivery.tax_rate_set(brand=brand, country="de", rate_bp=1900)
    return brand
