"""The show room: chat, questions, votes and pins.

Every action checks its own preconditions (role, restrictions, line-up, limits),
writes in one transaction and broadcasts through ``live.events`` after commit.
Moderation lives in ``shows.services.moderation``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from realtime import events, limiter
from shows import selectors, similar
from shows.exceptions import (
    AlreadyPinned,
    AlreadyVoted,
    InvalidInput,
    LoginRequired,
    NotFound,
    NotInLineup,
    ShowEnded,
    SlowMode,
    Throttled,
    TooManyPins,
)
from shows.models import (
    ChatMessage,
    LineupItem,
    Pin,
    Question,
    QuestionVote,
    Show,
    User,
)
from shows.services.moderation import (
    blocked_word_in,
    refusal_audit,
    require_staff,
    require_unrestricted,
)

MAX_PINS = 3


def epoch_ms(moment: object) -> int:
    return int(moment.timestamp() * 1000)  # type: ignore[attr-defined]


def _clean_text(text: object, *, limit: int, what: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput(_("%(what)s must be text.") % {"what": what})
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(_("%(what)s is empty.") % {"what": what})
    if len(cleaned) > limit:
        raise InvalidInput(
            _("%(what)s is longer than %(limit)d characters.")
            % {"what": what, "limit": limit}
        )
    return cleaned


def _require_member(user: User | None) -> User:
    if user is None or not user.is_authenticated:
        raise LoginRequired()
    return user


def _require_open(show: Show) -> None:
    if show.status == Show.Status.ENDED:
        raise ShowEnded()


def _fresh(show: Show) -> Show:
    """The show's current status and slow mode (a socket's copy may be old)."""
    show.refresh_from_db(fields=["status", "slow_mode_seconds"])
    return show


def chat_send(*, show: Show, user: User | None, text: str) -> ChatMessage:
    """Post a chat message (at most 500 characters).

    Staff are exempt from the rate limit and slow mode. Raises ``LoginRequired``,
    ``ShowEnded``, ``Banned``, ``TimedOut``, ``Throttled``/``SlowMode`` (with
    ``retry_after``) or ``InvalidInput``. A message with one of the brand's
    blocked words is kept hidden and shown to its author only (``notify``);
    any other is broadcast as ``chat.message``.
    """
    author = _require_member(user)
    cleaned = _clean_text(text, limit=ChatMessage.MAX_LENGTH, what=_("A message"))
    _fresh(show)
    _require_open(show)
    role = selectors.membership_role(user=author, brand_id=show.brand_id)
    if role is None:
        require_unrestricted(show=show, user=author)
        wait = limiter.take_token(
            f"rate:chat:{show.pk}:{author.pk}",
            capacity=float(settings.SHOWFLOOR_CHAT_BURST),
            rate=float(settings.SHOWFLOOR_CHAT_RATE_PER_SECOND),
        )
        if wait > 0:
            raise Throttled(retry_after=wait)
        if show.slow_mode_seconds:
            wait = limiter.take_interval(
                f"slow:{show.pk}:{author.pk}", seconds=show.slow_mode_seconds
            )
            if wait > 0:
                raise SlowMode(retry_after=wait)
    hidden = role is None and blocked_word_in(brand_id=show.brand_id, text=cleaned)
    with transaction.atomic():
        message = ChatMessage.objects.create(
            show=show, author=author, text=cleaned, hidden=hidden
        )
        event = selectors.chat_event(message, author=author, role=role)
        if hidden:
            refusal_audit(
                show=show,
                user=author,
                action="chat.send",
                code="blocked_word",
                detail=cleaned,
            )
            events.notify(show.pk, events.user_recipient(author.pk), event)
        else:
            events.broadcast(show.pk, event)
    return message


def question_ask(
    *, show: Show, user: User | None, text: str, product_id: int | None = None
) -> Question:
    """Ask the hosts a question, optionally about a product of the line-up.

    A question that repeats an open one (``shows.similar``) is kept merged
    into it: the asker's vote is added to it and ``question.merged`` is
    broadcast instead; hosts can split it off again (``question_split``).

    Raises ``LoginRequired``, ``ShowEnded``, ``Banned``, ``TimedOut``,
    ``Throttled``, ``NotInLineup`` or ``InvalidInput``. Broadcasts
    ``question.asked``.
    """
    author = _require_member(user)
    cleaned = _clean_text(text, limit=Question.MAX_LENGTH, what=_("A question"))
    _fresh(show)
    _require_open(show)
    role = selectors.membership_role(user=author, brand_id=show.brand_id)
    if role is None:
        require_unrestricted(show=show, user=author)
        wait = limiter.take_token(
            f"rate:question:{show.pk}:{author.pk}", capacity=3.0, rate=0.2
        )
        if wait > 0:
            raise Throttled(retry_after=wait)
    if (
        product_id is not None
        and not LineupItem.objects.filter(show=show, product_id=product_id).exists()
    ):
        raise NotInLineup()
    with transaction.atomic():
        same = _repeated_question(show=show, text=cleaned, product_id=product_id)
        if same is not None:
            return _merge_asked(show=show, into=same, author=author, text=cleaned)
        question = Question.objects.create(
            show=show, author=author, text=cleaned, product_id=product_id
        )
        events.broadcast(show.pk, selectors.question_event(question, author=author))
    return question


def _repeated_question(
    *, show: Show, text: str, product_id: int | None
) -> Question | None:
    """The open question ``text`` repeats (``shows.similar``), locked, or None."""
    candidates = [
        similar.Candidate(id=pk, text=other, product_id=product)
        for pk, other, product in Question.objects.filter(
            show=show, status=Question.Status.OPEN
        )
        .order_by("-id")
        .values_list("id", "text", "product_id")[: similar.CANDIDATES]
    ]
    same = similar.similar_question(text, product_id, candidates)
    if same is None:
        return None
    # Answered or dismissed since it was read: the new question stands alone.
    return (
        Question.objects.select_for_update()
        .filter(pk=same, status=Question.Status.OPEN)
        .first()
    )


def _merge_asked(*, show: Show, into: Question, author: User, text: str) -> Question:
    """Keep the asked question merged into ``into`` (locked): the asker's
    vote goes to it, unless they voted for it already or asked it."""
    vote = (
        into.author_id != author.pk
        and not QuestionVote.objects.filter(question=into, voter=author).exists()
    )
    question = Question.objects.create(
        show=show,
        author=author,
        text=text,
        product_id=into.product_id,
        status=Question.Status.MERGED,
        merged_into=into,
        merged_vote=vote,
    )
    if vote:
        QuestionVote.objects.create(question=into, voter=author)
        Question.objects.filter(pk=into.pk).update(votes=F("votes") + 1)
        into.refresh_from_db(fields=["votes"])
    events.broadcast(
        show.pk,
        {
            "type": events.QUESTION_MERGED,
            "question": selectors.question_event(question, author=author),
            "into": into.pk,
            "votes": into.votes,
        },
    )
    return question


def question_vote(*, show: Show, user: User | None, question_id: int) -> Question:
    """Vote for an open question, once per viewer.

    Raises ``LoginRequired``, ``NotFound`` (not an open question of this show)
    or ``AlreadyVoted``. Broadcasts ``question.voted`` with the new total.
    """
    voter = _require_member(user)
    try:
        with transaction.atomic():
            question = Question.objects.select_for_update().get(
                pk=question_id, show=show, status=Question.Status.OPEN
            )
            QuestionVote.objects.create(question=question, voter=voter)
            Question.objects.filter(pk=question.pk).update(votes=F("votes") + 1)
            question.refresh_from_db(fields=["votes"])
            events.broadcast(
                show.pk,
                {
                    "type": events.QUESTION_VOTED,
                    "question_id": question.pk,
                    "votes": question.votes,
                },
            )
    except Question.DoesNotExist as exc:
        raise NotFound(_("That question is not open any more.")) from exc
    except IntegrityError as exc:
        raise AlreadyVoted() from exc
    return question


def question_answer(
    *, show: Show, actor: User | None, question_id: int, text: str = ""
) -> Question:
    """Mark a question answered (optionally with a written answer), which
    highlights it for everyone. Host or moderator of the show's brand only.

    Raises ``NotAHost``, ``NotFound`` or ``InvalidInput``. Broadcasts
    ``question.answered``.
    """
    staff = require_staff(show=show, user=actor)
    answer = ""
    if text:
        answer = _clean_text(
            text, limit=Question.ANSWER_MAX_LENGTH, what=_("An answer")
        )
    now = timezone.now()
    with transaction.atomic():
        changed = Question.objects.filter(
            pk=question_id, show=show, status=Question.Status.OPEN
        ).update(
            status=Question.Status.ANSWERED,
            answer=answer,
            answered_at=now,
            answered_by=staff,
        )
        if not changed:
            raise NotFound(_("That question is not open any more."))
        question = Question.objects.get(pk=question_id)
        events.broadcast(
            show.pk,
            {
                "type": events.QUESTION_ANSWERED,
                "question_id": question.pk,
                "answer": answer,
                "answered_at": epoch_ms(now),
            },
        )
    return question


def question_dismiss(*, show: Show, actor: User | None, question_id: int) -> None:
    """Take a question off the queue without answering. Host or moderator only.
    Raises ``NotAHost`` or ``NotFound``. Broadcasts ``question.dismissed``."""
    require_staff(show=show, user=actor)
    with transaction.atomic():
        changed = Question.objects.filter(
            pk=question_id, show=show, status=Question.Status.OPEN
        ).update(status=Question.Status.DISMISSED)
        if not changed:
            raise NotFound(_("That question is not open any more."))
        events.broadcast(
            show.pk, {"type": events.QUESTION_DISMISSED, "question_id": question_id}
        )


def question_split(*, show: Show, actor: User | None, question_id: int) -> Question:
    """Take a merged question out of the one it was merged into: it is open
    on its own again, and the vote its merge added is taken back. Host or
    moderator only. Raises ``NotAHost`` or ``NotFound``. Broadcasts
    ``question.split`` and ``question.asked`` for the question split off."""
    require_staff(show=show, user=actor)
    with transaction.atomic():
        question = (
            Question.objects.select_for_update()
            .select_related("author")
            .filter(pk=question_id, show=show, status=Question.Status.MERGED)
            .first()
        )
        if question is None or question.merged_into_id is None:
            raise NotFound(_("That question is not merged."))
        into = Question.objects.select_for_update().get(pk=question.merged_into_id)
        if question.merged_vote:
            taken = QuestionVote.objects.filter(
                question=into, voter_id=question.author_id
            ).delete()[0]
            if taken:
                Question.objects.filter(pk=into.pk).update(votes=F("votes") - 1)
                into.refresh_from_db(fields=["votes"])
        question.status = Question.Status.OPEN
        question.merged_into = None
        question.merged_vote = False
        question.save(update_fields=["status", "merged_into", "merged_vote"])
        events.broadcast(
            show.pk,
            {
                "type": events.QUESTION_SPLIT,
                "question_id": question.pk,
                "from": into.pk,
                "votes": into.votes,
            },
        )
        events.broadcast(
            show.pk, selectors.question_event(question, author=question.author)
        )
    return question


def product_pin(*, show: Show, actor: User | None, product_id: int) -> Pin:
    """Pin a product of the line-up (at most three at once); the pin log keeps
    when. Host or moderator only.

    Raises ``NotAHost``, ``NotInLineup``, ``AlreadyPinned`` or ``TooManyPins``.
    Broadcasts ``product.pinned`` with the product card and ``at`` (epoch ms).
    """
    staff = require_staff(show=show, user=actor)
    item = (
        LineupItem.objects.filter(show=show, product_id=product_id)
        .select_related("product")
        .first()
    )
    if item is None:
        raise NotInLineup()
    now = timezone.now()
    with transaction.atomic():
        # The show row is the lock that makes "at most three" hold under races.
        Show.objects.select_for_update().only("pk").get(pk=show.pk)
        open_pins = list(
            Pin.objects.filter(show=show, unpinned_at__isnull=True).values_list(
                "product_id", flat=True
            )
        )
        if product_id in open_pins:
            raise AlreadyPinned()
        if len(open_pins) >= MAX_PINS:
            raise TooManyPins()
        pin = Pin.objects.create(
            show=show, product=item.product, pinned_at=now, pinned_by=staff
        )
        events.broadcast(
            show.pk,
            {
                "type": events.PRODUCT_PINNED,
                "product": selectors.product_card(item.product),
                "at": epoch_ms(now),
            },
        )
    return pin


def product_unpin(*, show: Show, actor: User | None, product_id: int) -> Pin:
    """Unpin a pinned product (the pin log keeps the time). Host or moderator
    only. Raises ``NotAHost`` or ``NotFound``. Broadcasts ``product.unpinned``."""
    require_staff(show=show, user=actor)
    now = timezone.now()
    with transaction.atomic():
        pin = (
            Pin.objects.select_for_update()
            .filter(show=show, product_id=product_id, unpinned_at__isnull=True)
            .first()
        )
        if pin is None:
            raise NotFound(_("That product is not pinned."))
        pin.unpinned_at = now
        pin.save(update_fields=["unpinned_at"])
        events.broadcast(
            show.pk,
            {
                "type": events.PRODUCT_UNPINNED,
                "product_id": product_id,
                "at": epoch_ms(now),
            },
        )
    return pin
