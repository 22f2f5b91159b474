"""Reads of a show's live figures (docs/analytics.md): what ``realtime.counting``
has counted so far, joined with the show's pins for product names."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from checkout.models import FlashSale
from realtime import counting
from shows.models import Pin, Show


@dataclass(frozen=True, slots=True)
class ProductFigures:
    product_id: int
    name: str
    pinned: bool
    impressions: int
    buy_taps: int
    holds: int
    units: int
    revenue: dict[str, int]
    # The product's share of refunded money (``checkout.counts.product_shares``).
    refunded: dict[str, int]


# At most this many minutes of a show are charted live.
SERIES_MINUTES = 180
CHART_MIN_MINUTES = 10


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of the show's chart: its start (epoch seconds), the most
    people watching in it, the orders paid in it."""

    at: int
    viewers: int
    orders_paid: int


@dataclass(frozen=True, slots=True)
class Funnel:
    """People at each step to a purchase, each counted once for the show:
    watched, saw a product card, tapped Buy, reserved, paid."""

    viewers: int
    saw_card: int
    tapped_buy: int
    reserved: int
    paid: int


def funnel_of(totals: dict[str, int]) -> Funnel:
    """The funnel from a show's totals (the store's or the rolled-up ones)."""
    return Funnel(
        viewers=totals.get("u.viewers", 0),
        saw_card=totals.get("u.saw_card", 0),
        tapped_buy=totals.get("u.tapped_buy", 0),
        reserved=totals.get("u.reserved", 0),
        paid=totals.get("u.buyers", 0),
    )


@dataclass(frozen=True, slots=True)
class LiveFigures:
    viewers_now: int
    peak_viewers: int
    unique_viewers: int
    watch_seconds: int
    average_watch_seconds: int | None
    chat: int
    reactions: int
    questions: int
    chat_last_minute: int
    reactions_last_minute: int
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
    funnel: Funnel
    products: list[ProductFigures]
    minutes: list[Minute]
    pins: list[tuple[int, str]]
    # Flash sales that started in the charted minutes: (start, product name).
    sales: list[tuple[int, str]]


def money_of(values: dict[str, int], prefix: str) -> dict[str, int]:
    """Amounts per currency counted under ``prefix`` (``revenue.EUR`` →
    ``{"EUR": …}``), currencies in order."""
    return {
        name[len(prefix) :]: value
        for name, value in sorted(values.items())
        if name.startswith(prefix)
    }


def net_of(revenue: dict[str, int], refunded: dict[str, int]) -> dict[str, int]:
    """Revenue less refunds, per currency of either."""
    return {
        currency: revenue.get(currency, 0) - refunded.get(currency, 0)
        for currency in sorted({*revenue, *refunded})
    }


def show_live_figures(*, show: Show, now: float | None = None) -> LiveFigures:
    """The show's figures as counted until a second ago. Raises one of
    ``realtime.redis.ERRORS`` when Redis does not answer."""
    totals = counting.totals(show.pk)
    moment = time.time() if now is None else now
    last_minute = counting.minute_counts(show.pk, counting.minute_of(moment) - 1)
    unique_viewers = totals.get("u.viewers", 0)
    buyers = totals.get("u.buyers", 0)
    watch = totals.get("watch_seconds", 0)
    revenue = money_of(totals, "revenue.")
    refunded = money_of(totals, "refunded.")
    net = net_of(revenue, refunded)
    current = counting.minute_of(moment)
    started = (
        counting.minute_of(show.started_at.timestamp()) if show.started_at else current
    )
    # At least the last ten minutes, so a chart of a show that just started
    # spans minutes rather than seconds.
    first = max(
        min(started, current - CHART_MIN_MINUTES + 1), current - SERIES_MINUTES + 1
    )
    series = counting.minute_series(show.pk, first, current)
    minutes = [
        Minute(
            at=minute * 60,
            viewers=series.get(minute, {}).get("max.viewers", 0),
            orders_paid=series.get(minute, {}).get("orders_paid", 0),
        )
        for minute in range(first, current + 1)
    ]
    products: list[ProductFigures] = []
    pins = list(Pin.objects.filter(show=show).select_related("product"))
    pinned_now = {pin.product_id for pin in pins if pin.unpinned_at is None}
    for pin in pins:
        if any(p.product_id == pin.product_id for p in products):
            continue
        field = f"p{pin.product_id}."
        products.append(
            ProductFigures(
                product_id=pin.product_id,
                name=pin.product.name,
                pinned=pin.product_id in pinned_now,
                impressions=totals.get(field + "impressions", 0),
                buy_taps=totals.get(field + "buy_taps", 0),
                holds=totals.get(field + "holds", 0),
                units=totals.get(field + "units", 0),
                revenue=money_of(totals, field + "revenue."),
                refunded=money_of(totals, field + "refunded."),
            )
        )
    return LiveFigures(
        viewers_now=totals.get("now.viewers", 0),
        peak_viewers=totals.get("max.viewers", 0),
        unique_viewers=unique_viewers,
        watch_seconds=watch,
        average_watch_seconds=round(watch / unique_viewers) if unique_viewers else None,
        chat=totals.get("chat", 0),
        reactions=totals.get("reactions", 0),
        questions=totals.get("questions", 0),
        chat_last_minute=last_minute.get("chat", 0),
        reactions_last_minute=last_minute.get("reactions", 0),
        buy_taps=totals.get("buy_taps", 0),
        sheet_opens=totals.get("sheet_opens", 0),
        holds=totals.get("holds", 0),
        orders_paid=totals.get("orders_paid", 0),
        buyers=buyers,
        refunds=totals.get("refunds", 0),
        revenue=revenue,
        refunded=refunded,
        net_revenue=net,
        conversion=buyers / unique_viewers if unique_viewers else None,
        funnel=funnel_of(totals),
        products=products,
        minutes=minutes,
        pins=[
            (int(pin.pinned_at.timestamp()), pin.product.name)
            for pin in pins
            if pin.pinned_at.timestamp() >= first * 60
        ],
        sales=[
            (int(sale.starts_at.timestamp()), sale.product.name)
            for sale in FlashSale.objects.filter(
                show=show,
                starts_at__gte=datetime.fromtimestamp(first * 60, tz=UTC),
            )
            .select_related("product")
            .order_by("starts_at")
        ],
    )
