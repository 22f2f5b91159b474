"""Domain errors of the catalogue and the show room.

Each carries a stable ``code`` (for API answers and websocket error frames) and a
human message that interfaces show as they are.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ShowfloorError(Exception):
    code = "error"
    default_message = _("Something went wrong.")
    # Whether a socket's refusal with this error is kept in the audit log.
    audited = True

    def __init__(self, message: str | None = None) -> None:
        self.message = str(message if message is not None else self.default_message)
        super().__init__(self.message)


class InvalidInput(ShowfloorError):
    code = "invalid"
    default_message = _("The input is not valid.")


class SlugTaken(InvalidInput):
    code = "slug_taken"
    default_message = _("That address is already taken.")


class EmailTaken(InvalidInput):
    code = "email_taken"
    default_message = _("An account with that email address already exists.")


class InvalidTransition(ShowfloorError):
    code = "invalid_transition"
    default_message = _("The show cannot move to that status.")


class ShowNotLive(ShowfloorError):
    code = "show_not_live"
    default_message = _("The show is not live.")


class NotAHost(ShowfloorError):
    code = "forbidden"
    default_message = _("Only the brand's hosts and moderators may do that.")


class NotInLineup(ShowfloorError):
    code = "not_in_lineup"
    default_message = _("That product is not in this show's line-up.")


class CatalogImportError(ShowfloorError):
    """A catalogue file with invalid rows; nothing of it was imported."""

    code = "invalid_catalog"
    default_message = _("The catalogue file has invalid rows; nothing was imported.")

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        lines = "; ".join(
            _("line %(line)s: %(text)s") % {"line": line, "text": text}
            for line, text in errors
        )
        super().__init__(f"{self.default_message} {lines}")


class LoginRequired(ShowfloorError):
    code = "login_required"
    default_message = _("Sign up or log in to take part.")


class ShowEnded(ShowfloorError):
    code = "show_ended"
    default_message = _("The show has ended.")


class Banned(ShowfloorError):
    code = "banned"
    default_message = _("You have been banned from this brand's shows.")


class Throttled(ShowfloorError):
    """A refusal the client may retry after ``retry_after`` seconds."""

    code = "rate_limited"
    default_message = _("You are sending too fast. Please wait a moment.")

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        self.retry_after = max(0.0, round(retry_after, 1))
        super().__init__(message)


class TimedOut(Throttled):
    code = "timed_out"
    default_message = _("A moderator has paused your chat for a while.")


class SlowMode(Throttled):
    code = "slow_mode"
    default_message = _("Slow mode is on: please wait before sending again.")


class TooManyAttempts(Throttled):
    """Too many wrong access codes from one address; even the right one waits."""

    code = "too_many_attempts"
    default_message = _("Too many wrong codes. Please wait a few minutes.")


class AlreadyVoted(ShowfloorError):
    code = "already_voted"
    default_message = _("You have already voted for this question.")


class NotFound(ShowfloorError):
    code = "not_found"
    default_message = _("That no longer exists.")


class TooManyPins(ShowfloorError):
    code = "too_many_pins"
    default_message = _("At most three products can be pinned at once.")


class AlreadyPinned(ShowfloorError):
    code = "already_pinned"
    default_message = _("That product is already pinned.")


class CatalogInputError(InvalidInput):
    """Bad input for one field of a catalogue form (``field`` names it, so the
    page shows the message next to it)."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


class ImageInvalid(CatalogInputError):
    code = "image_invalid"


class StockMoved(CatalogInputError):
    """A stock edit that would take the stock below zero, because units were
    sold (or held) after the form was read."""

    code = "stock_moved"


class CatalogAddressTaken(SlugTaken, CatalogInputError):
    """A product address or a SKU already in use (still a ``SlugTaken`` for
    the callers that catch that)."""

    code = "slug_taken"
