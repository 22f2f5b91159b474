"""The replay of an ended show (docs/replay.md): the show page itself once the
show ended with a recording (``frontend.views.show_detail`` hands over here
after its access check), so each show keeps one address.

The page plays the recording (``player.js``'s replay mode), lists the
chapters made from the pin log, shows the product cards pinned at the
playback position, replays the chat and the answered questions in step with
the video (``replay.js``), and sells from the same buy sheet
(``checkout.js``) at list price. Each view is counted for the show's report.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from checkout import selectors as checkout_selectors
from realtime import counting
from shows import attribution, replay, selectors
from shows.models import Show, User


def _who(request: HttpRequest, user: User | None) -> str:
    """Who watches, for the unique count (hashed by ``counting``): the account,
    else the session; a visitor asking not to be tracked, or without a
    session, is a one-off key."""
    untracked = "1" in (request.headers.get("DNT"), request.headers.get("Sec-GPC"))
    if user is not None and not untracked:
        return f"user:{user.pk}"
    key = request.session.session_key
    if key and not untracked:
        return f"session:{key}"
    return f"once:{secrets.token_hex(8)}"


def replay_data(show: Show) -> dict[str, Any]:
    """What replay.js needs: the trim, the chapters, when each card was up,
    and the chat, answers and polls with their times (seconds of the replay)."""
    return {
        "start": show.replay_start_seconds,
        "end": show.replay_end_seconds,
        "chapters": [
            {"product_id": c.product_id, "name": c.name, "at": c.at}
            for c in replay.chapters(show)
        ],
        "spans": replay.pin_spans(show),
        "polls": replay.polls(show),
        **replay.timeline(show),
    }


def clock(seconds: int) -> str:
    """``seconds`` as m:ss (h:mm:ss past an hour), as the chapters show it."""
    minutes, rest = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{rest:02d}"
    return f"{minutes}:{rest:02d}"


def replay_page(
    request: HttpRequest, show: Show, viewer: User | None, context: dict[str, Any]
) -> HttpResponse:
    """Render the replay of ``show`` (the caller checked access) with the show
    page's ``context`` (line-up, share links, link previews)."""
    counting.add(show.pk, "replay.views")
    counting.unique(show.pk, "replay_viewers", _who(request, viewer))
    data = replay_data(show)
    # The cards carry the products' ratings, as the room's do.
    data["ratings"] = checkout_selectors.room_ratings(show=show)["ratings"]
    chapters = [{**c, "clock": clock(c["at"])} for c in data["chapters"]]
    response = render(
        request,
        "frontend/replay/show.html",
        {
            **context,
            "replay_data": data,
            "chapters": chapters,
            "is_staff": selectors.user_is_show_staff(user=viewer, show=show),
        },
    )
    attribution.note_visit(request, response, show)
    return response
