"""The show's video stream: its key, going live by publishing, the recording.

The media node (``live/media``) calls these from its HTTP views; they are the
only writes the video work makes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from realtime import events
from shows.exceptions import InvalidTransition, ShowEnded
from shows.models import Show, User, new_stream_key
from shows.services.lifecycle import (
    show_end,
    show_go_live,
    show_rehearsal_stop,
    show_start,
)

STREAM_STATUS = "stream.status"


def stream_key_matches(*, show: Show, key: str) -> bool:
    """Whether ``key`` is the show's current stream key (constant time)."""
    return bool(key) and constant_time_compare(key, show.stream_key)


def stream_key_rotate(*, show: Show) -> str:
    """Give the show a new stream key; the old one stops working at once (an
    encoder already publishing keeps its session until it disconnects)."""
    show.stream_key = new_stream_key()
    show.save(update_fields=["stream_key"])
    return show.stream_key


def _recording_name(path: Path) -> str:
    root = Path(settings.SHOWFLOOR_RECORDINGS_DIR).resolve()
    return str(path.resolve().relative_to(root))


def stream_go_live(
    *, show: Show, media_node: str, recording: Path | None = None
) -> Show:
    """A publisher connected on ``media_node``: record the node (and where the
    recording is being written, so it is found even if the node dies) and move
    a scheduled show to live (a live show stays live: the host reconnected).
    A rehearsing show stays in rehearsal: only the node is recorded, and the
    media node must not record (the caller checks ``show.status``).

    Raises ``ShowEnded`` for an ended show. Broadcasts ``show.status`` when the
    show goes live.
    """
    with transaction.atomic():
        Show.objects.filter(pk=show.pk).update(media_node=media_node)
        show.media_node = media_node
        show.refresh_from_db(fields=["status", "rehearsing_since"])
        if show.status == Show.Status.ENDED:
            raise ShowEnded()
        if show.is_rehearsing:
            return show
        if recording is not None:
            _recording_keep(show, recording)
        if show.status == Show.Status.SCHEDULED:
            try:
                show = show_start(show=show)
            except InvalidTransition:
                # Another request made it live in between.
                show.refresh_from_db()
                if show.status != Show.Status.LIVE:
                    raise ShowEnded() from None
    return show


def _recording_keep(show: Show, recording: Path) -> None:
    show.recording_file = _recording_name(recording)
    Show.objects.filter(pk=show.pk).update(recording_file=show.recording_file)


def stream_go_public(*, show: Show, user: User | None, recording: Path) -> Show:
    """The host's "Go live" after a rehearsal: the same stream becomes public
    (``show_go_live``) and ``recording`` (which the media node starts writing
    now) is kept as the show's recording. Owners and hosts only."""
    with transaction.atomic():
        show = show_go_live(show=show, user=user)
        _recording_keep(show, recording)
    return show


# Publisher states after which nobody streams to the show until one connects.
GONE_STATES = frozenset({"reconnecting", "lost", "stopped"})


def stream_publisher_state(*, show_id: int, state: str) -> None:
    """Tell the room how the publisher's connection is (``connecting``,
    ``connected``, ``reconnecting``, ``lost``, ``stopped`` by the encoder,
    ``ended``), and keep since when nobody streams to a live show
    (``publisher_gone_since``, for ``stream_abandoned_end_due``). Broadcasts
    ``stream.status``, except during a rehearsal, which viewers must not
    learn about (the studio polls the node for it)."""
    shows = Show.objects.filter(pk=show_id)
    with transaction.atomic():
        if state == "connected":
            shows.update(publisher_gone_since=None)
        elif state in GONE_STATES:
            shows.filter(publisher_gone_since__isnull=True).update(
                publisher_gone_since=timezone.now()
            )
        if shows.filter(
            status=Show.Status.SCHEDULED, rehearsing_since__isnull=False
        ).exists():
            return
        events.broadcast(show_id, {"type": STREAM_STATUS, "publisher": state})


def stream_abandoned_end_due(*, now: datetime | None = None) -> int:
    """End the live shows nobody has streamed to for
    ``SHOWFLOOR_ABANDONED_SHOW_SECONDS`` (the encoder stopped or vanished and
    the host never came back or ended the show). Each ends once
    (``show_end``'s conditional update), with ``reason`` ``abandoned`` in its
    ``show.status``, which the studio says in words. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SHOWFLOOR_ABANDONED_SHOW_SECONDS)
    ended = 0
    for show in Show.objects.filter(
        status=Show.Status.LIVE, publisher_gone_since__lte=cutoff
    ):
        try:
            show_end(show=show, reason="abandoned")
        except InvalidTransition:
            continue  # ended meanwhile by the host or another sweeper
        ended += 1
    return ended


def stream_end(*, show: Show, recording: Path | None) -> Show:
    """The host ended the stream: end the show if it is live (a rehearsal ends
    and the show stays scheduled), keep the recording
    (a path under ``SHOWFLOOR_RECORDINGS_DIR``), free the media node.
    Broadcasts ``show.status`` when the show ends."""
    with transaction.atomic():
        fields: dict[str, str] = {"media_node": ""}
        if recording is not None:
            fields["recording_file"] = _recording_name(recording)
        Show.objects.filter(pk=show.pk).update(**fields)
        show.refresh_from_db(fields=["status", "rehearsing_since"])
        if show.status == Show.Status.LIVE:
            show = show_end(show=show)
        elif show.is_rehearsing:
            # The end of a rehearsal: the show is still to come.
            show = show_rehearsal_stop(show=show)
        show.refresh_from_db()
    return show


def stream_recording_path(*, show: Show) -> Path | None:
    """The recording file of ``show`` if it exists on this machine."""
    if not show.recording_file:
        return None
    root = Path(settings.SHOWFLOOR_RECORDINGS_DIR).resolve()
    path = (root / show.recording_file).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path
