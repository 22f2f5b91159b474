"""Dates and durations in the viewer's language (Babel):
``{% datetime show.scheduled_at %}``, ``{% duration since %}`` (``2 hours``) and
``{% ago then %}`` (``2 days ago``, ``vor 2 Tagen``: the phrase inflects)."""

from __future__ import annotations

from datetime import datetime, timedelta

from babel.dates import format_date, format_timedelta, get_time_format
from babel.dates import format_time as babel_format_time
from django import template
from django.utils import timezone

from checkout.money import babel_locale

register = template.Library()


def format_datetime(value: datetime, language: str | None = None) -> str:
    """A moment as the viewer's language writes it, in the site's time zone and
    naming it: ``Thursday, December 3, 2026, 6:30 PM UTC``,
    ``Donnerstag, 3. Dezember 2026, 18:30 UTC``."""
    locale = babel_locale(language)
    zone = timezone.get_current_timezone()
    date = format_date(value.astimezone(zone), "full", locale=locale)
    time = babel_format_time(
        value,
        f"{get_time_format('short', locale=locale).pattern} z",
        tzinfo=zone,
        locale=locale,
    )
    return str(locale.datetime_formats["long"]).format(time, date)


def format_duration(value: timedelta, language: str | None = None) -> str:
    """A rounded span of time: ``2 hours``, ``2 Stunden``, ``2 oere``."""
    return format_timedelta(value, locale=babel_locale(language))


def format_ago(value: datetime, language: str | None = None) -> str:
    """How long ago ``value`` was: ``2 days ago``, ``vor 2 Tagen``."""
    return format_timedelta(
        value - timezone.now(), add_direction=True, locale=babel_locale(language)
    )


@register.simple_tag(name="datetime")
def datetime_tag(value: datetime | None) -> str:
    return format_datetime(value) if value else ""


@register.simple_tag
def duration(start: datetime | None, end: datetime | None = None) -> str:
    """The time from ``start`` to ``end`` (default: now)."""
    if start is None:
        return ""
    return format_duration((end or timezone.now()) - start)


@register.simple_tag
def ago(value: datetime | None) -> str:
    return format_ago(value) if value else ""
