"""Live games and chat commerce in the show room (docs/games.md): auctions,
giveaways, polls and comment-to-buy.

Each module is the socket interface of one game: its ``HANDLERS`` (message
type → (hosts and moderators only, handler)) join the room consumer's table,
and its ``SNAPSHOT_PARTS`` are read into a connecting viewer's snapshot with
the rest of the room (each is called with ``show=`` and ``user=``). A handler
is ``async (consumer, msg, ref)`` and calls one service through
``consumer._service`` like the consumer's own handlers. A game that listens
to the chat (a keyword) defines ``async on_chat(consumer, text, ref)``: it is
awaited after a chat message went through (so slow mode, time-outs, blocked
words and the chat's rate limit all apply first).
"""

from __future__ import annotations

from typing import Any

from live.games import auctions, claims, giveaways, polls

_GAMES = (auctions, giveaways, polls, claims)

HANDLERS: dict[str, tuple[bool, Any]] = {}
for _game in _GAMES:
    HANDLERS.update(_game.HANDLERS)

CHAT_HOOKS: tuple[Any, ...] = tuple(
    _game.on_chat for _game in _GAMES if hasattr(_game, "on_chat")
)

SNAPSHOT_PARTS: tuple[Any, ...] = tuple(
    part for _game in _GAMES for part in _game.SNAPSHOT_PARTS
)
