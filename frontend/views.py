"""Server-rendered pages: they parse, authorize, call a selector or a service."""

from __future__ import annotations

from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from frontend.forms import SignupForm
from shows import selectors, services
from shows.exceptions import ShowfloorError
from shows.models import Show


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"shows": selectors.show_list_home()})


def _show_or_404(slug: str) -> Show:
    try:
        return selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc


def show_detail(request: HttpRequest, slug: str) -> HttpResponse:
    show = _show_or_404(slug)
    context = {
        "show": show,
        "lineup": selectors.show_lineup(show=show),
        "is_staff": selectors.user_is_show_staff(user=request.user, show=show),  # type: ignore[arg-type]
    }
    return render(request, "frontend/show.html", context)


def studio(request: HttpRequest, slug: str) -> HttpResponse:
    show = _show_or_404(slug)
    if not selectors.user_is_show_staff(user=request.user, show=show):  # type: ignore[arg-type]
        raise PermissionDenied(
            _("Only the hosts and moderators of %(brand)s can open this studio.")
            % {"brand": show.brand.name}
        )
    context = {"show": show, "lineup": selectors.show_lineup(show=show)}
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
            next_url = request.GET.get("next", "")
            from django.utils.http import url_has_allowed_host_and_scheme

            if not url_has_allowed_host_and_scheme(
                next_url, allowed_hosts={request.get_host()}
            ):
                next_url = "home"
            return redirect(next_url)
    return render(request, "registration/signup.html", {"form": form}, status=200)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) or _("You do not have access to this page.")
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    message = str(exception) if isinstance(exception, Http404) else ""
    if not message or message.startswith("No ") or "{" in message:
        message = _("We could not find that page.")
    return render(request, "404.html", {"message": message}, status=404)
