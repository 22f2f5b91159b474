"""Shows: scheduling, line-up and the status transitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from realtime import events
from shows.exceptions import InvalidInput, InvalidTransition, SlugTaken
from shows.models import Brand, LineupItem, Product, Show, User
from shows.services import polls
from shows.services.workspace import Capability, require


def show_create(
    *,
    brand: Brand,
    slug: str,
    title: str,
    scheduled_at: datetime,
    description: str = "",
    products: Sequence[Product] = (),
    access_code: str = "",
) -> Show:
    """Schedule a show with a line-up of the brand's products.

    Raises ``SlugTaken`` or ``InvalidInput`` (a product of another brand).
    """
    if timezone.is_naive(scheduled_at):
        raise InvalidInput("The scheduled start needs a time zone.")
    try:
        with transaction.atomic():
            show = Show.objects.create(
                brand=brand,
                slug=slug,
                title=title,
                description=description,
                scheduled_at=scheduled_at,
                access_code=access_code,
            )
            lineup_set(show=show, products=products)
    except IntegrityError as exc:
        raise SlugTaken(f"A show with the address “{slug}” already exists.") from exc
    return show


@transaction.atomic
def lineup_set(*, show: Show, products: Sequence[Product]) -> None:
    """Replace the show's line-up with ``products``, in that order."""
    foreign = [p for p in products if p.brand_id != show.brand_id]
    if foreign:
        raise InvalidInput(f"“{foreign[0]}” belongs to another brand.")
    LineupItem.objects.filter(show=show).delete()
    LineupItem.objects.bulk_create(
        LineupItem(show=show, product=product, position=index)
        for index, product in enumerate(products)
    )


def _show_transition(
    show: Show,
    *,
    source: str,
    target: str,
    rehearsing: bool = False,
    reason: str = "",
) -> Show:
    now = timezone.now()
    # A rehearsal ends either way: going live makes the same stream public.
    fields: dict[str, object] = {
        "status": target,
        "rehearsing_since": None,
        "publisher_gone_since": None,
    }
    if target == Show.Status.LIVE:
        fields["started_at"] = now
    else:
        fields["ended_at"] = now
    with transaction.atomic():
        # Conditional update: two concurrent "go live" clicks make one transition.
        rows = Show.objects.filter(pk=show.pk, status=source)
        if rehearsing:
            rows = rows.filter(rehearsing_since__isnull=False)
        changed = rows.update(**fields)
        if not changed:
            show.refresh_from_db(fields=["status", "rehearsing_since"])
            if rehearsing and show.status == source:
                raise InvalidTransition(
                    "Only a show in rehearsal goes live from the studio."
                )
            raise InvalidTransition(
                f"A show that is {show.get_status_display().lower()} cannot become "
                f"{Show.Status(target).label.lower()}."
            )
        show.refresh_from_db()
        if target == Show.Status.LIVE:
            from shows import notices  # the task module imports the services

            # "Live now" to those reminded and the brand's followers, once.
            notices.notices_request(show_id=show.pk, kind=notices.K.LIVE_NOW)
            _announce_live(show)
        status_event = {
            "type": events.SHOW_STATUS,
            "status": show.status,
            "started_at": show.started_at.isoformat() if show.started_at else None,
            "ended_at": show.ended_at.isoformat() if show.ended_at else None,
        }
        if reason:
            status_event["reason"] = reason
        events.broadcast(show.pk, status_event)
    return show


def _announce_live(show: Show) -> None:
    """ "<Brand> is live now" to the signed-in viewers of every other open room
    (their pages show it to those who follow the brand): one message for the
    whole site, no row per viewer. A private show is not announced."""
    if show.is_private:
        return
    events.broadcast_site(
        {
            "type": events.BRAND_LIVE,
            "brand_id": show.brand_id,
            "brand": show.brand.name,
            "show_id": show.pk,
            "title": show.title,
            "url": reverse("show_detail", kwargs={"slug": show.slug}),
        },
        except_show=show.pk,
    )


def show_start(*, show: Show) -> Show:
    """Move a scheduled (or rehearsing) show to live. Raises
    ``InvalidTransition`` otherwise. Broadcasts ``show.status``, tells the
    viewers of every other room (``brand.live``, a public show only) and asks
    the worker for the "live now" emails (shows/notices.py)."""
    return _show_transition(show, source=Show.Status.SCHEDULED, target=Show.Status.LIVE)


def show_rehearsal_start(*, show: Show, user: User | None) -> Show:
    """Put a scheduled show in rehearsal: a stream published from now on
    reaches the brand's staff only, and the show stays scheduled for everybody
    else (no ``show.status`` to the room, no notices, no recording). Owners
    and hosts only (``NotAMember``, ``NotAllowed``); a show that is not
    scheduled raises ``InvalidTransition``; rehearsing again is a no-op."""
    require(user, show.brand, Capability.SHOWS_MANAGE)
    Show.objects.filter(
        pk=show.pk, status=Show.Status.SCHEDULED, rehearsing_since__isnull=True
    ).update(rehearsing_since=timezone.now())
    show.refresh_from_db(fields=["status", "rehearsing_since"])
    if show.status != Show.Status.SCHEDULED:
        raise InvalidTransition(
            f"A show that is {show.get_status_display().lower()} cannot rehearse."
        )
    return show


def show_rehearsal_stop(*, show: Show) -> Show:
    """End a rehearsal without going live (the stream stopped): the show is
    simply scheduled again and may rehearse or go live later."""
    Show.objects.filter(pk=show.pk, status=Show.Status.SCHEDULED).update(
        rehearsing_since=None
    )
    show.refresh_from_db(fields=["status", "rehearsing_since"])
    return show


def show_go_live(*, show: Show, user: User | None) -> Show:
    """The host's "Go live" after a rehearsal: the show becomes public now
    (``started_at``, ``show.status``, "live now" notices and announcement,
    once). Owners and hosts only; raises ``InvalidTransition`` unless the
    show is rehearsing."""
    require(user, show.brand, Capability.SHOWS_MANAGE)
    # One conditional update: a rehearsal stopped a moment ago does not go live.
    return _show_transition(
        show, source=Show.Status.SCHEDULED, target=Show.Status.LIVE, rehearsing=True
    )


def show_end(*, show: Show, reason: str = "") -> Show:
    """End a live show, and its open poll. Ending a show that never started (or
    already ended) raises ``InvalidTransition``. Broadcasts ``show.status``
    (with ``reason`` when given: ``abandoned`` when the sweeper ended it) and
    ``poll.closed`` when a poll was open."""
    with transaction.atomic():
        show = _show_transition(
            show, source=Show.Status.LIVE, target=Show.Status.ENDED, reason=reason
        )
        # An open poll closes with the show, its final counts to the room.
        polls.poll_close_for_show(show=show)
    return show
