"""The one place that sends show-room events to viewers: the event contract.

Services call these functions inside their transaction. This module imports no
app: every app builds on it.

- ``broadcast(show_id, event)``: a persisted event for everybody in the show's
  room. It is written to the outbox in the caller's transaction with the show's
  next ``seq``, so it leaves if and only if the change commits, it is never lost
  once committed (a sender's ack means the event is durable), and it can be
  replayed on reconnect. Returns the seq.
- ``notify(show_id, recipient, event)``: to one audience member's sockets only
  (``recipient`` is ``user_recipient(user_id)`` or ``session_recipient(key)``),
  e.g. ``order.updated`` for the buyer; through the outbox too, without a seq.
- ``disconnect_user(brand_id, user_id, ...)``: close a banned user's sockets on
  every process (through the outbox).
- ``broadcast_ephemeral(show_id, event)``: for everybody, no ``seq``, best
  effort after commit (social proof); may be coalesced or dropped.
- ``broadcast_site(event, *, except_show)``: to the signed-in audience of every
  open room on every process but ``except_show``'s, after commit, without a seq
  (``brand.live``: the page shows it to those following the brand).

Delivery: ``realtime.outbox`` publishes through ``realtime.bus`` (Redis, or the
in-process bus without it); every process's hub feeds its own sockets. See
docs/protocol.md.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

from django.db import transaction

from realtime import bus as busmod
from realtime import outbox
from realtime import redis as rclient

logger = logging.getLogger(__name__)

SHOW_STATUS = "show.status"
SHOW_SLOW_MODE = "show.slow_mode"
CHAT_MESSAGE = "chat.message"
CHAT_DELETED = "chat.deleted"
QUESTION_ASKED = "question.asked"
QUESTION_VOTED = "question.voted"
QUESTION_ANSWERED = "question.answered"
QUESTION_DISMISSED = "question.dismissed"
QUESTION_MERGED = "question.merged"
QUESTION_SPLIT = "question.split"
PRODUCT_PINNED = "product.pinned"
PRODUCT_UNPINNED = "product.unpinned"
STOCK_CHANGED = "stock.changed"
PURCHASE_MADE = "purchase.made"
ORDER_UPDATED = "order.updated"
BAG_UPDATED = "bag.updated"
USER_RESTRICTED = "user.restricted"
VIEWERS_COUNT = "viewers.count"
REACTIONS_BURST = "reactions.burst"
BRAND_LIVE = "brand.live"

Event = dict[str, Any]


def user_recipient(user_id: int) -> str:
    return f"user:{user_id}"


def session_recipient(session_key: str) -> str:
    return f"session:{session_key}"


def broadcast(show_id: int, event: Event) -> int:
    """Send a persisted ``event`` to the whole room once the transaction
    commits; returns its seq. Call it late in the transaction: it locks the
    show's counter row until commit (several shows: in show id order)."""
    return outbox.append(show_id, event)


def batched() -> AbstractContextManager[outbox.Batch]:
    """Inside a transaction: the events sent in the block are stored together
    when it ends (one seq reservation per show, one INSERT), in order; each
    ``broadcast`` in it returns 0. What the block sends is kept even if a
    savepoint inside it rolls back: send only once a step cannot be refused
    (``checkout.services.auctions._bid_locked``)."""
    return outbox.batched()


def notify(show_id: int, recipient: str, event: Event) -> None:
    """Send ``event`` only to ``recipient``'s sockets in the room, after commit."""
    outbox.append(show_id, data=busmod.private_frame(recipient, event))


def disconnect_user(brand_id: int, user_id: int, *, code: str, message: str) -> None:
    """After commit, close ``user_id``'s sockets in every show of ``brand_id`` on
    every process (a ban), each after an ``error`` frame with ``code``."""
    command = {
        "op": "kick",
        "brand_id": brand_id,
        "user_id": user_id,
        "code": code,
        "message": message,
    }
    outbox.append(0, data="C" + busmod.json_body(command))


def broadcast_ephemeral(show_id: int, event: Event) -> None:
    """Send an ephemeral ``event`` (no seq, may be dropped) after commit."""
    data = "E" + busmod.json_body(event)

    def publish() -> None:
        if rclient.url() and rclient.is_down():
            return
        try:
            busmod.get_bus().publish(show_id, data)
        except Exception as exc:
            # Social proof is best effort: a lost one is not worth a retry.
            if isinstance(exc, rclient.ERRORS):
                rclient.mark_down()
            else:
                logger.exception("could not publish an ephemeral room event")

    transaction.on_commit(publish)


def broadcast_site(event: Event, *, except_show: int) -> None:
    """After commit, send ``event`` to every signed-in viewer in every open
    room on every process, except the room of ``except_show``. One control
    message per call, whatever the audience (each hub fans it out to its own
    sockets); through the outbox, so it leaves if and only if the change
    commits. Not kept for a resume: a socket that connects later misses it."""
    command = {"op": "site", "except_show": except_show, "event": event}
    outbox.append(0, data="C" + busmod.json_body(command))
