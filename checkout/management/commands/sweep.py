"""``manage.py sweep``: expire stock holds and close flash sales, forever or once."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from checkout import sweeper


class Command(BaseCommand):
    help = "Expire stock holds, cancel their PaymentIntents and close ended sales."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between passes"
        )
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            done = sweeper.sweep_once()
            self.stdout.write(f"{done} orders expired or sales closed")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        sweeper.run(interval=options["interval"], stop=stop)
