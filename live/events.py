"""The one place that sends show-room events to viewers.

Services call these functions inside their transaction; events leave only after
commit, so a rolled-back change never reaches a viewer. This module imports no
app models.

The contract every app relies on (the delivery behind it may change):

- ``broadcast(show_id, event)``: a persisted event for everybody in the show's
  room; it is given the show's next ``seq`` and can be replayed on reconnect.
- ``broadcast_ephemeral(show_id, event)``: for everybody, no ``seq``, may be
  coalesced or dropped for slow viewers (reactions, viewer counts).
- ``notify(show_id, recipient, event)``: to one audience member's sockets only
  (``recipient`` is ``user_recipient(user_id)`` or ``session_recipient(key)``),
  e.g. ``order.updated`` for the buyer.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

SHOW_STATUS = "show.status"

Event = dict[str, Any]


def show_group(show_id: int) -> str:
    return f"show.{show_id}"


def user_recipient(user_id: int) -> str:
    return f"user:{user_id}"


def session_recipient(session_key: str) -> str:
    return f"session:{session_key}"


def _send_after_commit(show_id: int, message: dict[str, Any]) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(show_group(show_id), message)

    transaction.on_commit(send)


def broadcast(show_id: int, event: Event) -> None:
    """Send a persisted ``event`` to the whole room once the transaction commits."""
    _send_after_commit(show_id, {"type": "room.event", "event": event})


def broadcast_ephemeral(show_id: int, event: Event) -> None:
    """Send an ephemeral ``event`` (no seq, may be coalesced) after commit."""
    _send_after_commit(show_id, {"type": "room.ephemeral", "event": event})


def notify(show_id: int, recipient: str, event: Event) -> None:
    """Send ``event`` only to ``recipient``'s sockets in the room, after commit."""
    _send_after_commit(
        show_id, {"type": "room.private", "recipient": recipient, "event": event}
    )
