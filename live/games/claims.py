"""Comment to buy, the socket interface (docs/comment-to-buy.md).

``on_chat`` reads every chat message that went through the chat's own
limits (slow mode, time-outs, blocked words, the rate limit: a flood of
keywords is limited as chat is). A message whose first word is a claim
keyword of the show goes to ``checkout.services.claims.claim_from_chat``;
the claimer is told the outcome: ``claim.held`` (through the outbox, to
every socket of theirs) or ``claim.refused`` {code, message, product_id,
order_id, retry_after} on this socket. Hosts set the keywords with
``claim.keyword``.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError, connections
from django.utils.translation import gettext as _

from checkout import claim_cards
from checkout.services.claims import ClaimRefused, claim_from_chat
from live.games.show_reads import ShowReads
from live.protocol import id_field, text_field
from shows.selectors import STAFF_ROLES
from shows.services import claim_keywords

CLAIM_REFUSED = "claim.refused"
# How long a process trusts its copy of a show's keywords (show_reads.py).
KEYWORDS_SECONDS = 1.0
_keywords: ShowReads[frozenset[str]] = ShowReads(KEYWORDS_SECONDS)


def _in_thread(func: Any) -> Any:
    """``database_sync_to_async(func)`` on a thread of its own on PostgreSQL
    (one claim waiting on the payment provider does not hold up the
    process's other database calls); SQLite takes one writer at a time."""
    if connections["default"].vendor == "sqlite":
        return database_sync_to_async(func)
    return database_sync_to_async(func, thread_sensitive=False)


def _known_keywords(show_id: int) -> frozenset[str]:
    return frozenset(claim_keywords.show_keywords(show_id=show_id))


async def _keywords_of(show_id: int) -> frozenset[str]:
    return await _keywords.get(show_id, lambda: _in_thread(_known_keywords)(show_id))


async def on_chat(consumer: Any, text: str, ref: Any) -> None:
    """A chat message went through: claim if it starts with a keyword.
    Staff and guests never claim (guests cannot chat anyway)."""
    if consumer.user is None or consumer.role in STAFF_ROLES:
        return
    first = claim_keywords.chat_words(text).first
    if not first:
        return
    try:
        if first not in await _keywords_of(consumer.show.pk):
            return
        await _in_thread(claim_from_chat)(
            show=consumer.show, user=consumer.user, text=text
        )
    except ClaimRefused as refusal:
        consumer._frame(
            {
                "type": CLAIM_REFUSED,
                "code": refusal.code,
                "message": refusal.message,
                "product_id": refusal.product_id,
                "order_id": refusal.order_id,
                "retry_after": refusal.retry_after,
            }
        )
    except DatabaseError:
        consumer._frame(
            {
                "type": CLAIM_REFUSED,
                "code": "unavailable",
                "message": _(
                    "Your claim did not go through: the show is briefly "
                    "unavailable. Type the keyword again in a moment."
                ),
                "product_id": None,
                "order_id": None,
                "retry_after": 2,
            }
        )


async def claim_keyword(consumer: Any, msg: dict[str, Any], ref: Any) -> None:
    """``claim.keyword`` {product_id, keyword}: set or clear ("") the word
    that claims a line-up product while it is pinned (hosts, moderators)."""
    product_id = id_field(msg, "product_id")
    keyword = text_field(msg, "keyword", 40)
    if await consumer._service(
        "claim.keyword",
        ref,
        claim_keywords.claim_keyword_set,
        actor=consumer.user,
        product_id=product_id,
        keyword=keyword,
    ):
        _keywords.forget(consumer.show.pk)


# type → (hosts and moderators only, async handler(consumer, msg, ref))
HANDLERS: dict[str, tuple[bool, Any]] = {
    "claim.keyword": (True, claim_keyword),
}
# Called with show= and user=; each returns keys for the room snapshot.
SNAPSHOT_PARTS: tuple[Any, ...] = (claim_cards.room_claims,)
