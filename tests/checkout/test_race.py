"""Stock never oversells: buyers in two processes race for the last units."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from checkout import services
from checkout.models import Order, StockHold
from shows.models import Variant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("RACE_RUNS", "20"))
BUYERS = 300
UNITS = 10
PROCESSES = 2


def test_300_buyers_in_two_processes_never_oversell_10_units(
    postgres, stripe_settings, pinned, mic
):
    """20 runs of 300 guest buyers, split over two processes with a thread pool
    each, racing for 10 units: exactly 10 orders, 290 clean ``sold_out``, no
    errors, stock never below zero; the 10 winners pay and end ``paid``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE")
        or settings.SETTINGS_MODULE,
        "RACE_DB_NAME": connection.settings_dict["NAME"],
        "RACE_STRIPE": stripe_settings,
        "RACE_SHOW": pinned.slug,
        "RACE_VARIANT": str(mic.pk),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.checkout.race_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for run in range(RUNS):
            Variant.objects.filter(pk=mic.pk).update(stock_available=UNITS)
            for worker in workers:
                worker.stdin.write(f"{run} {BUYERS // PROCESSES}\n")
                worker.stdin.flush()
            results = [json.loads(worker.stdout.readline()) for worker in workers]
            winners = [ref for result in results for ref in result["ok"]]
            errors = [err for result in results for err in result["errors"]]
            assert errors == [], errors
            assert len(winners) == UNITS, f"run {run}: {len(winners)} orders"
            assert sum(r["sold_out"] for r in results) == BUYERS - UNITS
            mic.refresh_from_db()
            assert mic.stock_available == 0
            held = StockHold.objects.filter(
                order__public_id__in=winners, status=StockHold.Status.HELD
            )
            assert sum(h.quantity for h in held) == UNITS
            for order in Order.objects.filter(public_id__in=winners):
                buyer = services.Buyer(user=None, session_key=order.session_key)
                assert (
                    services.order_pay(order=order, buyer=buyer, method="test").outcome
                    == "paid"
                )
            assert (
                Order.objects.filter(public_id__in=winners, status="paid").count()
                == UNITS
            )
            mic.refresh_from_db()
            assert mic.stock_available == 0
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(timeout=30)
    assert Order.objects.filter(status="paid").count() == RUNS * UNITS
    assert Order.objects.count() == RUNS * UNITS
