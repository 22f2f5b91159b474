"""The reminder emails: "starting soon" a set time before a show, "live now"
when it goes live, and the link that confirms a guest's "Remind me".

Who gets them: people who asked to be reminded of the show (signed in, or a
guest who confirmed), and for "live now" also the brand's followers, each as
their settings allow; one email per address however they came.

Once per person, show and kind: the batch first writes one ``Notice`` row per
recipient (unique per show, kind and address; a second run adds none), then
sends the unsent rows in batches. Each row is claimed with one conditional
update before its message goes to the mail server, so two workers never send
it twice; a worker that dies mid-batch leaves the rest unsent, and the
sweeper enqueues the batch again (``notices_due``) at most every
``RESUME_AFTER``. A worker that dies in the middle of one SMTP conversation
leaves that row claimed, and it is not sent again: at most once, as for order
emails (checkout/emails.py tells why). A mail server that refuses is retried
on the next resume, ``MAX_ATTEMPTS`` times in all.

Every message carries RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from shows.models import (
    Follow,
    Notice,
    NoticeBatch,
    NotificationSettings,
    Reminder,
    Show,
)
from shows.services import audience

logger = logging.getLogger(__name__)

K = Notice.Kind
SENDING = "sending"
BATCH_SIZE = 100
MAX_ATTEMPTS = 5
RESUME_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Recipient:
    address: str
    user_id: int | None
    language: str


def _recipients(show: Show, kind: str) -> list[Recipient]:
    """Everyone to tell about ``show``, one per address, as their settings
    allow (no settings row: both kinds on)."""
    setting = "before_start" if kind == K.STARTING_SOON else "live_now"
    refused = set(
        NotificationSettings.objects.filter(**{setting: False}).values_list(
            "user_id", flat=True
        )
    )
    found: dict[str, Recipient] = {}
    reminders = Reminder.objects.filter(
        show=show, confirmed_at__isnull=False
    ).select_related("user")
    for reminder in reminders:
        if reminder.user is not None:
            if reminder.user_id in refused or not reminder.user.email:
                continue
            address = reminder.user.email.lower()
        else:
            address = reminder.email
        found.setdefault(
            address, Recipient(address, reminder.user_id, reminder.language)
        )
    if kind == K.LIVE_NOW:
        for follow in Follow.objects.filter(brand_id=show.brand_id).select_related(
            "user"
        ):
            if follow.user_id in refused or not follow.user.email:
                continue
            address = follow.user.email.lower()
            found.setdefault(address, Recipient(address, follow.user_id, ""))
    return list(found.values())


def _still_timely(show: Show, kind: str) -> bool:
    """ "Starting soon" only before the show starts; "live now" only while live."""
    if kind == K.STARTING_SOON:
        return show.status == Show.Status.SCHEDULED
    return show.status == Show.Status.LIVE


def _message(notice: Notice, show: Show) -> EmailMultiAlternatives:
    language = notice.language or settings.LANGUAGE_CODE
    unsubscribe = audience.unsubscribe_url(notice.address)
    with translation.override(language):
        values = {"show": show.title, "brand": show.brand.name}
        subject = (
            _("%(brand)s is live now: %(show)s") % values
            if notice.kind == K.LIVE_NOW
            else _("Starting soon: %(show)s by %(brand)s") % values
        )
        context = {
            "language": language,
            "kind": notice.kind,
            "show": show,
            "brand": show.brand.name,
            "show_url": audience.show_url(show),
            "starts_at": show.scheduled_at,
            "unsubscribe_url": unsubscribe,
            "settings_url": str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/")
            + reverse("notification_settings"),
        }
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("shows/email/notice.txt", context),
            to=[notice.address],
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        message.attach_alternative(
            render_to_string("shows/email/notice.html", context), "text/html"
        )
    return message


def notices_deliver_batch(*, show_id: int, kind: str) -> dict[str, int]:
    """Write the once-rows of ``show``'s ``kind`` emails and send the unsent
    ones (the worker's task). Returns counts of ``sent``, ``failed`` and
    ``skipped``."""
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    show = Show.objects.select_related("brand").filter(pk=show_id).first()
    if show is None or not _still_timely(show, kind):
        return counts
    Notice.objects.bulk_create(
        [
            Notice(
                show=show,
                kind=kind,
                address=r.address,
                user_id=r.user_id,
                language=r.language,
            )
            for r in _recipients(show, kind)
        ],
        ignore_conflicts=True,
    )
    pending = Notice.objects.filter(
        show=show, kind=kind, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS
    ).exclude(last_error=SENDING)
    connection = get_connection()
    while True:
        batch = list(pending.order_by("id")[:BATCH_SIZE])
        if not batch:
            break
        for notice in batch:
            # Rendered before the claim: a template error leaves no stuck claim.
            message = _message(notice, show)
            message.connection = connection
            claimed = (
                Notice.objects.filter(pk=notice.pk, sent_at__isnull=True)
                .exclude(last_error=SENDING)
                .update(last_error=SENDING, attempts=F("attempts") + 1)
            )
            if not claimed:
                counts["skipped"] += 1
                continue
            try:
                message.send()
            except Exception as error:
                Notice.objects.filter(pk=notice.pk).update(
                    last_error=f"{type(error).__name__}: {error}"[:200]
                )
                counts["failed"] += 1
                continue
            Notice.objects.filter(pk=notice.pk).update(
                sent_at=timezone.now(), last_error=""
            )
            counts["sent"] += 1
        if counts["failed"] and counts["failed"] >= len(batch):
            break  # the mail server refuses everything: resume later
    return counts


@task()
def notices_deliver(*, show_id: int, kind: str) -> dict[str, int]:
    """The background worker's batch of ``kind`` emails about a show."""
    return notices_deliver_batch(show_id=show_id, kind=kind)


@task()
def confirmation_deliver(*, reminder_id: int) -> str:
    """Email a guest the link that confirms their "Remind me"."""
    reminder = (
        Reminder.objects.select_related("show__brand")
        .filter(pk=reminder_id, confirmed_at__isnull=True, user__isnull=True)
        .first()
    )
    if reminder is None:
        return "skipped"
    language = reminder.language or settings.LANGUAGE_CODE
    with translation.override(language):
        context = {
            "language": language,
            "show": reminder.show,
            "brand": reminder.show.brand.name,
            "confirm_url": audience.confirm_url(reminder),
        }
        message = EmailMultiAlternatives(
            subject=_("Confirm your reminder for %(show)s")
            % {"show": reminder.show.title},
            body=render_to_string("shows/email/reminder_confirm.txt", context),
            to=[reminder.email],
        )
        message.attach_alternative(
            render_to_string("shows/email/reminder_confirm.html", context),
            "text/html",
        )
    message.send()
    return "sent"


def notices_request(*, show_id: int, kind: str) -> bool:
    """Ask the worker, once per show and kind, for the batch (after the
    caller's commit). Returns whether this call asked. A show nobody asked
    to hear about (no confirmed reminder, and for "live now" no follower of
    its brand) asks for nothing: no empty task in the queue."""
    wanted = Reminder.objects.filter(show_id=show_id, confirmed_at__isnull=False)
    if not wanted.exists() and not (
        kind == K.LIVE_NOW and Follow.objects.filter(brand__shows__pk=show_id).exists()
    ):
        return False
    now = timezone.now()
    try:
        with transaction.atomic():
            _batch, created = NoticeBatch.objects.get_or_create(
                show_id=show_id, kind=kind, defaults={"enqueued_at": now}
            )
    except IntegrityError:
        return False
    if created:
        transaction.on_commit(
            lambda: notices_deliver.enqueue(show_id=show_id, kind=kind)
        )
    return created


def notices_due(*, now: datetime | None = None) -> int:
    """The sweeper's part: ask for "starting soon" emails of shows that start
    within ``SHOWFLOOR_REMINDER_LEAD_MINUTES``, and enqueue again batches a
    dead worker left unfinished. Returns how many batches were enqueued."""
    now = now or timezone.now()
    lead = timedelta(minutes=settings.SHOWFLOOR_REMINDER_LEAD_MINUTES)
    asked = 0
    soon = (
        Show.objects.filter(
            status=Show.Status.SCHEDULED,
            scheduled_at__gt=now,
            scheduled_at__lte=now + lead,
        )
        .exclude(
            pk__in=NoticeBatch.objects.filter(kind=K.STARTING_SOON).values("show_id")
        )
        .values_list("pk", flat=True)
    )
    for show_id in soon:
        asked += notices_request(show_id=show_id, kind=K.STARTING_SOON)
    unsent = Notice.objects.filter(
        show_id=OuterRef("show_id"),
        kind=OuterRef("kind"),
        sent_at__isnull=True,
        attempts__lt=MAX_ATTEMPTS,
    ).exclude(last_error=SENDING)
    unfinished = (
        NoticeBatch.objects.filter(enqueued_at__lte=now - RESUME_AFTER)
        .filter(
            Q(show__status=Show.Status.SCHEDULED, kind=K.STARTING_SOON)
            | Q(show__status=Show.Status.LIVE, kind=K.LIVE_NOW)
        )
        .filter(Exists(unsent))
    )
    for batch in unfinished:
        moved = NoticeBatch.objects.filter(
            pk=batch.pk, enqueued_at=batch.enqueued_at
        ).update(enqueued_at=now)
        if moved:
            notices_deliver.enqueue(show_id=batch.show_id, kind=batch.kind)
            asked += 1
    return asked
