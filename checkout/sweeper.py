"""The sweeper: expires stock holds (stock back, PaymentIntents cancelled),
closes flash sales whose window passed, asks for reminder emails that are
due, ends live shows nobody has streamed to for a long time, and is the
backstop of the live games' own timers: auctions past their end are closed
and their sales moved on, giveaways past their close are drawn.
``manage.py sweep`` runs it as its own process; the embedded demo runs ``run``
in a thread."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from checkout import services
from checkout.services import auctions
from realtime import counting
from shows import notices
from shows.services import giveaways, stream

logger = logging.getLogger(__name__)


def sweep_once() -> int:
    """One pass; returns how many orders expired, sales closed and reminder
    batches were asked for (shows/notices.py). Also rolls the shows' counts
    up into PostgreSQL (at most every 15 s)."""
    counting.rollup_due()
    return (
        services.order_expire_due()
        + services.bag_expire_due()
        + services.sale_close_due()
        + auctions.auction_close_due()
        + notices.notices_due()
        + stream.stream_abandoned_end_due()
        + giveaways.giveaway_draw_due()
    )


def run(*, interval: float, stop: threading.Event) -> None:
    """Sweep every ``interval`` seconds until ``stop`` is set. A hold is back in
    stock at most ``interval`` (plus one pass) after it expires."""
    while not stop.is_set():
        close_old_connections()
        try:
            done = sweep_once()
        except Exception:
            # A broken pass (database restart) must not stop the sweeper.
            logger.exception("sweep failed")
        else:
            if done:
                logger.info("sweep: %s orders expired or sales closed", done)
        stop.wait(interval)
    close_old_connections()
