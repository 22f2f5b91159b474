"""The Content-Security-Policy of every page, and where browsers report
violations.

The policy itself is ``CONTENT_SECURITY_POLICY`` in the settings (django-csp):
scripts, styles, fonts and frames only from this origin, no inline script or
style, no ``eval``, no framing by other sites (but for the embedded show, which
the brand's own sites may frame: ``frontend/embed.py``). Every script the pages
run is a module file under ``static/``; the pages' data and strings travel in
``<script type="application/json">`` blocks, which are never executed. The one
outside origin is Stripe's (Stripe.js and its frames and API), taken from the
settings at each response: localstripe in the demo and tests, Stripe itself in
production. hls.js runs its demuxer in a worker made from a ``blob:`` URL and
feeds the video element from a ``blob:`` media source.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger("showfloor.csp")

MAX_REPORT_BYTES = 16 * 1024
STRIPE_ORIGINS = {
    "script-src": ["https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def stripe_sources() -> dict[str, list[str]]:
    """Where Stripe.js, its frames and its API are for the current settings."""
    api_base = _origin(str(settings.STRIPE_API_BASE or ""))
    if api_base:  # localstripe: its fake Stripe.js and API on one origin
        return {key: [api_base] for key in STRIPE_ORIGINS}
    script = _origin(str(settings.STRIPE_JS_URL or ""))
    sources = {key: list(values) for key, values in STRIPE_ORIGINS.items()}
    if script and script not in sources["script-src"]:
        sources["script-src"].append(script)
    return sources


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, with Stripe's origins added from the settings
    of the moment (tests and the demo point Stripe at a local server)."""

    def get_policy_parts(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        report_only: bool = False,
    ) -> PolicyParts:
        parts: PolicyParts = super().get_policy_parts(request, response, report_only)
        if not report_only:
            sources = stripe_sources()
            # Frames are Stripe's only ('none' beside a source would be void).
            frames = sources.pop("frame-src")
            parts.update = {**sources, **(parts.update or {})}
            parts.replace = {"frame-src": frames, **(parts.replace or {})}
        return parts


@csrf_exempt  # browsers send reports without a token
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log a violation report (``application/csp-report`` or the Reporting
    API's list); 204, 413 past ``MAX_REPORT_BYTES``, 400 if it is not JSON."""
    body = request.body[: MAX_REPORT_BYTES + 1]
    if len(body) > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    try:
        report: Any = json.loads(body)
    except ValueError:
        return HttpResponse(status=400)
    logger.warning(
        "content security policy violation: %s",
        json.dumps(report, separators=(",", ":"))[:4000],
    )
    return HttpResponse(status=204)
