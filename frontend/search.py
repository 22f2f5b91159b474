"""Search over shows, brands and products (``/search/?q=``): shows/discovery.py
finds them; this page groups them and pages through one group at a time.

Search is the easiest way to make the database work, so each client (a
signed-in account, else the address) has a token bucket: ``SEARCH_BURST``
searches at once, then ``SEARCH_PER_MINUTE`` (in Redis, shared by every
process; per process while Redis is down). An empty query is free.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import salted_hmac
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from realtime import limiter
from shows import discovery

SEARCH_BURST = 20
SEARCH_PER_MINUTE = 30
# Matches of each group on the first page, and per page of one group.
PER_GROUP = 6
PER_PAGE = 24
LABELS = {
    "live": _("Live now"),
    "upcoming": _("Upcoming"),
    "replays": _("Replays"),
    "brands": _("Brands"),
    "products": _("Products"),
}


def _client_key(request: HttpRequest) -> str:
    user = request.user
    who = (
        f"user:{user.pk}"
        if user.is_authenticated
        else f"addr:{request.META.get('REMOTE_ADDR', '')}"
    )
    # Addresses are kept only as a digest.
    return "search:" + salted_hmac("frontend.search", who).hexdigest()[:24]


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = discovery.search_query(str(request.GET.get("q", "")))
    group = str(request.GET.get("in", ""))
    context: dict[str, Any] = {"search_query": query}
    if not query:
        return render(request, "frontend/search.html", context)
    wait = limiter.take_token(
        _client_key(request), capacity=SEARCH_BURST, rate=SEARCH_PER_MINUTE / 60
    )
    if wait > 0:
        context["retry_after"] = max(1, round(wait))
        response = render(request, "frontend/search.html", context, status=429)
        response["Retry-After"] = str(context["retry_after"])
        return response
    language = get_language() or "en"
    if group in discovery.GROUPS:
        matches = discovery.search_group(name=group, query=query, language=language)
        page = Paginator(matches, PER_PAGE).get_page(request.GET.get("page"))
        if group == "products":
            discovery.attach_next_shows(list(page.object_list))
        context.update(group=group, label=LABELS[group], page=page)
    else:
        groups = discovery.search_overview(
            query=query, language=language, per_group=PER_GROUP
        )
        context["groups"] = [
            {"name": g.name, "label": LABELS[g.name], "rows": g.rows, "more": g.more}
            for g in groups
        ]
        context["found"] = any(g.rows for g in groups)
    return render(request, "frontend/search.html", context)
