"""Reads of a show's report after it ended and of a brand's shows across time
(docs/analytics.md, "The report").

Everything here reads PostgreSQL only: the per-minute values the counting
rollup wrote (``ShowMinuteCount``; sums add up over the minutes) and the
whole-show uniques and maxima (``ShowTotalCount``; minutes cannot add those
up), joined with the show's pins, line-up and paid orders. A show still live
reads what is rolled up so far (minutes close about 15 s after they end).

Who may read: the brand's owners, hosts and moderators, as the studio's live
figures (``Capability.STUDIO_OPEN`` in the workspace's role table); every
function here checks it with ``require`` before reading.

The CSV rows (``*_csv_rows``) put every text a brand typed through
``checkout``'s ``csv_safe``, as the orders export does.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q, Sum
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from checkout.models import Order
from checkout.services.brand_orders import csv_safe
from checkout.traffic import traffic_sources
from live.figures import money_of, net_of
from realtime.models import ShowMinuteCount, ShowTotalCount
from shows import poll_cards
from shows.exceptions import NotFound
from shows.models import Brand, LineupItem, Pin, Product, Show, User
from shows.services.workspace import Capability, require

# The report is read by whoever may see the studio's live figures.
REPORT_CAPABILITY = Capability.STUDIO_OPEN

# The funnel's steps: whole-show unique counts, each a subset of the one before.
FUNNEL = ("u.viewers", "u.saw_card", "u.tapped_buy", "u.reserved", "u.buyers")
PRODUCT_METRICS = ("impressions", "buy_taps", "holds", "units")
# A show's minutes beyond this many are left out of its series (a day).
SERIES_MAX_MINUTES = 24 * 60
# At most this many ended shows in the brand's overview (newest first).
OVERVIEW_LIMIT = 500


class ShowNotFound(NotFound):
    default_message = _("There is no show at this address.")


@dataclass(frozen=True, slots=True)
class Figures:
    """A show's figures; money per currency in minor units."""

    unique_viewers: int
    peak_viewers: int
    watch_seconds: int
    average_watch_seconds: int | None
    chat: int
    reactions: int
    questions: int
    buy_taps: int
    sheet_opens: int
    holds: int
    orders_paid: int
    buyers: int
    refunds: int
    revenue: dict[str, int]
    refunded: dict[str, int]
    net_revenue: dict[str, int]
    conversion: float | None


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step: how many unique people reached it, their share of the unique
    viewers, and how many of the step before did not (None on the first, and
    when this step counted more than the one before)."""

    metric: str
    count: int
    share: float | None
    dropped: int | None
    dropped_share: float | None


@dataclass(frozen=True, slots=True)
class ReportMinute:
    """One minute of the show: the most people watching at once, the unique
    people present in it, that as a share of the show's unique viewers
    (retention), and the orders paid in it."""

    at: datetime
    viewers: int
    present: int
    retention: float | None
    orders_paid: int


@dataclass(frozen=True, slots=True)
class ProductRow:
    product_id: int
    name: str
    impressions: int
    buy_taps: int
    holds: int
    units: int
    revenue: dict[str, int]


@dataclass(frozen=True, slots=True)
class ReplayFigures:
    """What the show's replay did after the show (docs/replay.md): page views,
    unique viewers, and the orders placed from it once paid, with their
    revenue per currency in minor units."""

    views: int
    unique_viewers: int
    orders_paid: int
    revenue: dict[str, int]


@dataclass(frozen=True, slots=True)
class ShowReport:
    show: Show
    live: bool
    duration_seconds: int | None
    figures: Figures
    funnel: list[FunnelStep]
    minutes: list[ReportMinute]
    pins: list[tuple[datetime, str]]
    products: list[ProductRow]
    buyers_new: int
    buyers_returning: int
    replay: ReplayFigures | None = None
    # The show's polls in the order asked (``shows.poll_cards``'s cards), each
    # with ``rows``: (answer, votes, whether it won).
    polls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ShowRow:
    """One ended show in the brand's overview; ``local_start`` in the brand's
    time zone."""

    show: Show
    local_start: datetime | None
    duration_seconds: int | None
    unique_viewers: int
    peak_viewers: int
    orders_paid: int
    buyers: int
    revenue: dict[str, int]
    conversion: float | None


@dataclass(frozen=True, slots=True)
class HeatCell:
    """Shows that started in one hour of one weekday (brand's time zone):
    how many, their average unique viewers, and their average conversion
    over the ones that had viewers (``converted`` of them)."""

    weekday: int
    hour: int
    shows: int
    average_viewers: float | None
    average_conversion: float | None
    converted: int


@dataclass(frozen=True, slots=True)
class BrandReport:
    brand: Brand
    time_zone: str
    rows: list[ShowRow]
    hours: list[int]
    heatmap: list[list[HeatCell]]  # one list per hour of ``hours``, Monday first


# --- Reading the counts ----------------------------------------------------------


def _sums(show_id: int) -> dict[str, int]:
    """The show's sums over all its minutes (uniques and maxima left out:
    they do not add up)."""
    rows = (
        ShowMinuteCount.objects.filter(show_id=show_id)
        .exclude(metric__startswith="u.")
        .exclude(metric__startswith="max.")
        .values("metric")
        .annotate(total=Sum("value"))
    )
    return {row["metric"]: int(row["total"]) for row in rows}


def _totals(show_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for show_id, metric, value in ShowTotalCount.objects.filter(
        show_id__in=list(show_ids)
    ).values_list("show_id", "metric", "value"):
        found[show_id][metric] = value
    return found


def _figures(sums: dict[str, int], totals: dict[str, int]) -> Figures:
    unique_viewers = totals.get("u.viewers", 0)
    buyers = totals.get("u.buyers", 0)
    watch = sums.get("watch_seconds", 0)
    revenue = money_of(sums, "revenue.")
    refunded = money_of(sums, "refunded.")
    return Figures(
        unique_viewers=unique_viewers,
        peak_viewers=totals.get("max.viewers", 0),
        watch_seconds=watch,
        average_watch_seconds=round(watch / unique_viewers) if unique_viewers else None,
        chat=sums.get("chat", 0),
        reactions=sums.get("reactions", 0),
        questions=sums.get("questions", 0),
        buy_taps=sums.get("buy_taps", 0),
        sheet_opens=sums.get("sheet_opens", 0),
        holds=sums.get("holds", 0),
        orders_paid=sums.get("orders_paid", 0),
        buyers=buyers,
        refunds=sums.get("refunds", 0),
        revenue=revenue,
        refunded=refunded,
        net_revenue=net_of(revenue, refunded),
        conversion=buyers / unique_viewers if unique_viewers else None,
    )


def _replay(sums: dict[str, int], totals: dict[str, int]) -> ReplayFigures:
    return ReplayFigures(
        views=sums.get("replay.views", 0),
        unique_viewers=totals.get("u.replay_viewers", 0),
        orders_paid=sums.get("replay.orders_paid", 0),
        revenue=money_of(sums, "replay.revenue."),
    )


def _funnel(totals: dict[str, int]) -> list[FunnelStep]:
    first = totals.get(FUNNEL[0], 0)
    steps: list[FunnelStep] = []
    before: int | None = None
    for metric in FUNNEL:
        count = totals.get(metric, 0)
        # A step can count more people than the one before it when that one
        # is counted by the page (Buy taps need the viewer page's beacon):
        # then there is no drop-off to tell.
        dropped = None if before is None or count > before else before - count
        steps.append(
            FunnelStep(
                metric=metric,
                count=count,
                share=count / first if first else None,
                dropped=dropped,
                dropped_share=(
                    dropped / before if before and dropped is not None else None
                ),
            )
        )
        before = count
    return steps


def _minutes(show: Show, unique_viewers: int, now: datetime) -> list[ReportMinute]:
    """Every minute from the show's start to its end (to the last one rolled
    up while it is live), minutes without counts as zeros; at most
    ``SERIES_MAX_MINUTES``. Orders paid after the show (a late payment) are
    in the show's figures, not in its minutes."""
    per_minute: dict[datetime, dict[str, int]] = defaultdict(dict)
    for minute, metric, value in ShowMinuteCount.objects.filter(
        show_id=show.pk, metric__in=("max.viewers", "u.viewers", "orders_paid")
    ).values_list("minute", "metric", "value"):
        per_minute[minute][metric] = value
    watched = [m for m, values in per_minute.items() if "u.viewers" in values]
    if show.started_at:
        first = _floor(show.started_at)
        last = _floor(show.ended_at) if show.ended_at else max([first, *watched])
    elif watched:
        first, last = min(watched), max(watched)
    else:
        return []
    last = min(last, _floor(now), first + timedelta(minutes=SERIES_MAX_MINUTES - 1))
    found = []
    at = first
    while at <= last:
        values = per_minute.get(at, {})
        present = values.get("u.viewers", 0)
        found.append(
            ReportMinute(
                at=at,
                viewers=values.get("max.viewers", 0),
                present=present,
                retention=present / unique_viewers if unique_viewers else None,
                orders_paid=values.get("orders_paid", 0),
            )
        )
        at += timedelta(minutes=1)
    return found


def _floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _products(show: Show, sums: dict[str, int]) -> list[ProductRow]:
    """Every product of the line-up, pinned, or counted, in line-up order."""
    counted = {
        int(name[1:].partition(".")[0])
        for name in sums
        if name.startswith("p") and name[1:].partition(".")[0].isdigit()
    }
    order = list(
        LineupItem.objects.filter(show=show).values_list("product_id", flat=True)
    )
    for product_id in Pin.objects.filter(show=show).values_list(
        "product_id", flat=True
    ):
        if product_id not in order:
            order.append(product_id)
    order += sorted(counted - set(order))
    names = dict(Product.objects.filter(pk__in=order).values_list("pk", "name"))
    rows = []
    for product_id in order:
        field = f"p{product_id}."
        rows.append(
            ProductRow(
                product_id=product_id,
                name=names.get(product_id, f"#{product_id}"),
                impressions=sums.get(field + "impressions", 0),
                buy_taps=sums.get(field + "buy_taps", 0),
                holds=sums.get(field + "holds", 0),
                units=sums.get(field + "units", 0),
                revenue=money_of(sums, field + "revenue."),
            )
        )
    return rows


def _buyers(show: Show) -> tuple[int, int]:
    """(new, returning) buyers of the show's paid orders. A buyer is an
    account, or a guest's email (case-insensitive); returning when the same
    account or email had a paid order from the same brand in a show that
    started earlier."""
    paid = Order.objects.filter(paid_at__isnull=False)
    buyers: dict[str, tuple[int | None, str]] = {}
    for buyer_id, email in (
        paid.filter(show=show)
        .annotate(address=Lower("email"))
        .values_list("buyer_id", "address")
    ):
        key = f"user:{buyer_id}" if buyer_id else f"email:{email}"
        buyers[key] = (buyer_id, email)
    start = show.started_at or show.scheduled_at
    earlier = (
        paid.filter(show__brand_id=show.brand_id, show__started_at__lt=start)
        .exclude(show=show)
        .annotate(address=Lower("email"))
    )
    user_ids = {b for b, _e in buyers.values() if b}
    emails = {e for _b, e in buyers.values() if e}
    seen_users = set(
        earlier.filter(buyer_id__in=user_ids).values_list("buyer_id", flat=True)
    )
    seen_emails = set(
        earlier.filter(address__in=emails).values_list("address", flat=True)
    )
    returning = sum(
        1
        for buyer_id, email in buyers.values()
        if (buyer_id and buyer_id in seen_users) or (email and email in seen_emails)
    )
    return len(buyers) - returning, returning


def show_report(
    *, user: User, brand: Brand, slug: str, now: datetime | None = None
) -> ShowReport:
    """The report of the brand's show ``slug``. Raises ``NotAllowed`` for a
    role that may not see figures, ``ShowNotFound`` for another brand's show
    or none."""
    require(user, brand, REPORT_CAPABILITY)
    show = Show.objects.filter(brand=brand, slug=slug).first()
    if show is None:
        raise ShowNotFound()
    moment = now or timezone.now()
    sums = _sums(show.pk)
    totals = _totals([show.pk]).get(show.pk, {})
    figures = _figures(sums, totals)
    pins = Pin.objects.filter(show=show).select_related("product")
    new, returning = _buyers(show)
    return ShowReport(
        show=show,
        live=show.status == Show.Status.LIVE,
        duration_seconds=_duration(show, moment),
        figures=figures,
        funnel=_funnel(totals),
        minutes=_minutes(show, figures.unique_viewers, moment),
        pins=[(pin.pinned_at, pin.product.name) for pin in pins],
        products=_products(show, sums),
        buyers_new=new,
        buyers_returning=returning,
        replay=_replay(sums, totals),
        polls=[
            {
                **card,
                "rows": [
                    (option, card["counts"][i], i in poll_cards.winners(card["counts"]))
                    for i, option in enumerate(card["options"])
                ],
            }
            for card in poll_cards.show_polls(show=show)
        ],
    )


def _duration(show: Show, now: datetime) -> int | None:
    if show.started_at is None:
        return None
    return max(0, int(((show.ended_at or now) - show.started_at).total_seconds()))


# --- The brand's overview ----------------------------------------------------------


def brand_zone(brand: Brand) -> ZoneInfo:
    try:
        return ZoneInfo(brand.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def brand_report(*, user: User, brand: Brand) -> BrandReport:
    """The brand's ended shows (newest first, at most ``OVERVIEW_LIMIT``)
    with their main figures, and when shows did best: a grid of weekdays and hours
    of the brand's time zone. Raises ``NotAllowed`` for a role that may not
    see figures."""
    require(user, brand, REPORT_CAPABILITY)
    zone = brand_zone(brand)
    shows = list(
        Show.objects.filter(brand=brand, status=Show.Status.ENDED).order_by(
            "-started_at", "-pk"
        )[:OVERVIEW_LIMIT]
    )
    ids = [show.pk for show in shows]
    sums: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        ShowMinuteCount.objects.filter(show_id__in=ids)
        .filter(Q(metric="orders_paid") | Q(metric__startswith="revenue."))
        .values("show_id", "metric")
        .annotate(total=Sum("value"))
    ):
        sums[row["show_id"]][row["metric"]] = int(row["total"])
    totals = _totals(ids)
    rows = []
    for show in shows:
        own, whole = sums.get(show.pk, {}), totals.get(show.pk, {})
        viewers, buyers = whole.get("u.viewers", 0), whole.get("u.buyers", 0)
        rows.append(
            ShowRow(
                show=show,
                local_start=show.started_at.astimezone(zone)
                if show.started_at
                else None,
                duration_seconds=_duration(show, show.ended_at or timezone.now()),
                unique_viewers=viewers,
                peak_viewers=whole.get("max.viewers", 0),
                orders_paid=own.get("orders_paid", 0),
                buyers=buyers,
                revenue=money_of(own, "revenue."),
                conversion=buyers / viewers if viewers else None,
            )
        )
    hours, heatmap = _heatmap(rows)
    return BrandReport(
        brand=brand, time_zone=str(zone), rows=rows, hours=hours, heatmap=heatmap
    )


def _heatmap(rows: list[ShowRow]) -> tuple[list[int], list[list[HeatCell]]]:
    """The hours from the earliest to the latest one any show started in,
    and per hour a cell per weekday (Monday first)."""
    cells: dict[tuple[int, int], list[ShowRow]] = defaultdict(list)
    for row in rows:
        if row.local_start is not None:
            cells[(row.local_start.weekday(), row.local_start.hour)].append(row)
    if not cells:
        return [], []
    hours = list(range(min(h for _d, h in cells), max(h for _d, h in cells) + 1))
    grid = []
    for hour in hours:
        line = []
        for weekday in range(7):
            shows = cells.get((weekday, hour), [])
            rates = [r.conversion for r in shows if r.conversion is not None]
            line.append(
                HeatCell(
                    weekday=weekday,
                    hour=hour,
                    shows=len(shows),
                    average_viewers=(
                        sum(r.unique_viewers for r in shows) / len(shows)
                        if shows
                        else None
                    ),
                    average_conversion=sum(rates) / len(rates) if rates else None,
                    converted=len(rates),
                )
            )
        grid.append(line)
    return hours, grid


# --- CSV -----------------------------------------------------------------------

MINUTE_COLUMNS = ["minute_utc", "viewers_peak", "present", "retention", "orders_paid"]
FUNNEL_COLUMNS = [
    "step",
    "metric",
    "count",
    "share_of_viewers",
    "dropped",
    "dropped_share",
]
PRODUCT_COLUMNS = [
    "product_id",
    "product",
    "impressions",
    "buy_taps",
    "holds",
    "units",
    "currency",
    "revenue_minor",
]
SHOW_COLUMNS = [
    "show",
    "title",
    "started_local",
    "time_zone",
    "duration_seconds",
    "unique_viewers",
    "peak_viewers",
    "orders_paid",
    "buyers",
    "conversion",
    "currency",
    "revenue_minor",
]


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def minutes_csv_rows(report: ShowReport) -> Iterator[list[Any]]:
    yield MINUTE_COLUMNS
    for minute in report.minutes:
        yield [
            minute.at.isoformat(),
            minute.viewers,
            minute.present,
            _ratio(minute.retention),
            minute.orders_paid,
        ]


SOURCE_COLUMNS = [
    "source",
    "kind",
    "label",
    "visits",
    "reminders",
    "signups",
    "orders_paid",
    "currency",
    "revenue_minor",
]


def sources_csv_rows(report: ShowReport) -> Iterator[list[Any]]:
    """The show's traffic sources (``checkout.traffic``), one row per source
    and currency of its paid orders."""
    yield SOURCE_COLUMNS
    for source in traffic_sources(report.show):
        first = [
            csv_safe(source.key),
            source.kind,
            csv_safe(str(source.label)),
            source.visits,
            source.reminders,
            source.signups,
            source.orders,
        ]
        for currency, minor in source.revenue.items() or [("", 0)]:
            yield [*first, currency, minor]


def funnel_csv_rows(report: ShowReport) -> Iterator[list[Any]]:
    yield FUNNEL_COLUMNS
    for number, step in enumerate(report.funnel, start=1):
        yield [
            number,
            step.metric,
            step.count,
            _ratio(step.share),
            "" if step.dropped is None else step.dropped,
            _ratio(step.dropped_share),
        ]


def products_csv_rows(report: ShowReport) -> Iterator[list[Any]]:
    """A row per product and currency of its revenue (one with an empty
    currency when it sold nothing)."""
    yield PRODUCT_COLUMNS
    for product in report.products:
        first = [
            product.product_id,
            csv_safe(product.name),
            product.impressions,
            product.buy_taps,
            product.holds,
            product.units,
        ]
        for currency, minor in product.revenue.items() or [("", 0)]:
            yield [*first, currency, minor]


def shows_csv_rows(report: BrandReport) -> Iterator[list[Any]]:
    """A row per ended show and currency of its revenue (one with an empty
    currency when it sold nothing)."""
    yield SHOW_COLUMNS
    for row in report.rows:
        first = [
            row.show.slug,
            csv_safe(row.show.title),
            row.local_start.isoformat() if row.local_start else "",
            report.time_zone,
            "" if row.duration_seconds is None else row.duration_seconds,
            row.unique_viewers,
            row.peak_viewers,
            row.orders_paid,
            row.buyers,
            _ratio(row.conversion),
        ]
        for currency, minor in row.revenue.items() or [("", 0)]:
            yield [*first, currency, minor]


def write_csv(rows: Iterable[list[Any]], out: Any) -> None:
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(row)
