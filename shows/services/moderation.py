"""Moderation of a show room: deletions, time-outs, bans, slow mode, blocked
words, and the audit of every refusal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from realtime import events
from shows import selectors
from shows.exceptions import Banned, InvalidInput, NotAHost, NotFound, TimedOut
from shows.models import (
    BlockedWord,
    Brand,
    ChatMessage,
    Restriction,
    RoomAudit,
    Show,
    User,
)

TIMEOUT_MIN_SECONDS = 10
TIMEOUT_MAX_SECONDS = 24 * 3600
SLOW_MODE_MAX_SECONDS = 120


def require_staff(*, show: Show, user: User | None) -> User:
    """``user`` if they host or moderate ``show``'s brand; raises ``NotAHost``."""
    if user is None or not selectors.user_is_show_staff(user=user, show=show):
        raise NotAHost()
    return user


def require_unrestricted(*, show: Show, user: User) -> None:
    """Raise ``Banned`` or ``TimedOut`` (with ``retry_after``) if ``user`` may
    not take part in ``show`` now."""
    restriction = selectors.restriction_active(
        user_id=user.pk, brand_id=show.brand_id, show_id=show.pk
    )
    if restriction is None:
        return
    if restriction.kind == Restriction.Kind.BAN:
        raise Banned()
    until = restriction.until or timezone.now()
    raise TimedOut(retry_after=(until - timezone.now()).total_seconds())


def blocked_word_in(*, brand_id: int, text: str) -> bool:
    """Whether ``text`` contains one of the brand's blocked words (whole words,
    any case)."""
    words = list(
        BlockedWord.objects.filter(brand_id=brand_id).values_list("word", flat=True)
    )
    if not words:
        return False
    pattern = (
        r"(?<!\w)(?:" + "|".join(re.escape(w.casefold()) for w in words) + r")(?!\w)"
    )
    return re.search(pattern, text.casefold()) is not None


def refusal_audit(
    *, show: Show | int, user: User | None, action: str, code: str, detail: str = ""
) -> RoomAudit:
    """Record a refused room action (who, what, why)."""
    return RoomAudit.objects.create(
        show_id=show if isinstance(show, int) else show.pk,
        user=user if user is not None and user.is_authenticated else None,
        kind=RoomAudit.Kind.REFUSAL,
        action=action[:40],
        code=code[:40],
        detail=detail[:500],
    )


def _moderation_audit(*, show: Show, actor: User, action: str, detail: str) -> None:
    RoomAudit.objects.create(
        show=show,
        user=actor,
        kind=RoomAudit.Kind.MODERATION,
        action=action,
        detail=detail[:500],
    )


def chat_delete(*, show: Show, actor: User | None, message_id: int) -> None:
    """Delete a chat message for everyone. Host or moderator only.
    Raises ``NotAHost`` or ``NotFound``. Broadcasts ``chat.deleted``."""
    staff = require_staff(show=show, user=actor)
    with transaction.atomic():
        changed = ChatMessage.objects.filter(
            pk=message_id, show=show, deleted_at__isnull=True
        ).update(deleted_at=timezone.now(), deleted_by=staff)
        if not changed:
            raise NotFound(_("That message is already gone."))
        _moderation_audit(
            show=show, actor=staff, action="chat.delete", detail=str(message_id)
        )
        events.broadcast(
            show.pk, {"type": events.CHAT_DELETED, "message_id": message_id}
        )


def user_restrict(
    *,
    show: Show,
    actor: User | None,
    user_id: int,
    kind: str,
    seconds: int | None = None,
) -> Restriction:
    """Time a user out of this show (10 s to 24 h) or ban them from every show of
    the brand. Host or moderator only; staff of the brand cannot be restricted.

    Raises ``NotAHost``, ``NotFound`` or ``InvalidInput``. Notifies the user
    (``user.restricted``); a ban also closes their sockets on every process.
    """
    staff = require_staff(show=show, user=actor)
    target = User.objects.filter(pk=user_id).first()
    if target is None:
        raise NotFound(_("There is no such user."))
    if selectors.membership_role(user=target, brand_id=show.brand_id) is not None:
        raise InvalidInput(
            _("The brand's own hosts and moderators cannot be restricted.")
        )
    now = timezone.now()
    until = None
    if kind == Restriction.Kind.TIMEOUT:
        if not isinstance(seconds, int) or not (
            TIMEOUT_MIN_SECONDS <= seconds <= TIMEOUT_MAX_SECONDS
        ):
            raise InvalidInput(_("A time-out lasts from 10 seconds to 24 hours."))
        until = now + timedelta(seconds=seconds)
    elif kind != Restriction.Kind.BAN:
        raise InvalidInput(_("A restriction is a time-out or a ban."))
    with transaction.atomic():
        restriction = Restriction.objects.create(
            brand_id=show.brand_id,
            show=show if kind == Restriction.Kind.TIMEOUT else None,
            user=target,
            kind=kind,
            until=until,
            created_by=staff,
        )
        _moderation_audit(
            show=show,
            actor=staff,
            action=f"user.{kind}",
            detail=f"user {target.pk}" + (f" for {seconds}s" if seconds else ""),
        )
        events.notify(
            show.pk,
            events.user_recipient(target.pk),
            {
                "type": events.USER_RESTRICTED,
                "kind": kind,
                "until": int(until.timestamp() * 1000) if until else None,
            },
        )
        if kind == Restriction.Kind.BAN:
            events.disconnect_user(
                show.brand_id,
                target.pk,
                code=Banned.code,
                message=str(Banned.default_message),
            )
    return restriction


def restriction_lift(*, brand: Brand, user: User) -> int:
    """End every active ban and time-out of ``user`` at ``brand``."""
    now = timezone.now()
    return Restriction.objects.filter(
        Q(until__isnull=True) | Q(until__gt=now),
        brand=brand,
        user=user,
        lifted_at__isnull=True,
    ).update(lifted_at=now)


def slow_mode_set(*, show: Show, actor: User | None, seconds: int) -> Show:
    """Set the minimum seconds between two messages of a viewer (0 turns slow
    mode off, at most 120). Host or moderator only. Raises ``NotAHost`` or
    ``InvalidInput``. Broadcasts ``show.slow_mode``."""
    staff = require_staff(show=show, user=actor)
    if not isinstance(seconds, int) or not 0 <= seconds <= SLOW_MODE_MAX_SECONDS:
        raise InvalidInput(_("Slow mode is 0 to 120 seconds."))
    with transaction.atomic():
        Show.objects.filter(pk=show.pk).update(slow_mode_seconds=seconds)
        show.slow_mode_seconds = seconds
        _moderation_audit(
            show=show, actor=staff, action="show.slow_mode", detail=str(seconds)
        )
        events.broadcast(show.pk, {"type": events.SHOW_SLOW_MODE, "seconds": seconds})
    return show


def blocked_words_set(*, brand: Brand, words: Iterable[str]) -> list[str]:
    """Replace the brand's blocked words (trimmed, lower-cased, de-duplicated)."""
    cleaned = sorted({w.strip().casefold() for w in words if w.strip()})
    if any(len(w) > 60 for w in cleaned):
        raise InvalidInput(_("A blocked word has at most 60 characters."))
    with transaction.atomic():
        BlockedWord.objects.filter(brand=brand).delete()
        BlockedWord.objects.bulk_create(
            BlockedWord(brand=brand, word=w) for w in cleaned
        )
    return cleaned
