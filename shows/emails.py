"""The team invitation email, written in the invitation's language (chosen
when it was made: the inviting owner's pick, else the invitee's language where
known, else the inviter's; ``team.invitation_create``).

Nothing is sent in a request: ``shows.services.team`` enqueues
``shows.tasks.invitation_email_deliver`` after its transaction commits and
the background worker calls ``invitation_email_attempt``. An invitation that
was withdrawn, accepted or sent again meanwhile is skipped (a resend enqueues
its own email with the new link). A second copy of an invitation is harmless,
so a failed attempt is simply tried again (``RETRY_DELAYS``).
"""

from __future__ import annotations

from datetime import timedelta

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from shows.models import Invitation, Membership
from shows.services.team import invitation_expires_at, invitation_token

# Seconds to wait before the attempt after each failed one (five in all,
# over about half an hour).
RETRY_DELAYS = (30, 120, 480, 1200)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def invitation_url(invitation: Invitation) -> str:
    """The absolute link of the invitation's newest version."""
    path = reverse("invitation_accept", args=[invitation_token(invitation)])
    return str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/") + path


def _locale(language: str) -> Locale:
    try:
        return Locale.parse(translation.to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def invitation_message(invitation: Invitation) -> EmailMultiAlternatives:
    """The invitation email, both parts, in the invitation's language."""
    language = invitation.language or settings.LANGUAGE_CODE
    with translation.override(language):
        expires = invitation_expires_at(invitation).astimezone(
            timezone.get_current_timezone()
        )
        context = {
            "language": language,
            "brand": invitation.brand.name,
            "inviter": str(invitation.invited_by or invitation.brand.name),
            "role": str(Membership.Role(invitation.role).label),
            "email": invitation.email,
            "accept_url": invitation_url(invitation),
            "expires": format_date(expires.date(), "long", locale=_locale(language)),
        }
        message = EmailMultiAlternatives(
            subject=_("Join %(brand)s on Showfloor") % {"brand": invitation.brand.name},
            body=render_to_string("shows/email/invitation.txt", context),
            to=[invitation.email],
        )
        message.attach_alternative(
            render_to_string("shows/email/invitation.html", context), "text/html"
        )
    return message


def invitation_email_attempt(*, invitation_id: int, version: int) -> str:
    """Send the email of the invitation's ``version``: ``sent``, ``skipped``
    (no longer pending, or a newer version exists) or ``failed`` (the mail
    server refused; the caller may try again). Raises only for bugs."""
    invitation = (
        Invitation.objects.select_related("brand", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if (
        invitation is None
        or invitation.status != Invitation.Status.PENDING
        or invitation.version != version
    ):
        return "skipped"
    message = invitation_message(invitation)
    try:
        message.send()
    except Exception:
        # Any failure of the mail server or its connection: try again later.
        return "failed"
    return "sent"


def retry_delay(attempt: int) -> timedelta:
    """How long to wait after the ``attempt``-th failed attempt."""
    return timedelta(seconds=RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1])
