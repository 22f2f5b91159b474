"""Server-rendered pages: they parse, authorize, call a selector or a service."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template import loader
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from psycopg_pool import PoolTimeout

from config.middleware import database_unavailable, unavailable_response
from frontend import replay as replay_views
from frontend.forms import AccessCodeForm, SignupForm
from realtime import redis as realtime_redis
from shows import attribution, discovery, replay, selectors, services
from shows.exceptions import ShowfloorError, TooManyAttempts
from shows.models import Show, User
from shows.services import access, audience


def _countdown_strings() -> dict[str, str]:
    return {
        "startsIn": _("Starts in %(time)s"),
        "any": _("Starting any moment"),
        "d": pgettext("days", "d"),
        "h": pgettext("hours", "h"),
        "m": pgettext("minutes", "min"),
        "s": pgettext("seconds", "s"),
    }


def _viewer(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


def home(request: HttpRequest) -> HttpResponse:
    """Live shows first (with the people watching now, when Redis answers),
    then upcoming ones counting down, then recent replays; bounded reads
    (shows/discovery.py)."""
    context = {
        "shows": discovery.home_shows(),
        "server_now": timezone.now(),
        "countdown_i18n": _countdown_strings(),
    }
    return render(request, "frontend/home.html", context)


def _show_or_404(slug: str) -> Show:
    try:
        return selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc


def _access_code_page(request: HttpRequest, show: Show) -> HttpResponse:
    """The private show's gate: a form for its access code. A right code is
    remembered in the session; a wrong one says so; too many wrong ones from
    this address (here or on the media routes) make even the right one wait."""
    form = AccessCodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            right = access.access_code_check(
                show=show,
                code=form.cleaned_data["code"],
                client=request.META.get("REMOTE_ADDR", ""),
            )
        except TooManyAttempts as exc:
            form.add_error("code", exc.message)
            status = 429
        else:
            if right:
                granted = dict(
                    request.session.get(selectors.SHOW_ACCESS_SESSION_KEY, {})
                )
                granted[str(show.pk)] = selectors.show_access_token(show=show)
                request.session[selectors.SHOW_ACCESS_SESSION_KEY] = granted
                request.session.cycle_key()
                return redirect("show_detail", slug=show.slug)
            form.add_error(
                "code",
                _("That code does not open this show. Check it and try again."),
            )
            status = 403
    return render(
        request,
        "frontend/access_code.html",
        {"show": show, "form": form},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def show_detail(request: HttpRequest, slug: str) -> HttpResponse:
    show = _show_or_404(slug)
    viewer = _viewer(request)
    if not selectors.show_access_granted(
        show=show, session=request.session, user=viewer
    ):
        return _access_code_page(request, show)
    if request.method == "POST":
        return redirect("show_detail", slug=show.slug)
    lineup = selectors.show_lineup(show=show)
    picture = show.cover_url or next(
        (item.product.picture_url for item in lineup if item.product.picture_url), ""
    )
    context: dict[str, Any] = {
        "show": show,
        "lineup": lineup,
        "is_staff": selectors.user_is_show_staff(user=viewer, show=show),
        "server_now": timezone.now(),
        "countdown_i18n": _countdown_strings(),
        # "Remind me" and "Add to calendar" while it is still to come.
        "reminded": audience.has_reminder(user=viewer, show=show),
        "calendar": audience.calendar_links(show)
        if show.status == Show.Status.SCHEDULED
        else None,
        # Link previews (OpenGraph, Twitter cards).
        "page_url": request.build_absolute_uri(),
        "preview_image": request.build_absolute_uri(picture) if picture else "",
        # The share button's links, carrying this viewer's share code.
        "share": attribution.share_urls(request, show, viewer),
    }
    if replay.has_replay(show):
        # Ended with a recording: the same address plays the shoppable replay.
        return replay_views.replay_page(request, show, viewer, context)
    response = render(request, "frontend/show.html", context)
    attribution.note_visit(request, response, show)
    return response


@never_cache
def studio(request: HttpRequest, slug: str) -> HttpResponse:
    show = _show_or_404(slug)
    if not request.user.is_authenticated:
        # The printed or shared studio link: log in, then come back here.
        return redirect_to_login(request.get_full_path())
    if not selectors.user_is_show_staff(user=_viewer(request), show=show):
        message = _("Only the hosts and moderators of %(brand)s can open this studio.")
        raise PermissionDenied(message % {"brand": show.brand.name})
    context = {
        "show": show,
        "lineup": selectors.show_lineup(show=show),
        "server_now": timezone.now(),
        "countdown_i18n": _countdown_strings(),
    }
    return render(request, "frontend/studio.html", context)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(**form.cleaned_data)
        except ShowfloorError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            attribution.note_signup(request)
            next_url = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(
                next_url,
                allowed_hosts={request.get_host()},
                require_https=request.is_secure(),
            ):
                next_url = "home"
            return redirect(next_url)
    return render(request, "registration/signup.html", {"form": form})


# How long a dependency may take to answer ``/healthz`` before it counts as down.
HEALTH_CHECK_SECONDS = 0.8


def _redis_health(answer: queue.SimpleQueue[str]) -> None:
    try:
        realtime_redis.sync_client().ping()
    except realtime_redis.ERRORS:
        realtime_redis.mark_down()
        answer.put("down")
    else:
        answer.put("ok")


def _database_health() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except (DatabaseError, PoolTimeout):
        return "down"
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Health of each dependency (``ok``, ``down`` or ``not configured``): 200
    when every configured one answers, else 503 with ``Retry-After``. Redis is
    asked in a thread meanwhile, so the answer comes within about a second
    however slow either is (the database fails fast by its own timeouts)."""
    started = time.monotonic()
    redis: queue.SimpleQueue[str] = queue.SimpleQueue()
    if realtime_redis.url():
        threading.Thread(target=_redis_health, args=(redis,), daemon=True).start()
    else:
        redis.put("not configured")
    checks = {"database": _database_health()}
    try:
        checks["redis"] = redis.get(
            timeout=max(0.0, HEALTH_CHECK_SECONDS - (time.monotonic() - started))
        )
    except queue.Empty:
        checks["redis"] = "down"
    healthy = all(state != "down" for state in checks.values())
    response = JsonResponse(checks, status=200 if healthy else 503)
    if not healthy:
        response["Retry-After"] = str(settings.SHOWFLOOR_RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the 500 page, or the 503 answer when the error is the
    database being unreachable where ``process_exception`` does not see it
    (a middleware saving the session after the view)."""
    if database_unavailable(sys.exception()):
        return unavailable_response(request)
    return HttpResponseServerError(loader.render_to_string("500.html"))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) or _("You do not have access to this page.")
    return render(request, "403.html", {"message": message}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form posted without a valid CSRF token: usually an expired page."""
    message = _(
        "This form has expired or was sent from another site. Reload the page "
        "and try again."
    )
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) if isinstance(exception, Http404) else ""
    if not message or message.startswith("No ") or "{" in message:
        message = _("We could not find that page.")
    return render(request, "404.html", {"message": message}, status=404)
