"""Middleware of the project as a whole."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from psycopg_pool import PoolTimeout

logger = logging.getLogger(__name__)


class SyncStack:
    """Last in ``MIDDLEWARE``: keeps every middleware above it synchronous
    under ASGI.

    Django runs a middleware that can be either (all of Django's own) in
    async mode whenever what is below it is async, and then calls each of its
    hooks in a thread of its own (``sync_to_async``): seventeen hops between
    the event loop and a thread per request with this stack (five with this
    one, ``tests/test_middleware.py``), ~80 µs
    of CPU each (the CPU outside the view fell from 3.9 to 2.9 ms per order
    without them) and a wait for the GIL under load. Being sync-only, this one
    makes Django adapt the inner handler once instead; the whole stack then
    runs in the request's thread, and an async view still runs on the event
    loop."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)


# SQLSTATE classes that mean the server cannot serve anyone right now: 08
# connection exception, 53 insufficient resources (too many connections), 57P
# shut down, crashed or still starting. A query's own failure (a deadlock, a
# missing table) stays a 500.
UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
UNAVAILABLE_CODE = "unavailable"
# Paths whose clients read JSON: the checkout API, the media routes, Stripe.
JSON_PATHS = ("/api/", "/live/", "/stripe/")


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps) says the database cannot be reached
    now: refused, shut down, restarting, out of connections, or no pooled
    connection free in time."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
            return True
        if isinstance(exc, psycopg.OperationalError):
            # No SQLSTATE: the client lost or never had the connection.
            sqlstate = exc.sqlstate
            return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATES)
        # Django's DatabaseError wrappers keep psycopg's error as the cause.
        seen.add(id(exc))
        exc = exc.__cause__
    return False


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PATHS) or (
        request.get_preferred_type(["text/html", "application/json"])
        == "application/json"
    )


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After``: ``{"code", "message", "retry_after"}`` for API
    clients, the friendly page for people. Renders without the request's
    context (no session, no user): the database is what is missing."""
    retry_after = int(settings.SHOWFLOOR_RETRY_AFTER_SECONDS)
    response: HttpResponse
    if wants_json(request):
        response = JsonResponse(
            {
                "code": UNAVAILABLE_CODE,
                "message": _(
                    "Showfloor is briefly unavailable. Please try again in a "
                    "few seconds."
                ),
                "retry_after": retry_after,
            },
            status=503,
        )
    else:
        page = loader.render_to_string(
            "503.html",
            {
                "retry_after": retry_after,
                "reload": request.method in ("GET", "HEAD"),
                "path": request.get_full_path(),
            },
        )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(retry_after)
    return response


class DatabaseUnavailable:
    """Answers a view that found the database unreachable (its own query, or
    the session and user it loaded lazily) with a 503 instead of a 500.

    Sync-only like ``SyncStack``, so it costs no thread hop. Errors raised by a
    middleware (a session saved after the view) never reach
    ``process_exception``; ``frontend.views.server_error`` answers those."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.warning(
            "database unavailable: %s %s: %s", request.method, request.path, exception
        )
        return unavailable_response(request)
