"""Comment to buy: the keyword a host sets on a line-up product, and how a
chat message is read against it (docs/comment-to-buy.md).

The claim itself (a stock hold and a reserved order) is checkout's
(``checkout.services.claims``); this module only knows words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from realtime import events
from shows.exceptions import InvalidInput, NotInLineup
from shows.models import LineupItem, Show, User
from shows.services.moderation import require_staff

CLAIM_KEYWORD = "claim.keyword"
KEYWORD_MAX = LineupItem._meta.get_field("claim_keyword").max_length or 20
# A message's words after the keyword that may name a variant ("SOLD red M").
VARIANT_WORDS = 3
# Punctuation a viewer adds around a word ("SOLD!", "sold.") is not part of it.
_EDGE = ".,!?;:…\"'“”\u2018\u2019«»()"
_OPTION_SPLIT = re.compile("[\\s/,|·•\u2013—-]+")


class KeywordInvalid(InvalidInput):
    code = "keyword_invalid"


def folded(word: str) -> str:
    """``word`` as claims compare it: case and accents ignored (``Rosé`` and
    ``ROSE`` are one word), surrounding punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", word.strip().strip(_EDGE))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.casefold()


@dataclass(frozen=True)
class ChatWords:
    """A chat message read for a claim: its first word and the words after
    it that may name a variant (folded)."""

    first: str
    rest: tuple[str, ...]


def chat_words(text: str) -> ChatWords:
    words = [folded(word) for word in text.split()]
    words = [word for word in words if word]
    if not words:
        return ChatWords("", ())
    return ChatWords(words[0], tuple(words[1 : 1 + VARIANT_WORDS]))


def option_words(variant_name: str) -> frozenset[str]:
    """The words of a variant's name a viewer may type to choose it: the whole
    name and each option in it (``Red / M`` → ``red / m``, ``red``, ``m``)."""
    whole = folded(variant_name)
    parts = {folded(part) for part in _OPTION_SPLIT.split(variant_name)}
    return frozenset(word for word in {whole, *parts} if word)


def _clean_keyword(keyword: str) -> str:
    cleaned = keyword.strip()
    if not cleaned:
        return ""
    if len(cleaned) > KEYWORD_MAX or any(c.isspace() for c in cleaned):
        raise KeywordInvalid(
            _("A keyword is one word of at most %(limit)d characters.")
            % {"limit": KEYWORD_MAX}
        )
    if not cleaned.isprintable() or not folded(cleaned):
        raise KeywordInvalid(_("Choose a keyword with a letter or a number in it."))
    return cleaned


def claim_keyword_set(
    *, show: Show, actor: User | None, product_id: int, keyword: str
) -> LineupItem:
    """Set (or, with an empty ``keyword``, clear) the word that claims a
    line-up product while it is pinned. Hosts and moderators of the show's
    brand only. Two products may share a keyword; a viewer's word then claims
    the one pinned last.

    Raises ``NotAHost``, ``NotInLineup`` or ``KeywordInvalid``. Broadcasts
    ``claim.keyword`` {product_id, keyword, server_now}.
    """
    require_staff(show=show, user=actor)
    cleaned = _clean_keyword(keyword)
    with transaction.atomic():
        item = (
            LineupItem.objects.select_for_update()
            .filter(show=show, product_id=product_id)
            .first()
        )
        if item is None:
            raise NotInLineup()
        if item.claim_keyword != cleaned:
            item.claim_keyword = cleaned
            item.save(update_fields=["claim_keyword"])
        events.broadcast(
            show.pk,
            {
                "type": CLAIM_KEYWORD,
                "product_id": product_id,
                "keyword": cleaned,
                "server_now": int(timezone.now().timestamp() * 1000),
            },
        )
    return item


def show_keywords(*, show_id: int) -> dict[str, list[int]]:
    """The show's claim keywords, folded, each with its line-up products."""
    found: dict[str, list[int]] = {}
    for product_id, keyword in (
        LineupItem.objects.filter(show_id=show_id)
        .exclude(claim_keyword="")
        .values_list("product_id", "claim_keyword")
    ):
        found.setdefault(folded(keyword), []).append(product_id)
    return found
