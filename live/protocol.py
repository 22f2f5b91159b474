"""What every socket handler shares to read a client's message: the refusal it
raises and the field readers (docs/protocol.md). The room's consumer and the
live games' handlers (``live/games/``) both use these."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _


class Refusal(Exception):
    """A client message refused before any service ran: becomes an ``error``
    frame with ``code`` and the human ``message``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def text_field(
    msg: dict[str, Any], name: str, limit: int, *, required: bool = True
) -> str:
    value = msg.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Refusal("invalid", _("“%(name)s” must be text.") % {"name": name})
    if len(value) > limit:
        raise Refusal(
            "too_long",
            _("“%(name)s” is longer than %(limit)d characters.")
            % {"name": name, "limit": limit},
        )
    return value


def id_field(msg: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = msg.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**62:
        raise Refusal("invalid", _("“%(name)s” must be an id.") % {"name": name})
    return value


def int_field(
    msg: dict[str, Any],
    name: str,
    *,
    low: int,
    high: int,
    required: bool = True,
    default: int | None = None,
) -> int | None:
    """A whole number in ``[low, high]`` (money in minor units, seconds)."""
    value = msg.get(name)
    if value is None and not required:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise Refusal(
            "invalid",
            _("“%(name)s” must be a whole number from %(low)d to %(high)d.")
            % {"name": name, "low": low, "high": high},
        )
    return value
