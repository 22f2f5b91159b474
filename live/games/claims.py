"""The claims game's socket interface (docs/games.md)."""

from __future__ import annotations

from typing import Any

# type → (hosts and moderators only, async handler(consumer, msg, ref))
HANDLERS: dict[str, tuple[bool, Any]] = {}
# Called with show= and user=; each returns keys for the room snapshot.
SNAPSHOT_PARTS: tuple[Any, ...] = ()
