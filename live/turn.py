"""Short-lived TURN credentials for the pages' peer connections (docs/video.md,
"TURN").

The TURN server (coturn with ``use-auth-secret``, ``deploy/turnserver.conf``)
shares ``SHOWFLOOR_TURN_SECRET`` with the web tier and keeps no user list: the
"TURN REST API" scheme (draft-uberti-behave-turn-rest-00). A page gets

- ``username`` = ``<expiry, Unix seconds>:<opaque id>``,
- ``credential`` = base64(HMAC-SHA1(secret, username)),

which coturn checks by recomputing the HMAC and refuses once the expiry has
passed (``SHOWFLOOR_TURN_TTL_SECONDS``, an hour: long enough for a show, short
enough that a copied credential soon stops working). The opaque id is random
per page: it names no user to the TURN server or in its logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from django.conf import settings


def turn_credential(*, secret: str, username: str) -> str:
    """base64(HMAC-SHA1(``secret``, ``username``)), as coturn computes it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_server(*, now: float | None = None) -> dict[str, Any] | None:
    """An ``RTCIceServer`` for the configured TURN URLs with credentials valid
    for ``SHOWFLOOR_TURN_TTL_SECONDS`` from ``now``; None unless both
    ``SHOWFLOOR_TURN_URLS`` and ``SHOWFLOOR_TURN_SECRET`` are set."""
    urls = list(settings.SHOWFLOOR_TURN_URLS)
    secret = str(settings.SHOWFLOOR_TURN_SECRET)
    if not urls or not secret:
        return None
    expiry = int(now if now is not None else time.time())
    expiry += int(settings.SHOWFLOOR_TURN_TTL_SECONDS)
    username = f"{expiry}:{secrets.token_urlsafe(12)}"
    return {
        "urls": urls,
        "username": username,
        "credential": turn_credential(secret=secret, username=username),
    }


def page_ice_servers() -> list[dict[str, Any]]:
    """The ICE servers a page's peer connection uses: ``SHOWFLOOR_ICE_SERVERS``
    plus, when configured, a TURN server with fresh credentials."""
    servers: list[dict[str, Any]] = json.loads(settings.SHOWFLOOR_ICE_SERVERS or "[]")
    turn = turn_server()
    if turn is not None:
        servers.append(turn)
    return servers
