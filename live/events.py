"""The one place that sends show-room events to viewers.

Services call :func:`broadcast` inside their transaction; the event leaves only
after commit, so a rolled-back change never reaches a viewer. This module imports
no app models.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

SHOW_STATUS = "show.status"


def show_group(show_id: int) -> str:
    return f"show.{show_id}"


def broadcast(show_id: int, event: dict[str, Any]) -> None:
    """Send ``event`` to every socket of the show once the transaction commits."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            show_group(show_id), {"type": "room.event", "event": event}
        )

    transaction.on_commit(send)
