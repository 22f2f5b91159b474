"""When two viewers ask the same question in different words.

Twenty people asking "does it work with an iPad?" should make one question
with twenty votes, not twenty lines in the host's queue. ``similar_question``
compares a new question with the show's open ones and names the one it
repeats, if any.

The comparison is rapidfuzz's ``token_sort_ratio`` (a kept C library: the
edit-distance ratio of the two texts with their words sorted, so word order
does not matter) on the texts reduced to the words that carry the meaning:
case folded, accents and punctuation removed, and the small words of the
show's four languages (articles, pronouns, "does", "is", ...) left out, so
"Does this work with iPad?" and "does it work with an ipad" are the same
words. Two questions are the same when they leave the same words ("Is it
waterproof?", "is this waterproof??"), or when their ratio reaches
``THRESHOLD`` and they leave at least ``MIN_WORDS`` words each: one word
close to another ("size" and "sizes XL") says too little to be sure.
Questions about two different products of the line-up are never the same.

rapidfuzz rather than PostgreSQL's ``pg_trgm``: the comparison runs over at
most ``CANDIDATES`` open questions of one show, a few microseconds each, and
behaves the same on SQLite (the demo) and PostgreSQL.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

THRESHOLD = 80.0
MIN_WORDS = 2
# The newest open questions a new one is compared with.
CANDIDATES = 300

# Words that say little about what is asked, in the site's languages.
_STOPWORDS_BY_LANGUAGE = {
    "en": """a an the this that these those it its is are was were be been do does
        did can could will would should may might has have had i you he she we they
        me my your our their of to in on at for with and or but if so any some there
        what how which please pls thanks thx hi hello just also too very""",
    "de": """der die das den dem des ein eine einen einem einer es ist sind war wird
        kann können hat haben ich du er sie wir ihr mir mich dein mein auch und oder
        aber mit von zu im in am an auf für bei noch bitte danke wie was welche
        welcher welches gibt geht""",
    "fr": """le la les un une des du de l d ce cet cette ces il elle est sont était
        peut peux a ont je tu nous vous ils elles me mon ton son ma ta sa et ou mais
        avec pour dans sur en au aux est-ce que qu qui quoi comment quel quelle
        quels quelles merci svp bonjour""",
    "fy": """de it in dit dat dy dizze is binne wie kin kinne hat hawwe ik do hy sy
        wy jim my myn dyn en of mar mei fan nei yn op foar by ek hoe wat hokker""",
}


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


STOPWORDS = frozenset(
    _plain(word) for words in _STOPWORDS_BY_LANGUAGE.values() for word in words.split()
)

_PUNCTUATION = re.compile(r"[^\w\s]+")


def meaning_words(text: str) -> list[str]:
    """The words of ``text`` that carry its meaning (see the module's doc)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [
        word for word in _PUNCTUATION.sub(" ", plain).split() if word not in STOPWORDS
    ]


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    text: str
    product_id: int | None


def similar_question(
    text: str, product_id: int | None, candidates: Iterable[Candidate]
) -> int | None:
    """The id of the candidate ``text`` repeats (the most similar one, the
    oldest on a tie), or None."""
    words = meaning_words(text)
    if not words:
        return None
    mine = " ".join(words)
    best: tuple[float, int] | None = None
    for candidate in candidates:
        if (
            product_id is not None
            and candidate.product_id is not None
            and candidate.product_id != product_id
        ):
            continue
        theirs = meaning_words(candidate.text)
        if theirs == words:
            score = 100.0
        elif min(len(words), len(theirs)) < MIN_WORDS:
            continue
        else:
            score = fuzz.token_sort_ratio(mine, " ".join(theirs))
        if score >= THRESHOLD and (
            best is None
            or score > best[0]
            or (score == best[0] and candidate.id < best[1])
        ):
            best = (score, candidate.id)
    return None if best is None else best[1]
