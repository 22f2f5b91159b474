"""Where a show's audience came from and what came of it, for the brand's
report (docs/audience.md): per source key (``shows.attribution``), the visits
and sign-ups counted (``realtime.counting``), the confirmed reminders and the
paid orders with their revenue (PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, Sum

from checkout.models import Order
from realtime import counting
from realtime import redis as rclient
from realtime.models import ShowMinuteCount
from shows.attribution import kind_of, label_of, valid_key
from shows.models import Reminder, Show


@dataclass(frozen=True)
class TrafficSource:
    """One source of a show's audience and what came of it."""

    key: str
    kind: str
    label: str
    visits: int = 0
    reminders: int = 0
    signups: int = 0
    orders: int = 0
    # Paid orders' totals per currency, in minor units.
    revenue: dict[str, int] = field(default_factory=dict)


def _counted(show: Show) -> dict[str, int]:
    """The show's counts of ``src.*`` and ``signups.*``, each the larger of
    the store's total and the sum of its rolled-up minutes in PostgreSQL.
    Both fall short of the truth only: the store while the show runs is ahead
    of the rollup (by the minute not yet closed), and once the show ended and
    the store expired (48 h after its last count) the minutes hold it all; a
    store that does not answer leaves the minutes."""
    wanted = Q(metric__startswith="src.") | Q(metric__startswith="signups.")
    found = {
        row["metric"]: int(row["total"])
        for row in ShowMinuteCount.objects.filter(wanted, show_id=show.pk)
        .values("metric")
        .annotate(total=Sum("value"))
    }
    try:
        totals = counting.totals(show.pk)
    except rclient.ERRORS:
        rclient.mark_down()
        return found
    for metric, value in totals.items():
        if metric.startswith(("src.", "signups.")):
            found[metric] = max(found.get(metric, 0), value)
    return found


@dataclass
class _Tally:
    visits: int = 0
    reminders: int = 0
    signups: int = 0
    orders: int = 0
    revenue: dict[str, int] = field(default_factory=dict)


def traffic_sources(show: Show) -> list[TrafficSource]:
    """Every source of the show's audience with its visits and sign-ups
    (counted), its confirmed reminders and paid orders with their revenue per
    currency (from PostgreSQL), most visits first. Rows made before
    attribution existed (no source) count as ``direct``."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for metric, value in _counted(show).items():
        kind, _sep, key = metric.partition(".")
        if not valid_key(key):
            continue
        if kind == "src":
            tallies[key].visits += value
        else:
            tallies[key].signups += value
    reminders = (
        Reminder.objects.filter(show=show, confirmed_at__isnull=False)
        .values("source")
        .annotate(n=Count("id"))
    )
    for row in reminders:
        tallies[row["source"] or "direct"].reminders += row["n"]
    orders = (
        Order.objects.filter(show=show, paid_at__isnull=False)
        .values("source", "currency")
        .annotate(n=Count("id"), paid_minor=Sum("total_minor"))
    )
    for row in orders:
        tally = tallies[row["source"] or "direct"]
        tally.orders += row["n"]
        paid, currency = int(row["paid_minor"]), row["currency"]
        tally.revenue[currency] = tally.revenue.get(currency, 0) + paid
    sources = [
        TrafficSource(
            key=key,
            kind=kind_of(key),
            label=label_of(key),
            visits=tally.visits,
            reminders=tally.reminders,
            signups=tally.signups,
            orders=tally.orders,
            revenue=tally.revenue,
        )
        for key, tally in tallies.items()
    ]
    return sorted(sources, key=lambda s: (-s.visits, -s.orders, s.key))
