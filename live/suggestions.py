"""Suggested answers for the host: when a viewer's question is about a
product of the line-up, the studio offers a draft drawn from what the shop
knows about it, which the host edits or approves before it is posted. Nothing
is ever posted without a person (the studio only fills the answer field).

Where a draft comes from, in order:

1. **An earlier answer.** A question about the same product that a host
   answered before, in any show of the brand, and that says the same thing
   (``shows.similar``): its answer, as the host wrote it.
2. **The product's facts**, chosen by what the question asks (words in any
   of the site's languages): the price; what is left of each option; the
   options a question names ("in black?"); else the price, the options with
   their stock, and the first sentence of the description.

Which product: the one the viewer picked when asking, else a line-up product
whose name the question contains (the longest such name), else none and
no draft. Drafts are written in the host's language, prices as
``checkout.money`` writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from checkout.money import Money
from shows import similar
from shows.models import LineupItem, Product, Question, Show, Variant

MAX_LENGTH = Question.ANSWER_MAX_LENGTH
EARLIER_ANSWERS = 200

# Words that show what a question asks about, in the site's languages
# (compared after ``similar.meaning_words``: folded, without accents).
PRICE_WORDS = frozenset(
    {
        *("price", "prices", "cost", "costs", "much", "expensive", "cheap"),
        *("preis", "kostet", "kosten", "teuer"),
        *("prix", "coute", "combien", "cher"),
        *("priis", "djoer"),
    }
)
STOCK_WORDS = frozenset(
    {
        *("stock", "left", "available", "availability", "sold", "many"),
        *("lager", "vorrat", "verfugbar", "ubrig", "ausverkauft"),
        *("reste", "disponible", "disponibles", "epuise"),
        *("voorraad", "beskikber", "oer"),
    }
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    product: Product
    # "earlier_answer" or "facts"
    source: str
    text: str


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1].rstrip() + "…"


def question_product(question: Question) -> Product | None:
    """The product the question is about (see the module's doc)."""
    if question.product_id is not None:
        return question.product
    lineup = [
        item.product
        for item in LineupItem.objects.filter(show_id=question.show_id).select_related(
            "product"
        )
    ]
    asked = " ".join(similar.meaning_words(question.text))
    named = [
        product
        for product in lineup
        if (words := similar.meaning_words(product.name))
        and re.search(rf"\b{re.escape(' '.join(words))}\b", asked)
    ]
    return max(named, key=lambda product: len(product.name), default=None)


def _earlier_answer(question: Question, product: Product) -> str | None:
    answered = [
        (pk, text, answer)
        for pk, text, answer in Question.objects.filter(
            show__brand_id=product.brand_id,
            product=product,
            status=Question.Status.ANSWERED,
        )
        .exclude(answer="")
        .exclude(pk=question.pk)
        .order_by("-answered_at")
        .values_list("id", "text", "answer")[:EARLIER_ANSWERS]
    ]
    same = similar.similar_question(
        question.text,
        product.pk,
        [
            similar.Candidate(id=pk, text=text, product_id=product.pk)
            for pk, text, _a in answered
        ],
    )
    return next((answer for pk, _t, answer in answered if pk == same), None)


def _price(variants: list[Variant], language: str) -> str:
    prices = sorted({(v.price_minor, v.currency) for v in variants})
    written = [Money(minor, currency).format(language) for minor, currency in prices]
    if len(written) == 1:
        return written[0]
    return _("from %(price)s") % {"price": written[0]}


def _option(variant: Variant, language: str) -> str:
    name = variant.name or variant.sku
    if variant.stock_available <= 0:
        return _("%(option)s: sold out") % {"option": name}
    return ngettext(
        "%(option)s: %(n)s left", "%(option)s: %(n)s left", variant.stock_available
    ) % {"option": name, "n": variant.stock_available}


def _facts(question: Question, product: Product, language: str) -> str:
    variants = list(product.variants.order_by("id"))
    words = set(similar.meaning_words(question.text))
    named = [
        v for v in variants if v.name and set(similar.meaning_words(v.name)) & words
    ]
    if not variants:
        return product.description.split(". ")[0].strip()
    if named:
        return " ".join(
            _("%(option)s costs %(price)s.")
            % {
                "option": v.name,
                "price": Money(v.price_minor, v.currency).format(language),
            }
            + " "
            + _option(v, language)
            + "."
            for v in named
        )
    if words & PRICE_WORDS:
        return _("%(product)s costs %(price)s.") % {
            "product": product.name,
            "price": _price(variants, language),
        }
    options = "; ".join(_option(v, language) for v in variants)
    if words & STOCK_WORDS:
        return _("Stock of %(product)s now: %(options)s.") % {
            "product": product.name,
            "options": options,
        }
    first = product.description.strip().split("\n")[0].split(". ")[0].strip()
    text = _("%(product)s costs %(price)s. Options: %(options)s.") % {
        "product": product.name,
        "price": _price(variants, language),
        "options": options,
    }
    return f"{text} {first.rstrip('.')}." if first else text


def suggest_answer(*, question: Question, language: str) -> Suggestion | None:
    """A draft answer to ``question``, or None when it names no product."""
    product = question_product(question)
    if product is None:
        return None
    earlier = _earlier_answer(question, product)
    if earlier:
        return Suggestion(product=product, source="earlier_answer", text=_clip(earlier))
    return Suggestion(
        product=product, source="facts", text=_clip(_facts(question, product, language))
    )


def show_question(*, show: Show, question_id: int) -> Question | None:
    return (
        Question.objects.filter(pk=question_id, show=show)
        .select_related("product")
        .first()
    )
