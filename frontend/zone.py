"""The viewer's time zone: times on every page in the zone of the viewer's
device, not the server's.

``zone.js`` (on every page) stores the browser's zone
(``Intl.DateTimeFormat().resolvedOptions().timeZone``) in the
``showfloor_tz`` cookie, and rewrites the page's times the first time; from
then on this middleware activates that zone for each request, so the times
the server writes (``{% datetime %}``) are already the viewer's. A cookie
naming no IANA zone is ignored (the site's zone, UTC, applies)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

COOKIE = "showfloor_tz"


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def viewer_zone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    name = unquote(request.COOKIES.get(COOKIE, ""))
    if not name or len(name) > 64 or name not in _zones():
        return None
    return zoneinfo.ZoneInfo(name)


class ViewerTimeZone:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = viewer_zone(request)
        if zone is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone)
        try:
            response = self.get_response(request)
        finally:
            timezone.deactivate()
        # The page depends on the cookie: shared caches must not mix zones.
        patch_vary_headers(response, ["Cookie"])
        return response
