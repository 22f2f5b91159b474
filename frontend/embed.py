"""A show embedded on a brand's own site (docs/embed.md).

``/embed.js`` is the loader a brand puts on its pages; it frames
``/embed/<slug>/``, the player, the pinned products and the buy sheet of the
show page in a compact page of their own. Only the origins the brand lists
(``Brand.embed_origins``) may frame it: that page alone sends them as
``frame-ancestors`` and no ``X-Frame-Options``; every other page keeps
refusing to be framed.

The frame sits on another site than the page around it, so browsers keep our
cookies from it (blocked or partitioned, and ``SameSite=None`` would need
HTTPS). A guest in the frame is therefore not known by cookie but by an
*embed token*: the page picks a fresh guest session key and signs it, the
show and the framing origin into a token that expires after
``EMBED_TOKEN_MAX_AGE``. The frame's scripts send it in the
``X-Showfloor-Embed`` header on the checkout API (``EmbedTokenMiddleware``)
and as ``?embed=`` on the room socket (``EmbedSocketMiddleware``); the request
then runs as that guest, never as a signed-in user, whatever cookies came
with it. CSRF rests on the token: a header a page on another site can neither
read nor make the browser send.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from csp.constants import NONE
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import (
    VALID_KEY_CHARS,
    CreateError,
    SessionBase,
)
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import etag, require_GET

from checkout import selectors as checkout_selectors
from checkout.order_links import order_link_token
from frontend.views import _show_or_404
from shows import attribution, selectors
from shows.models import Show
from shows.origins import normalise_origin

# How long a frame's token serves its guest: longer than a show runs; a frame
# open past it asks to be reloaded.
EMBED_TOKEN_MAX_AGE = 6 * 60 * 60
TOKEN_HEADER = "X-Showfloor-Embed"  # noqa: S105  # nosec B105 - a header name
TOKEN_QUERY = "embed"  # noqa: S105  # nosec B105 - a parameter name
_SALT = "showfloor.embed"
_SHOW_API = re.compile(r"^/api/shows/(?P<slug>[-\w]+)/")
_SHOW_SOCKET = re.compile(r"^/ws/shows/(?P<slug>[-\w]+)/$")
LOADER = Path(__file__).parent / "static" / "frontend" / "embed.js"


def _session_store(key: str | None = None) -> SessionBase:
    engine = import_module(settings.SESSION_ENGINE)
    store: SessionBase = engine.SessionStore(session_key=key)
    return store


def _guest_session(key: str) -> SessionBase:
    """The frame guest's session, written on its first API request (merely
    watching an embedded show writes nothing)."""
    session = _session_store(key)
    if not session.exists(key):
        try:
            session.save(must_create=True)
        except CreateError:  # a parallel first request made it
            session = _session_store(key)
    return session


# --- The token ------------------------------------------------------------


@dataclass(frozen=True)
class EmbedClaims:
    """What a valid token says: whose guest session, which show, framed by
    which origin ("" when the frame was opened without an allowed one)."""

    session_key: str
    show: str
    origin: str

    @property
    def host(self) -> str:
        """The framing page's host ("shop.example" or "127.0.0.2:8001")."""
        return urlsplit(self.origin).netloc


def token_mint(*, session_key: str, show: Show, origin: str) -> str:
    """A signed, timestamped token for one guest session in one show's frame."""
    return signing.dumps(
        {"k": session_key, "s": show.slug, "o": origin}, salt=_SALT, compress=True
    )


def token_read(token: str) -> EmbedClaims | None:
    """The token's claims, or None when it is forged, altered or expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=EMBED_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(data, dict):
        return None
    key, show, origin = data.get("k"), data.get("s"), data.get("o")
    if not (isinstance(key, str) and isinstance(show, str) and isinstance(origin, str)):
        return None
    return EmbedClaims(session_key=key, show=show, origin=origin) if key else None


def _claims_for_path(
    token: str, path: str, pattern: re.Pattern[str]
) -> EmbedClaims | None:
    """The token's claims if they hold for ``path`` (a show's API or socket
    must be the token's show), else None."""
    claims = token_read(token)
    if claims is None:
        return None
    named = pattern.match(path)
    if named and named["slug"] != claims.show:
        return None
    return claims


@contextmanager
def as_embed_guest(
    request: HttpRequest, session: SessionBase, claims: EmbedClaims
) -> Iterator[None]:
    """Run the request as the frame's guest: its session, no user, the
    framing host noted for attribution. The cookie session and user are put
    back afterwards, so the response never sets a cookie for the guest's
    session (nor logs anyone out of the site)."""
    saved = request.session, request.user
    request.session = session
    request.user = AnonymousUser()
    request.embed_host = claims.host  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if session.modified and not session.is_empty():
            session.save()
        request.session, request.user = saved


class EmbedTokenMiddleware:
    """Requests to the checkout API carrying ``X-Showfloor-Embed`` run as the
    token's guest (after ``AuthenticationMiddleware``, whose user it
    replaces). A forged, expired or foreign token is answered 401
    ``embed_token``. CSRF is not asked of a request the token authorizes,
    since no other site can send that header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = request.headers.get(TOKEN_HEADER)
        if token is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        claims = _claims_for_path(token, request.path, _SHOW_API)
        if claims is None:
            return JsonResponse(
                {
                    "code": "embed_token",
                    "message": _(
                        "This player has been open too long: reload the page."
                    ),
                },
                status=401,
            )
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        with as_embed_guest(request, _guest_session(claims.session_key), claims):
            return self.get_response(request)


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class EmbedSocketMiddleware:
    """The room socket of a frame: ``?embed=<token>`` makes it the token's
    guest (inside channels' auth stack, whose session and user it replaces).
    A bad token closes it with 4003. The Origin check in front stays
    as it is: the frame is served by us, so its socket comes from our own
    origin."""

    def __init__(self, inner: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tokens = query.get(TOKEN_QUERY)
        if scope["type"] != "websocket" or not tokens:
            await self.inner(scope, receive, send)
            return
        claims = _claims_for_path(tokens[0], scope.get("path", ""), _SHOW_SOCKET)
        if claims is None:
            # Accepted, then closed with "forbidden": a browser would retry a
            # refused handshake; room.js does not retry 4003.
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 4003})
            return
        scope = {
            **scope,
            "session": _session_store(claims.session_key),
            "user": AnonymousUser(),
            "embed_host": claims.host,
        }
        await self.inner(scope, receive, send)


# --- The pages ------------------------------------------------------------


def _framing_origin(request: HttpRequest, show: Show) -> str:
    """The origin the loader says framed us, if the brand allows it, else ""
    (the frame then talks to no page). The browser's ``frame-ancestors``
    check, not this, keeps other sites from framing it."""
    try:
        origin = normalise_origin(request.GET.get("host", ""))
    except ValidationError:
        return ""
    return origin if origin in show.brand.embed_origins else ""


@require_GET
@xframe_options_exempt
def embed_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The framed show: player, pinned products and the buy sheet, for a
    fresh guest of this frame. Private shows are not embedded."""
    show = _show_or_404(slug)
    if not selectors.show_access_granted(show=show, session={}, user=None):
        # Said inside the brand's frame rather than as the browser's refusal.
        refused = render(request, "frontend/embed/unavailable.html", status=404)
        return _framed_by_the_brand(refused, show)
    # The guest's session key, kept only in the token until the guest
    # reserves or bags something (EmbedTokenMiddleware writes it then).
    key = get_random_string(32, VALID_KEY_CHARS)
    origin = _framing_origin(request, show)
    claims = EmbedClaims(session_key=key, show=show.slug, origin=origin)
    context = {
        "show": show,
        "lineup": selectors.show_lineup(show=show),
        "server_now": timezone.now(),
        "embed_token": token_mint(session_key=key, show=show, origin=origin),
        # For embed-frame.js: whom it talks to.
        "embed": {
            "parent": origin,
            "show": show.slug,
            "status": show.status,
        },
    }
    # Rendered for a guest with no session yet, not the cookie's visitor.
    with as_embed_guest(request, _session_store(), claims):
        response = render(request, "frontend/embed/show.html", context)
        attribution.note_visit(request, response, show)
    # The token inside is this visitor's alone.
    response["Cache-Control"] = "no-store, private"
    return _framed_by_the_brand(response, show)


def _framed_by_the_brand(response: HttpResponse, show: Show) -> HttpResponse:
    """Let only the brand's own sites frame ``response`` ('none' when it
    lists none); django-csp replaces the site's ``frame-ancestors 'none'``
    for this response alone."""
    response._csp_replace = {  # type: ignore[attr-defined]
        "frame-ancestors": list(show.brand.embed_origins) or [NONE]
    }
    return response


@require_GET
def embed_order_link(request: HttpRequest, public_id: Any) -> HttpResponse:
    """``/api/embed/orders/<id>/link``: the signed link to an order of the
    frame's guest (the one its email carries), for the sheet's "See your
    order", which opens where no cookie knows the guest. 404 for any order
    not of this token's guest, and without a token."""
    if getattr(request, "embed_host", None) is None:
        raise Http404
    order = checkout_selectors.order_for_buyer(
        public_id=str(public_id),
        user=None,
        session_key=request.session.session_key or "",
    )
    if order is None:
        raise Http404
    url = reverse("order_link", args=[order_link_token(order)])
    response = JsonResponse({"url": url})
    response["Cache-Control"] = "no-store, private"
    return response


@cache
def _loader() -> tuple[bytes, str]:
    body = LOADER.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


@require_GET
@etag(lambda request: _loader()[1])
@cache_control(public=True, max_age=600)
def embed_loader(request: HttpRequest) -> HttpResponse:
    """``/embed.js``: the loader brands put on their pages. A fixed address
    (the hashed static name would change with each release), cached briefly
    and revalidated by its ETag."""
    response = HttpResponse(_loader()[0], content_type="text/javascript")
    # Read by pages on other sites, as a classic script.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
