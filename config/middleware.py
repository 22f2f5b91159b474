"""Middleware of the project as a whole."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


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
