"""Share links: the link a viewer shares a show with, so what follows a visit
through it can be attributed (``shows/attribution.py``, docs/audience.md).

A signed-in viewer has one link per show; guests share the show's one link
without a sharer. The code is random: nothing in the link says who shared.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from shows.models import ShareLink, Show, User


def share_link_get(*, show: Show, user: User | None) -> ShareLink:
    """The share link of ``user`` (or of the show's guests, for ``None``),
    made the first time it is asked for. Two requests at once make one."""
    sharer = user if user is not None and user.is_authenticated else None
    found = ShareLink.objects.filter(show=show, sharer=sharer).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return ShareLink.objects.create(show=show, sharer=sharer)
    except IntegrityError:
        # The same page opened twice at once: the other request made it.
        return ShareLink.objects.get(show=show, sharer=sharer)


def share_link_find(*, show_id: int, code: str) -> ShareLink | None:
    """The show's share link with this code, or None (a forged or mistyped
    code, or one of another show)."""
    if not code or len(code) > 16:
        return None
    return ShareLink.objects.filter(show_id=show_id, code=code).first()
