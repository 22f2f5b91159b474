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

Delivery: the bus in ``live.hub.bus`` (Redis pub/sub plus a capped stream per
show with a per-show ``INCR`` sequence, or the in-process bus without Redis);
every process's hub feeds its own sockets. See docs/protocol.md.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from live.hub.bus import get_bus, json_body, private_frame

logger = logging.getLogger(__name__)

SHOW_STATUS = "show.status"
SHOW_SLOW_MODE = "show.slow_mode"
CHAT_MESSAGE = "chat.message"
CHAT_DELETED = "chat.deleted"
QUESTION_ASKED = "question.asked"
QUESTION_VOTED = "question.voted"
QUESTION_ANSWERED = "question.answered"
QUESTION_DISMISSED = "question.dismissed"
PRODUCT_PINNED = "product.pinned"
PRODUCT_UNPINNED = "product.unpinned"
STOCK_CHANGED = "stock.changed"
PURCHASE_MADE = "purchase.made"
ORDER_UPDATED = "order.updated"
USER_RESTRICTED = "user.restricted"
VIEWERS_COUNT = "viewers.count"
REACTIONS_BURST = "reactions.burst"

Event = dict[str, Any]


def show_group(show_id: int) -> str:
    return f"show.{show_id}"


def user_recipient(user_id: int) -> str:
    return f"user:{user_id}"


def session_recipient(session_key: str) -> str:
    return f"session:{session_key}"


def _after_commit(action: Any) -> None:
    def run() -> None:
        try:
            action()
        except Exception:
            # The change is committed; a lost live event is healed by the next
            # snapshot. Never turn a committed action into an error for the caller.
            logger.exception("could not publish a room event")

    transaction.on_commit(run)


def broadcast(show_id: int, event: Event) -> None:
    """Send a persisted ``event`` to the whole room once the transaction commits."""
    _after_commit(lambda: get_bus().publish_persisted(show_id, event))


def broadcast_ephemeral(show_id: int, event: Event) -> None:
    """Send an ephemeral ``event`` (no seq, may be coalesced) after commit."""
    _after_commit(lambda: get_bus().publish_raw(show_id, "E" + json_body(event)))


def notify(show_id: int, recipient: str, event: Event) -> None:
    """Send ``event`` only to ``recipient``'s sockets in the room, after commit."""
    _after_commit(
        lambda: get_bus().publish_raw(show_id, private_frame(recipient, event))
    )


def disconnect_user(brand_id: int, user_id: int, *, code: str, message: str) -> None:
    """After commit, close ``user_id``'s sockets in every show of ``brand_id`` on
    every process (a ban), each after an ``error`` frame with ``code``."""
    _after_commit(
        lambda: get_bus().control(
            {
                "op": "kick",
                "brand_id": brand_id,
                "user_id": user_id,
                "code": code,
                "message": message,
            }
        )
    )
