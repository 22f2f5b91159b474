"""Uploaded files (product images and their thumbnails) served by this process,
for the embedded demo and a single-machine install, where ``MEDIA_ROOT`` is a
local directory and nothing else serves ``MEDIA_URL``.

WhiteNoise serves only the static files, and Django's ``static()`` helper
serves nothing with DEBUG off, so the demo needs this route. Production behind
a CDN or with S3 storage turns it off (``SHOWFLOOR_SERVE_UPLOADS=0``).
``django.views.static.serve`` refuses paths outside the directory and lists
none; every stored name is random and every stored file an image checked by
Pillow (shows/images.py), so the answers may be cached.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.http import require_safe
from django.views.static import serve

CACHE_SECONDS = 24 * 60 * 60


@require_safe
def upload(request: HttpRequest, path: str) -> HttpResponseBase:
    """The stored file at ``path`` under ``MEDIA_ROOT`` (read per request, so
    tests may point it elsewhere); 404 when there is none."""
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response["X-Content-Type-Options"] = "nosniff"
    return response
