"""The reports in the brand workspace (docs/analytics.md, "The report"):
``/brand/<slug>/shows/<show>/report/`` for one show, ``/brand/<slug>/reports/``
for the brand's ended shows and the best time to go live, and their CSV
files. The figures are read by ``live.reports`` (which checks the role: the
brand's owners, hosts and moderators); this module formats them in the
viewer's language and time zone, and hands the charts their series as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_datetime, format_time
from babel.numbers import format_decimal, format_percent
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from checkout.money import Money, babel_locale
from checkout.traffic import traffic_sources
from frontend import workspace
from frontend.workspace import workspace_page
from live import reports
from shows.services.workspace import Seat

FUNNEL_LABELS = {
    "u.viewers": gettext_lazy("Watched"),
    "u.saw_card": gettext_lazy("Saw a product card"),
    "u.tapped_buy": gettext_lazy("Tapped Buy"),
    "u.reserved": gettext_lazy("Reserved"),
    "u.buyers": gettext_lazy("Paid"),
}
# What a table shows for a figure there is none of (no viewers, no money).
NONE = "\N{EN DASH}"
SHOW_CSV_PARTS = {
    "minutes": reports.minutes_csv_rows,
    "funnel": reports.funnel_csv_rows,
    "products": reports.products_csv_rows,
    "sources": reports.sources_csv_rows,
}


class Formats:
    """Numbers, shares, money, durations and times as the viewer's language
    writes them (Babel, as the rest of the site)."""

    def __init__(self) -> None:
        self.language = get_language() or "en"
        self.locale = babel_locale(self.language)

    def count(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return NONE
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(value, pattern, locale=self.locale))

    def share(self, value: float | None) -> str:
        if value is None:
            return NONE
        # The language's own percent pattern ("#,##0 %" in German), with
        # one decimal.
        head, zero, tail = str(self.locale.percent_formats[None].pattern).rpartition(
            "0"
        )
        pattern = f"{head}{zero}.0{tail}" if zero else "#,##0.0%"
        return str(format_percent(value, pattern, locale=self.locale))

    def money(self, values: dict[str, int]) -> str:
        if not values:
            return NONE
        return " + ".join(
            Money(minor, currency).format(self.language)
            for currency, minor in values.items()
        )

    def duration(self, seconds: int | None) -> str:
        if seconds is None:
            return NONE
        minutes, rest = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours}:{minutes:02d}:{rest:02d}"
        return f"{minutes}:{rest:02d}"

    def clock(self, moment: datetime, zone: Any = None) -> str:
        return str(
            format_time(
                moment,
                "HH:mm",
                tzinfo=zone or timezone.get_current_timezone(),
                locale=self.locale,
            )
        )

    def when(
        self, moment: datetime | None, zone: Any = None, length: str = "medium"
    ) -> str:
        if moment is None:
            return NONE
        return str(
            format_datetime(
                moment,
                length,
                tzinfo=zone or timezone.get_current_timezone(),
                locale=self.locale,
            )
        )


def _context(seat: Seat, **extra: Any) -> dict[str, Any]:
    return workspace._context(seat, "reports", **extra)


def _csv(filename: str, rows: Any) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    reports.write_csv(rows, response)
    return response


def _figure_list(report: reports.ShowReport, f: Formats) -> list[tuple[str, str]]:
    """The show's figures as (label, value) in the page's order."""
    fig = report.figures
    return [
        (_("Unique viewers"), f.count(fig.unique_viewers)),
        (_("Peak viewers"), f.count(fig.peak_viewers)),
        (_("Total watch time"), f.duration(fig.watch_seconds)),
        (_("Average watch time"), f.duration(fig.average_watch_seconds)),
        (_("Duration"), f.duration(report.duration_seconds)),
        (_("Chat messages"), f.count(fig.chat)),
        (_("Reactions"), f.count(fig.reactions)),
        (_("Questions"), f.count(fig.questions)),
        (_("Buy taps"), f.count(fig.buy_taps)),
        (_("Buy sheets opened"), f.count(fig.sheet_opens)),
        (_("Holds"), f.count(fig.holds)),
        (_("Orders paid"), f.count(fig.orders_paid)),
        (_("Buyers"), f.count(fig.buyers)),
        (_("New buyers"), f.count(report.buyers_new)),
        (_("Returning buyers"), f.count(report.buyers_returning)),
        (_("Refunds"), f.count(fig.refunds)),
        (_("Revenue"), f.money(fig.revenue)),
        (_("Refunded"), f.money(fig.refunded)),
        (_("Revenue net of refunds"), f.money(fig.net_revenue)),
        (_("Conversion (buyers per unique viewer)"), f.share(fig.conversion)),
    ]


def _replay_list(report: reports.ShowReport, f: Formats) -> list[tuple[str, str]]:
    """The replay's figures as (label, value), or none before it had any."""
    replay = report.replay
    if replay is None or not (replay.views or replay.orders_paid):
        return []
    return [
        (_("Replay views"), f.count(replay.views)),
        (_("Unique replay viewers"), f.count(replay.unique_viewers)),
        (_("Orders paid from the replay"), f.count(replay.orders_paid)),
        (_("Revenue from the replay"), f.money(replay.revenue)),
    ]


@workspace_page
@require_GET
def show_report(request: HttpRequest, seat: Seat, show_slug: str) -> HttpResponse:
    report = reports.show_report(user=seat.user, brand=seat.brand, slug=show_slug)
    f = Formats()
    minutes = [
        {
            "at": m.at.isoformat(),
            "label": f.clock(m.at),
            "viewers": f.count(m.viewers),
            "present": f.count(m.present),
            "retention": f.share(m.retention),
            "orders_paid": f.count(m.orders_paid),
        }
        for m in report.minutes
    ]
    chart = {
        "at": [int(m.at.timestamp()) for m in report.minutes],
        "viewers": [m.viewers for m in report.minutes],
        "orders": [m.orders_paid for m in report.minutes],
        "retention": [m.retention or 0 for m in report.minutes],
        "pins": [int(at.timestamp()) for at, _name in report.pins],
        "time_zone": timezone.get_current_timezone_name(),
    }
    return render(
        request,
        "frontend/workspace/report.html",
        _context(
            seat,
            report=report,
            show=report.show,
            figures=_figure_list(report, f),
            replay_figures=_replay_list(report, f),
            funnel=[
                {
                    "label": FUNNEL_LABELS[step.metric],
                    "count": f.count(step.count),
                    "share": f.share(step.share),
                    "dropped": NONE if step.dropped is None else f.count(step.dropped),
                    "dropped_share": f.share(step.dropped_share),
                    "width": round(100 * (step.share or 0)),
                }
                for step in report.funnel
            ],
            minutes=minutes,
            pins=[(f.clock(at), name) for at, name in report.pins],
            products=[
                {
                    "name": p.name,
                    "impressions": f.count(p.impressions),
                    "buy_taps": f.count(p.buy_taps),
                    "holds": f.count(p.holds),
                    "units": f.count(p.units),
                    "revenue": f.money(p.revenue),
                }
                for p in report.products
            ],
            started=f.when(report.show.started_at),
            ended=f.when(report.show.ended_at),
            chart=chart,
            traffic_sources=[
                {
                    "label": source.label,
                    "kind": source.kind,
                    "visits": f.count(source.visits),
                    "reminders": f.count(source.reminders),
                    "signups": f.count(source.signups),
                    "orders": f.count(source.orders),
                    "revenue": f.money(source.revenue),
                }
                for source in traffic_sources(report.show)
            ],
        ),
    )


@workspace_page
@require_GET
def show_report_csv(
    request: HttpRequest, seat: Seat, show_slug: str, part: str
) -> HttpResponse:
    rows = SHOW_CSV_PARTS.get(part)
    if rows is None:
        raise Http404(_("There is no such export."))
    report = reports.show_report(user=seat.user, brand=seat.brand, slug=show_slug)
    return _csv(f"{seat.brand.slug}-{report.show.slug}-{part}.csv", rows(report))


@workspace_page
@require_GET
def brand_reports(request: HttpRequest, seat: Seat) -> HttpResponse:
    report = reports.brand_report(user=seat.user, brand=seat.brand)
    f = Formats()
    zone = reports.brand_zone(seat.brand)
    busiest = max(
        (c.average_viewers or 0 for row in report.heatmap for c in row), default=0
    )
    heatmap = [
        {
            "hour": hour,
            "label": f"{hour:02d}:00",
            "cells": [
                {
                    "shows": cell.shows,
                    "viewers": f.count(cell.average_viewers, 1),
                    "conversion": f.share(cell.average_conversion),
                    # Five shades from the average viewers; the numbers carry
                    # the meaning, the shade only helps the eye.
                    "level": (
                        0
                        if not cell.shows or not busiest
                        else 1 + min(3, int(4 * (cell.average_viewers or 0) / busiest))
                    ),
                }
                for cell in row
            ],
        }
        for hour, row in zip(report.hours, report.heatmap, strict=True)
    ]
    charted = [r for r in reversed(report.rows) if r.show.started_at]
    chart = {
        "at": [int(r.show.started_at.timestamp()) for r in charted],  # type: ignore[union-attr]
        "viewers": [r.unique_viewers for r in charted],
        "orders": [r.orders_paid for r in charted],
        "time_zone": report.time_zone,
    }
    return render(
        request,
        "frontend/workspace/reports.html",
        _context(
            seat,
            report=report,
            rows=[
                {
                    "show": r.show,
                    "date": f.when(r.local_start, zone, "short"),
                    "duration": f.duration(r.duration_seconds),
                    "viewers": f.count(r.unique_viewers),
                    "peak": f.count(r.peak_viewers),
                    "orders": f.count(r.orders_paid),
                    "revenue": f.money(r.revenue),
                    "conversion": f.share(r.conversion),
                }
                for r in report.rows
            ],
            weekdays=[WEEKDAYS[day] for day in range(7)],
            heatmap=heatmap,
            chart=chart,
        ),
    )


@workspace_page
@require_GET
def brand_reports_csv(request: HttpRequest, seat: Seat) -> HttpResponse:
    report = reports.brand_report(user=seat.user, brand=seat.brand)
    return _csv(f"{seat.brand.slug}-shows.csv", reports.shows_csv_rows(report))
