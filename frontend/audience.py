"""The audience's pages and forms: "Remind me" and its confirmation, following
a brand, what a viewer wants to be emailed about, the one-click unsubscribe
(RFC 8058) and the show as a calendar file (shows/services/audience.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from shows import attribution, selectors
from shows.exceptions import InvalidInput
from shows.models import Brand, Show, User
from shows.services import audience


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


def _watchable(request: HttpRequest, slug: str) -> Show:
    """The show, if this visitor may see it (a private show once its code was
    given): its title, time and calendar are for its audience only."""
    try:
        show = selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc
    if not selectors.show_access_granted(
        show=show, session=request.session, user=_user(request)
    ):
        raise Http404(_("There is no show at this address."))
    return show


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = str(request.POST.get("next") or "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = fallback
    return redirect(target)


def _message(
    request: HttpRequest,
    title: str,
    text: str,
    status: int = 200,
    show: Show | None = None,
) -> HttpResponse:
    """The page an emailed link ends on: what happened, or why it did not."""
    return render(
        request,
        "frontend/audience/message.html",
        {"title": title, "text": text, "show": show},
        status=status,
    )


@require_POST
def remind(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Remind me": a signed-in viewer at once, a guest by the email they give
    (confirmed through a link first). ``cancel`` takes a reminder back."""
    show = _watchable(request, slug)
    user = _user(request)
    fallback = f"/shows/{show.slug}/"
    if request.POST.get("cancel") and user is not None:
        audience.reminder_cancel(show=show, user=user)
        messages.success(request, _("You will not be reminded of this show."))
        return _back(request, fallback)
    try:
        reminder = audience.reminder_ask(
            show=show,
            user=user,
            email=str(request.POST.get("email") or "")[:254],
            language=get_language() or "",
            source=attribution.source_for(request, show),
        )
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return _back(request, fallback)
    if reminder.confirmed_at is None:
        messages.success(
            request,
            _("Check your inbox: confirm the link we sent to %(email)s.")
            % {"email": reminder.email},
        )
    else:
        messages.success(
            request, _("We will email you before it starts and when it goes live.")
        )
    return _back(request, fallback)


@never_cache
@require_http_methods(["GET", "POST"])
def reminder_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: a button confirms (a GET alone does not, so a mail
    scanner following links confirms nothing)."""
    if request.method == "POST":
        try:
            reminder = audience.reminder_confirm(token=token)
        except InvalidInput as exc:
            return _message(request, _("This link does not work"), exc.message, 400)
        return _message(
            request,
            _("Reminder confirmed"),
            _("We will email you before it starts and when it goes live."),
            show=reminder.show,
        )
    return render(
        request,
        "frontend/audience/confirm.html",
        {"action": request.path, "button": _("Confirm the reminder")},
    )


@require_GET
def brand_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A brand's page: who they are, their public shows to come and past
    ones, and Follow (signed-out visitors are asked to log in first)."""
    brand = Brand.objects.filter(slug=slug).first()
    if brand is None:
        raise Http404(_("There is no such brand."))
    user = _user(request)
    shows = selectors.brand_public_shows(brand=brand)
    return render(
        request,
        "frontend/audience/brand.html",
        {
            "brand": brand,
            "shows": shows,
            # Past shows with a recording are watched (and shopped) as replays.
            "replays": [s for s in shows.recent if s.recording_file],
            "past": [s for s in shows.recent if not s.recording_file],
            "following": audience.is_following(user=user, brand=brand),
            "followers": brand.follows.count(),
            "page_url": request.build_absolute_uri(),
        },
    )


@require_POST
@login_required
def follow(request: HttpRequest, slug: str) -> HttpResponse:
    user = _user(request)
    assert user is not None  # noqa: S101  # nosec B101 - login_required
    brand = Brand.objects.filter(slug=slug).first()
    if brand is None:
        raise Http404(_("There is no such brand."))
    following = audience.follow_set(
        user=user, brand=brand, following=request.POST.get("follow") == "1"
    )
    messages.success(
        request,
        (
            _("You follow %(brand)s: we tell you when it goes live.")
            if following
            else _("You no longer follow %(brand)s.")
        )
        % {"brand": brand.name},
    )
    return _back(request, f"/brands/{brand.slug}/")


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    assert user is not None  # noqa: S101  # nosec B101 - login_required
    if request.method == "POST":
        audience.settings_set(
            user=user,
            before_start=request.POST.get("before_start") == "on",
            live_now=request.POST.get("live_now") == "on",
        )
        messages.success(request, _("Your email settings are saved."))
        return redirect("notification_settings")
    return render(
        request,
        "frontend/audience/settings.html",
        {
            "settings": audience.settings_for(user=user),
            "follows": user.follows.select_related("brand").order_by("brand__name"),
        },
    )


@never_cache
@csrf_exempt  # mail providers POST the one-click form (RFC 8058) without a token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a button (a link checker unsubscribes nobody). POST: the mail
    client's one-click ``List-Unsubscribe=One-Click`` or the button; it
    changes only what the signed token names, so no CSRF check is needed."""
    if request.method == "POST":
        try:
            address = audience.unsubscribe(token=token)
        except InvalidInput as exc:
            return _message(request, _("This link does not work"), exc.message, 400)
        return _message(
            request,
            _("Unsubscribed"),
            _("We will send no more reminders to %(email)s.") % {"email": address},
        )
    return render(
        request,
        "frontend/audience/confirm.html",
        {"action": request.path, "button": _("Unsubscribe from reminders")},
    )


@require_GET
def calendar(request: HttpRequest, slug: str) -> HttpResponse:
    """The show as an ``.ics`` file (fetched again, it has the current time)."""
    show = _watchable(request, slug)
    response = HttpResponse(
        audience.calendar_ics(show), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{show.slug}.ics"'
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def brand_theme(request: HttpRequest, slug: str) -> HttpResponse:
    """The brand's colour as a stylesheet for its pages (light mode only: the
    dark scheme keeps the platform's colour, checked for contrast there). A
    file of its own, since the Content-Security-Policy allows no inline style;
    its address carries the colour, so it can be cached."""
    brand = Brand.objects.filter(slug=slug).first()
    colour = brand.accent_colour if brand is not None else ""
    css = ""
    if colour:
        css = (
            "@media (prefers-color-scheme: light) {\n"
            f"  :root {{ --accent: {colour}; --accent-text: #ffffff; }}\n"
            "}\n"
        )
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
