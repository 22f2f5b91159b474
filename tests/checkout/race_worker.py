"""A buyer process for the stock race test (not a test module).

Started by ``test_race.py`` with the test database's name in ``RACE_DB_NAME``.
For each line ``<run> <buyers>`` on stdin it sends that many guest buyers at
the order service from a thread pool, then prints one JSON line of outcomes.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["RACE_DB_NAME"]
    settings.STRIPE_API_BASE = os.environ["RACE_STRIPE"]
    settings.STRIPE_SECRET_KEY = "sk_test_showfloor"
    django.setup()

    from checkout import services
    from checkout.exceptions import SoldOut
    from shows.models import Show

    slug, variant_id = os.environ["RACE_SHOW"], int(os.environ["RACE_VARIANT"])
    threads = int(os.environ.get("RACE_THREADS", "8"))

    def one(run: int) -> tuple[str, str]:
        try:
            show = Show.objects.get(slug=slug)
            buyer = services.Buyer(
                user=None, session_key=uuid.uuid4().hex, email="racer@example.test"
            )
            placed = services.order_create(
                show=show,
                buyer=buyer,
                variant_id=variant_id,
                quantity=1,
                idempotency_key=f"race-{run}-{uuid.uuid4().hex}",
            )
            return "ok", str(placed.order.public_id)
        except SoldOut:
            return "sold_out", ""
        except Exception as exc:
            return "error", f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for line in sys.stdin:
            run, buyers = (int(part) for part in line.split())
            outcomes = list(pool.map(one, [run] * buyers))
            print(
                json.dumps(
                    {
                        "ok": [ref for kind, ref in outcomes if kind == "ok"],
                        "sold_out": sum(kind == "sold_out" for kind, _ in outcomes),
                        "errors": [ref for kind, ref in outcomes if kind == "error"],
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
