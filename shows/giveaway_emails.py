"""The giveaway winner's email, in the language they entered in.

``shows.services.giveaways`` enqueues ``giveaway_won_email_deliver`` after
the draw commits; the background worker sends it. A draw that was claimed,
cancelled or passed on meanwhile is skipped. A mail server that refuses is
tried again (``RETRY_DELAYS``): a second copy is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_datetime
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from shows.models import Giveaway, GiveawayDraw

logger = logging.getLogger(__name__)

RETRY_DELAYS = (30, 120, 480)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def giveaway_won_message(draw: GiveawayDraw) -> EmailMultiAlternatives:
    """The winner's email, both parts, in the language of their entry."""
    entry = draw.entry
    giveaway = draw.giveaway
    show = giveaway.show
    language = entry.language or settings.LANGUAGE_CODE
    base = str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/")
    with translation.override(language):
        zone = _zone(show.brand.time_zone)
        context = {
            "language": language,
            "name": entry.user.display_name,
            "prize": giveaway.prize,
            "show": show.title,
            "brand": show.brand.name,
            "token": entry.token,
            "claim_by": format_datetime(
                draw.claim_by.astimezone(zone),
                "medium",
                tzinfo=zone,
                locale=_locale(language),
            ),
            "zone": show.brand.time_zone,
            "claim_url": base
            + reverse("giveaway_verify", args=[show.slug, giveaway.pk]),
        }
        message = EmailMultiAlternatives(
            subject=_("You won %(prize)s in %(show)s")
            % {"prize": giveaway.prize, "show": show.title},
            body=render_to_string("shows/email/giveaway_won.txt", context),
            to=[entry.user.email],
        )
        message.attach_alternative(
            render_to_string("shows/email/giveaway_won.html", context), "text/html"
        )
    return message


def giveaway_won_email_attempt(*, draw_id: int) -> str:
    """Send the email of draw ``draw_id``: ``sent``, ``skipped`` (claimed,
    cancelled or past its claim window) or ``failed``."""
    draw = (
        GiveawayDraw.objects.select_related("entry__user", "giveaway__show__brand")
        .filter(pk=draw_id)
        .first()
    )
    if (
        draw is None
        or draw.claimed_at is not None
        or draw.claim_by <= timezone.now()
        or draw.giveaway.status != Giveaway.Status.DRAWN
    ):
        return "skipped"
    try:
        giveaway_won_message(draw).send()
    except Exception:
        # Any failure of the mail server or its connection: try again later.
        return "failed"
    return "sent"


@task()
def giveaway_won_email_deliver(*, draw_id: int, attempt: int = 1) -> str:
    """Send a giveaway winner's email; after a failure, enqueue the next
    attempt, up to ``MAX_ATTEMPTS``. Returns the attempt's outcome."""
    outcome = giveaway_won_email_attempt(draw_id=draw_id)
    if outcome == "failed":
        if attempt < MAX_ATTEMPTS:
            giveaway_won_email_deliver.using(
                run_after=timezone.now() + timedelta(seconds=RETRY_DELAYS[attempt - 1])
            ).enqueue(draw_id=draw_id, attempt=attempt + 1)
            return "retry"
        logger.error("gave up on the winner's email of draw %s", draw_id)
    return outcome
