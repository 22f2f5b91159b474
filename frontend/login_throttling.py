"""Login throttling: what Showfloor adds to django-axes.

Axes counts failed logins (the site's and the admin's) in the database, per
account and per client address, and refuses every login, the right password
included, once either count reaches ``AXES_FAILURE_LIMIT`` within
``AXES_COOLOFF_TIME``. Each refused try is counted too, so the wait always runs
from the last try: it is at most one cool-off, and that is what the message says.

The login forms (``frontend.forms``) turn a lockout into a message in the
viewer's language; ``lockout_response`` keeps that page and answers it with 429
and ``Retry-After``.
"""

from __future__ import annotations

import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_credentials
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.translation import gettext, ngettext

LOCKED_OUT_CODE = "locked_out"


def is_locked_out(request: HttpRequest | None) -> bool:
    """Whether the login tried on ``request`` was refused, or was the failure
    that reached the limit."""
    return bool(getattr(request, "axes_locked_out", False))


def wait_seconds(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds()) if cool_off else 0


def lockout_message(request: HttpRequest | None = None) -> str:
    """What a locked-out visitor reads, with the time to wait in whole minutes."""
    seconds = wait_seconds(request)
    if not seconds:
        return gettext(
            "Too many failed attempts to log in. Ask an administrator to unlock "
            "this account."
        )
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed attempts to log in. Please wait %(minutes)d minute "
        "before you try again.",
        "Too many failed attempts to log in. Please wait %(minutes)d minutes "
        "before you try again.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponseBase | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponseBase:
    """``AXES_LOCKOUT_CALLABLE``: the login page the view rendered (its form
    already says why), as 429 with ``Retry-After``; a plain message where no
    page was rendered."""
    response = original_response
    if response is None or response.status_code != 200:
        response = HttpResponse(lockout_message(request), content_type="text/plain")
    response.status_code = int(settings.AXES_HTTP_RESPONSE_CODE)
    seconds = wait_seconds(request)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


# axes ships no type information.
class LoginAttemptsHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """Axes' database handler, resetting only the signed-in account's failures.

    Axes' own ``AXES_RESET_ON_SUCCESS`` also forgets every failure from the
    client's address, so someone with an account of their own could guess
    another account's password four times, sign in as themselves, and go on.
    Here a success forgets the failures on that account alone; those on other
    accounts from the same address keep counting."""

    def user_logged_in(
        self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any
    ) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        username = get_client_username(request, get_credentials(user.get_username()))
        if username:
            self.reset_attempts(username=username)
