"""Bringing the audience back: following a brand, "Remind me" on a show, what
a viewer wants to be emailed about, one-click unsubscribe, and the show in the
viewer's calendar (docs/audience.md).

The emails themselves are sent by the background worker (``shows/notices.py``);
here is what people ask for and how it is kept.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from realtime import limiter
from shows.exceptions import InvalidInput
from shows.models import (
    Brand,
    Follow,
    NotificationSettings,
    Reminder,
    Show,
    User,
)

CONFIRM_SALT = "showfloor.reminder.confirm"
CONFIRM_MAX_AGE = timedelta(days=7)
UNSUBSCRIBE_SALT = "showfloor.notices.unsubscribe"
# Confirmation emails per guest address: a few, then one an hour, so nobody
# can flood someone else's inbox through the form.
CONFIRMATIONS_BURST = 3
CONFIRMATIONS_PER_HOUR = 1


def _absolute(path: str) -> str:
    return str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/") + path


# --- Following a brand -----------------------------------------------------------


def follow_set(*, user: User, brand: Brand, following: bool) -> bool:
    """Follow or unfollow ``brand``; returns whether ``user`` now follows it.
    Following twice is following once."""
    if following:
        try:
            with transaction.atomic():
                Follow.objects.get_or_create(user=user, brand=brand)
        except IntegrityError:
            pass  # the same tap twice at once: the other request made it
        return True
    Follow.objects.filter(user=user, brand=brand).delete()
    return False


def is_following(*, user: User | None, brand: Brand) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return Follow.objects.filter(user=user, brand=brand).exists()


# --- "Remind me" ------------------------------------------------------------------


def confirm_token(reminder: Reminder) -> str:
    return signing.dumps({"r": reminder.pk, "e": reminder.email}, salt=CONFIRM_SALT)


def confirm_url(reminder: Reminder) -> str:
    return _absolute(reverse("reminder_confirm", args=[confirm_token(reminder)]))


def reminder_ask(
    *,
    show: Show,
    user: User | None = None,
    email: str = "",
    language: str = "",
    source: str = "",
) -> Reminder:
    """Remember that someone wants to hear when ``show`` starts. A signed-in
    viewer's reminder holds at once; a guest's only once they confirm through
    the link emailed to them (sent by the worker, at most a few an hour per
    address). ``source`` is where they came from (kept from the first ask).
    Asking again changes nothing. Raises ``InvalidInput`` for an ended show
    or a guest without a valid email."""
    if show.status == Show.Status.ENDED:
        raise InvalidInput(_("This show has ended."))
    if user is not None and user.is_authenticated:
        try:
            with transaction.atomic():
                reminder, _created = Reminder.objects.get_or_create(
                    show=show,
                    user=user,
                    defaults={
                        "confirmed_at": timezone.now(),
                        "language": language,
                        "source": source[:64],
                    },
                )
        except IntegrityError:
            reminder = Reminder.objects.get(show=show, user=user)
        return reminder
    address = email.strip().lower()
    try:
        validate_email(address)
    except ValidationError as exc:
        raise InvalidInput(_("Enter a valid email address.")) from exc
    try:
        with transaction.atomic():
            reminder, _created = Reminder.objects.get_or_create(
                show=show,
                user=None,
                email=address,
                defaults={"language": language, "source": source[:64]},
            )
    except IntegrityError:
        reminder = Reminder.objects.get(show=show, user=None, email=address)
    if reminder.confirmed_at is None:
        wait = limiter.take_token(
            f"audience:confirm:{address}",
            capacity=CONFIRMATIONS_BURST,
            rate=CONFIRMATIONS_PER_HOUR / 3600,
        )
        if wait == 0:
            from shows import notices

            transaction.on_commit(
                partial(notices.confirmation_deliver.enqueue, reminder_id=reminder.pk)
            )
    return reminder


def reminder_confirm(*, token: str) -> Reminder:
    """Confirm a guest's reminder from the emailed link (once is enough).
    Raises ``InvalidInput`` for a link that is broken, too old or for a
    reminder no longer there."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature as exc:
        raise InvalidInput(
            _("This link is broken or too old. Ask for a reminder again.")
        ) from exc
    reminder = (
        Reminder.objects.select_related("show")
        .filter(pk=data.get("r"), email=data.get("e"))
        .first()
    )
    if reminder is None:
        raise InvalidInput(_("This reminder no longer exists. Ask for it again."))
    if reminder.confirmed_at is None:
        Reminder.objects.filter(pk=reminder.pk, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
        reminder.refresh_from_db()
    return reminder


def reminder_cancel(*, show: Show, user: User) -> None:
    Reminder.objects.filter(show=show, user=user).delete()


def has_reminder(*, user: User | None, show: Show) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return Reminder.objects.filter(show=show, user=user).exists()


# --- What a viewer wants to be emailed about ------------------------------------


def settings_for(*, user: User) -> NotificationSettings:
    found, _created = NotificationSettings.objects.get_or_create(user=user)
    return found


def settings_set(
    *, user: User, before_start: bool, live_now: bool
) -> NotificationSettings:
    found, _created = NotificationSettings.objects.update_or_create(
        user=user, defaults={"before_start": before_start, "live_now": live_now}
    )
    return found


# --- One-click unsubscribe (RFC 8058) -------------------------------------------


def unsubscribe_token(address: str) -> str:
    return signing.dumps({"a": address.strip().lower()}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(address: str) -> str:
    return _absolute(reverse("unsubscribe", args=[unsubscribe_token(address)]))


def unsubscribe(*, token: str) -> str:
    """Stop every reminder email to the token's address: an account's
    settings are turned off, a guest's reminders of shows to come are
    dropped. Returns the address. Unsubscribing twice is fine. Raises
    ``InvalidInput`` for a broken link (unsubscribe links do not expire)."""
    try:
        address = str(signing.loads(token, salt=UNSUBSCRIBE_SALT)["a"])
    except (signing.BadSignature, KeyError, TypeError) as exc:
        raise InvalidInput(_("This unsubscribe link is broken.")) from exc
    with transaction.atomic():
        for user in User.objects.filter(email__iexact=address):
            settings_set(user=user, before_start=False, live_now=False)
        Reminder.objects.filter(user__isnull=True, email=address).exclude(
            show__status=Show.Status.ENDED
        ).delete()
    return address


# --- The show in the viewer's calendar -------------------------------------------

# A show has no end time of its own; calendars get this long an event.
CALENDAR_DURATION = timedelta(hours=1)


def show_url(show: Show) -> str:
    return _absolute(reverse("show_detail", args=[show.slug]))


def calendar_ics(show: Show) -> bytes:
    """The show as an iCalendar event (``icalendar``), in UTC. Its UID is the
    show's, and its SEQUENCE grows with time, so a calendar that fetches the
    file again after a reschedule updates the event instead of adding one."""
    from icalendar import Calendar, Event

    now = timezone.now()
    calendar = Calendar()
    calendar.add("prodid", "-//Showfloor//Live shows//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    host = str(settings.SHOWFLOOR_PUBLIC_URL).split("//", 1)[-1].split("/")[0]
    event.add("uid", f"show-{show.pk}@{host}")
    event.add("dtstamp", now)
    event.add("sequence", int((now - show.created_at).total_seconds() // 60))
    event.add("dtstart", show.scheduled_at)
    event.add("dtend", show.scheduled_at + CALENDAR_DURATION)
    event.add("summary", f"{show.title} · {show.brand.name}")
    event.add("description", f"{show.description}\n\n{show_url(show)}".strip())
    event.add("url", show_url(show))
    event.add("location", show_url(show))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def calendar_links(show: Show) -> dict[str, str]:
    """ "Add to calendar" links for Google Calendar and Outlook on the web."""
    start = show.scheduled_at.astimezone(UTC)
    end = start + CALENDAR_DURATION
    title = f"{show.title} · {show.brand.name}"
    details = f"{show.description}\n\n{show_url(show)}".strip()
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
            "details": details,
            "location": show_url(show),
        }
    )
    outlook = "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": title,
            "startdt": start.isoformat(),
            "enddt": end.isoformat(),
            "body": details,
            "location": show_url(show),
        }
    )
    return {"google": google, "outlook": outlook}
