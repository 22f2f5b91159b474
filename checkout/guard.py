"""An ASGI guard in front of Django that answers sold-out orders early.

In a flash sale nearly every buyer is told "sold out". Through Django that
answer costs sessions, auth, CSRF, the URL resolver and queries (~17 ms of CPU
under Daphne); here it costs a body parse and, at most every
``soldout.REFRESH_SECONDS``, one Redis round trip. ``POST
/api/shows/<slug>/orders`` is answered ``409 sold_out`` — the same body and
headers as the view's — when the variant's sold-out marker (``checkout/soldout``)
names the show and the request's Idempotency-Key is not one of an existing
order, or when every unit left is already claimed by orders under way (see
below). Everything else, and any request the guard is unsure about, goes to
Django untouched.

Before letting an order into Django the guard claims its units in Redis
(``soldout.MarkerCache.claim``); once the count of units left to claim
reaches zero, the next buyers are told "sold out" at once instead of waiting
for the reservations under way to commit, and units claimed by an order that
took no stock are given back as it leaves. Every answer that went through
Django carries in ``Server-Timing`` ``app`` the whole time since the guard
received it, the wait for a slot included.

Answering before the CSRF and origin checks is safe: a sold-out answer writes
nothing, and says no more than the room's public ``stock.changed`` events.
Requests that could create or return an order pass every check as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils import translation

from checkout import soldout
from checkout.exceptions import SoldOut

Scope = dict[str, Any]
Message = Any
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The URL of ``checkout.views.orders`` (Django's slug converter).
ORDERS_PATH = re.compile(r"^/api/shows/(?P<slug>[-a-zA-Z0-9_]+)/orders$")
APP_TIMING = re.compile(rb"\bapp;dur=[0-9.]+")
# As ``checkout.views._body``: larger bodies get Django's 400.
MAX_BODY = 4096
# Orders for one variant inside Django at once, per process.
DJANGO_SLOTS = 2
# Orders holding claimed units inside Django at once, per variant and process:
# there are never more than units left, so more of them may overlap.
CLAIMED_SLOTS = 8


class SoldOutGuard:
    """Wraps Django's ASGI application (``config/asgi.py``).

    It also admits at most ``DJANGO_SLOTS`` orders per variant into Django at
    a time (in each process), or ``CLAIMED_SLOTS`` when they hold claimed
    units (never more than the units left). When a thousand buyers arrive in
    the same instant and the units left to claim are not known (no sale
    seeded them, or stock just came back), nobody knows yet that the stock
    will be gone; without this they would all take the full path. The
    others wait here, at no cost, and look at the marker again as soon as
    this process marks the variant sold out (the last unit's reservation
    commits), whenever an order for the variant leaves Django, and every
    ``soldout.WAIT_POLL_SECONDS`` for a marker set by another process — so
    once the stock is gone they are answered early.
    A slot frees as soon as the order's reservation commits (the order
    service calls ``soldout.reservation_committed``), so the PaymentIntent
    created after it holds no one up. Two per process measured best for
    them: eight threads of one process reserving at once only share the GIL
    and make the last unit's commit — what everyone waits for — later. Orders
    holding claims are different: the other buyers are answered meanwhile,
    and those answers take the event loop's share of the GIL; eight claimed
    orders at once finish sooner than two at a time (docs/checkout.md).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: dict[str, bytes] = {}
        self.admission = Admission(DJANGO_SLOTS, CLAIMED_SLOTS)
        soldout.on_marked(self._marked)

    def _marked(self, variant_id: int) -> None:
        """This process just marked the variant sold out (in a worker thread,
        as the reservation that took the last unit commits, before its
        PaymentIntent is created): everyone waiting for it looks again now."""
        loop = self.admission.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.admission.look_again, variant_id)
        except RuntimeError:
            # The loop closed meanwhile.
            return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        match = ORDERS_PATH.match(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or match is None
            or not settings.REDIS_URL
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        received: list[Message] = []
        body = await _read_body(headers, receive, received)
        candidate = None if body is None else _candidate(scope, headers, body)
        if candidate is None:
            await self.app(scope, _replay(received, receive), send)
            return
        variant_id, key, quantity = candidate
        slug = match["slug"]
        claimed = took = blind = False
        try:
            while True:
                marker = await soldout.markers.get(variant_id)
                # Without Redis's answer the guard cannot answer early, but
                # it still lets orders in a few at a time: its line is this
                # process's own (``Admission``), so a Redis outage in a race
                # does not let every buyer into Django at once.
                blind = marker is None
                if marker is not None:
                    if marker.refuses(slug=slug, order_key=key):
                        await self._answer(scope, headers, send, started)
                        return
                    if not claimed and marker.claimable(slug):
                        claim = await soldout.markers.claim(
                            variant_id, slug=slug, order_key=key, quantity=quantity
                        )
                        if claim is False:
                            # Every unit left is promised to an order under way.
                            await self._answer(scope, headers, send, started)
                            return
                        claimed = bool(claim)
                        blind = soldout.markers.down()
                if self.admission.free(variant_id, claimed=claimed):
                    break
                await self.admission.wait(variant_id)

            def reserved() -> None:
                nonlocal took
                took = True

            await self._through_django(
                variant_id,
                scope,
                _replay(received, receive),
                send,
                reserved,
                started,
                blind=blind,
            )
        finally:
            if claimed and not took:
                if _cancelling():
                    soldout.markers.give_back_later(variant_id, quantity)
                else:
                    await soldout.markers.give_back(variant_id, quantity)

    async def _through_django(
        self,
        variant_id: int,
        scope: Scope,
        receive: Receive,
        send: Send,
        reserved: Callable[[], None],
        started: float,
        *,
        blind: bool = False,
    ) -> None:
        """Let the order into Django; ``reserved`` is called when its
        reservation commits (it took stock). The answer's ``Server-Timing``
        ``app`` counts from ``started``, the wait for a slot included, and
        says ``fallback`` when Redis did not answer the guard (``blind``)."""
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                took = (time.perf_counter() - started) * 1000
                message = {
                    **message,
                    "headers": _timed(message.get("headers", []), took, blind),
                }
            await send(message)

        self.admission.enter(variant_id)
        loop = asyncio.get_running_loop()
        released = False

        def release(look_again: bool) -> None:
            nonlocal released
            if not released:
                released = True
                self.admission.leave(variant_id, look_again=look_again)
            elif look_again:
                self.admission.look_again(variant_id)

        def committed() -> None:
            # In the view's thread (asgiref copies this context into it).
            reserved()
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(release, False)

        # The slot frees as the reservation commits, not after the
        # PaymentIntent is created: the next buyer need not wait for Stripe.
        token = soldout.reservation_committed.set(committed)
        try:
            await self.app(scope, receive, watched)
        finally:
            soldout.reservation_committed.reset(token)
            # A reservation (201) may have taken the last unit, a 409 may be
            # "sold out": either way the service has marked it in Redis by
            # now, so everyone in line looks again.
            release(status in (201, SoldOut.status))

    async def _answer(
        self, scope: Scope, headers: dict[str, str], send: Send, started: float
    ) -> None:
        language = _language(headers)
        payload = self.bodies.get(language)
        if payload is None:
            with translation.override(language):
                message = str(SoldOut.default_message)
            payload = self.bodies[language] = json.dumps(
                {"code": SoldOut.code, "message": message}
            ).encode()
        took = (time.perf_counter() - started) * 1000
        await send(
            {
                "type": "http.response.start",
                "status": SoldOut.status,
                "headers": _answer_headers(
                    scope, headers, language, len(payload), took
                ),
            }
        )
        await send({"type": "http.response.body", "body": payload})


class Admission:
    """At most ``slots`` orders per variant inside Django; the others wait in
    line. One is woken when a slot frees; all are woken when the marker may
    have changed (this process marked the variant sold out, a ``201`` or
    ``409`` left Django, or the marker names a show), and a poller looks at
    the marker in Redis every ``WAIT_POLL_SECONDS`` while anyone waits, since
    another process may have set it. The line is in this process's memory:
    it holds when Redis does not answer."""

    def __init__(self, slots: int, claimed_slots: int | None = None) -> None:
        self.slots = slots
        self.claimed_slots = slots if claimed_slots is None else claimed_slots
        self.inside: dict[int, int] = {}
        self.line: dict[int, deque[asyncio.Future[None]]] = {}
        self.pollers: dict[int, asyncio.Task[None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def free(self, variant_id: int, *, claimed: bool = False) -> bool:
        limit = self.claimed_slots if claimed else self.slots
        return self.inside.get(variant_id, 0) < limit

    def enter(self, variant_id: int) -> None:
        self.inside[variant_id] = self.inside.get(variant_id, 0) + 1

    def leave(self, variant_id: int, *, look_again: bool) -> None:
        self.inside[variant_id] -= 1
        if not self.inside[variant_id]:
            del self.inside[variant_id]
        if look_again:
            self.look_again(variant_id)
        else:
            self._wake(variant_id, 1)

    def look_again(self, variant_id: int) -> None:
        """The marker may have changed: refetch it, and wake everyone waiting
        (only as many as may enter while Redis is down: there is no marker to
        answer the others with)."""
        soldout.markers.forget(variant_id)
        if soldout.markers.down():
            self._wake(variant_id, self._free(variant_id))
        else:
            self._wake(variant_id, None)

    def _free(self, variant_id: int) -> int:
        return max(0, self.slots - self.inside.get(variant_id, 0))

    async def wait(self, variant_id: int) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # A new event loop (tests): the old one's futures cannot be awaited.
            self.loop = loop
            self.line.clear()
            self.pollers.clear()
        waiting = loop.create_future()
        self.line.setdefault(variant_id, deque()).append(waiting)
        if variant_id not in self.pollers:
            self.pollers[variant_id] = loop.create_task(self._poll(variant_id))
        try:
            await waiting
        except asyncio.CancelledError:
            line = self.line.get(variant_id)
            if line is not None and waiting in line:
                line.remove(waiting)
            raise

    def _wake(self, variant_id: int, count: int | None) -> None:
        line = self.line.get(variant_id)
        while line and (count is None or count > 0):
            waiting = line.popleft()
            if not waiting.done():
                waiting.set_result(None)
                if count is not None:
                    count -= 1

    async def _poll(self, variant_id: int) -> None:
        try:
            while self.line.get(variant_id):
                await asyncio.sleep(soldout.WAIT_POLL_SECONDS)
                soldout.markers.forget(variant_id)
                marker = await soldout.markers.get(variant_id)
                if marker is not None and marker.shows:
                    self._wake(variant_id, None)
                else:
                    self._wake(variant_id, self._free(variant_id))
        finally:
            self.pollers.pop(variant_id, None)
            if not self.line.get(variant_id):
                self.line.pop(variant_id, None)


def _headers(scope: Scope) -> dict[str, str]:
    # Latin-1, as Django's ASGI handler decodes them. A repeated Cookie header
    # is joined; any other repeated header keeps its last value.
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name == "cookie" and name in found:
            value = f"{found[name]}; {value}"
        found[name] = value
    return found


async def _read_body(
    headers: dict[str, str], receive: Receive, received: list[Message]
) -> bytes | None:
    """The whole body, or None (too large, or the client left) — every message
    read is kept in ``received`` for Django."""
    try:
        if int(headers.get("content-length") or 0) > MAX_BODY:
            return None
    except ValueError:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(received: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        if received:
            return received.pop(0)
        return await receive()

    return replayed


def _candidate(
    scope: Scope, headers: dict[str, str], body: bytes
) -> tuple[int, str, int] | None:
    """The variant id, Idempotency-Key and quantity of an order the full path would
    answer ``sold_out`` if the variant has no stock: well-formed as the view
    and ``order_create`` check it, so that no other 4xx would come first.
    None for anything else."""
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    if not _host_allowed(headers) or _redirects_to_https(scope, headers):
        return None
    key = headers.get("idempotency-key", "").strip()
    if not 8 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
        return None
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    variant_id, quantity = data.get("variant_id"), data.get("quantity", 1)
    email, city = data.get("email") or "", data.get("city") or ""
    if not _whole(variant_id) or not _whole(quantity) or quantity < 1:
        return None
    if not isinstance(email, str) or not isinstance(city, str):
        return None
    cookies = parse_cookie(headers.get("cookie", ""))
    if not cookies.get(settings.SESSION_COOKIE_NAME):
        # Certainly a guest, and a guest needs a valid email first.
        try:
            validate_email(email[:254].strip())
        except ValidationError:
            return None
    return variant_id, key, quantity


Headers = list[tuple[bytes, bytes]]


def _timed(headers: Headers, took: float, blind: bool = False) -> Headers:
    """The view's headers with ``app`` in Server-Timing replaced by ``took``
    (ms), the time since the guard received the request, and ``fallback``
    added when the guard went without Redis."""
    out = []
    for name, value in headers:
        if name.lower() == b"server-timing":
            value = APP_TIMING.sub(f"app;dur={took:.1f}".encode(), value, count=1)
            if blind:
                value += b", fallback"
        out.append((name, value))
    return out


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _host_allowed(headers: dict[str, str]) -> bool:
    """Django's ``get_host`` check: a disallowed host gets Django's 400."""
    host = headers.get("host", "")
    if settings.USE_X_FORWARDED_HOST and "x-forwarded-host" in headers:
        host = headers["x-forwarded-host"]
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower()
        if name in headers:
            return headers[name].split(",")[0].strip() == proxy[1]
    return bool(scope.get("scheme") == "https")


def _redirects_to_https(scope: Scope, headers: dict[str, str]) -> bool:
    return bool(settings.SECURE_SSL_REDIRECT) and not _is_secure(scope, headers)


def _language(headers: dict[str, str]) -> str:
    """The language ``LocaleMiddleware`` would pick (no i18n URL patterns)."""
    request = HttpRequest()
    request.COOKIES = parse_cookie(headers.get("cookie", ""))
    accept = headers.get("accept-language")
    if accept is not None:
        request.META["HTTP_ACCEPT_LANGUAGE"] = accept
    return translation.get_language_from_request(request)


def _answer_headers(
    scope: Scope, headers: dict[str, str], language: str, length: int, took: float
) -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware puts on the view's 409 (test_guard
    compares the two)."""
    out = [
        ("Content-Type", "application/json"),
        # "marker" tells the bench (and anyone curious) who answered.
        ("Server-Timing", f"app;dur={took:.1f}, psp;dur=0.0, marker"),
        ("Vary", "Accept-Language, Cookie"),
        ("Content-Language", language),
        ("Content-Length", str(length)),
    ]
    if settings.X_FRAME_OPTIONS:
        out.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        if not isinstance(policy, str):
            policy = ",".join(policy)
        out.append(("Referrer-Policy", policy))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append(
            ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
        )
    if settings.SECURE_HSTS_SECONDS and _is_secure(scope, headers):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        out.append(("Strict-Transport-Security", hsts))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in out]
