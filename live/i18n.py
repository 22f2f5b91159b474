"""The language a websocket speaks, chosen as Django's ``LocaleMiddleware``
chooses it for a page: the language the viewer picked (the ``set_language``
cookie), else the browser's ``Accept-Language``, else ``LANGUAGE_CODE``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils import translation


def scope_language(scope: dict[str, Any]) -> str:
    headers = {
        bytes(name).lower(): bytes(value).decode("latin-1")
        for name, value in scope.get("headers") or []
    }
    request = HttpRequest()
    request.COOKIES = scope.get("cookies") or parse_cookie(headers.get(b"cookie", ""))
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", "")
    return translation.get_language_from_request(request)
