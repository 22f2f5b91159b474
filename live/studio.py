"""The studio's JSON endpoints that every web process serves (the media
routes are in ``live.views``): the show's live figures (docs/analytics.md),
staff only, polled by the studio page every few seconds; a suggested answer
to a question (``live.suggestions``)."""

from __future__ import annotations

from datetime import UTC, datetime

from babel.numbers import format_percent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from checkout.money import Money, babel_locale
from live import figures, suggestions
from realtime import redis as rclient
from shows import selectors as show_selectors
from shows.models import Show

RETRY_SECONDS = 5


def _problem(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _amounts(values: dict[str, int], language: str) -> list[dict[str, object]]:
    return [
        {
            "currency": currency,
            "minor": minor,
            "formatted": Money(minor, currency).format(language),
        }
        for currency, minor in values.items()
    ]


def _duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{rest:02d}"
    return f"{minutes}:{rest:02d}"


def _staff_show(request: HttpRequest, slug: str, refusal: str) -> Show | JsonResponse:
    """The show at ``slug`` when the request comes from its brand's staff
    (owner, host, moderator), else the answer to send: 404, or 403 saying
    ``refusal``."""
    try:
        show = show_selectors.show_get(slug=slug)
    except Show.DoesNotExist:
        return _problem("not_found", _("There is no show at this address."), 404)
    user = request.user if request.user.is_authenticated else None
    if not show_selectors.user_is_show_staff(user=user, show=show):
        return _problem("forbidden", refusal, 403)
    return show


@never_cache
@require_GET
def studio_figures(request: HttpRequest, slug: str) -> HttpResponse:
    """The show's live figures for its brand's staff (owner, host, moderator);
    403 for anybody else, 503 while Redis does not answer."""
    show = _staff_show(
        request, slug, _("Only the brand's staff can see the show's figures.")
    )
    if isinstance(show, JsonResponse):
        return show
    try:
        found = figures.show_live_figures(show=show)
    except rclient.ERRORS:
        rclient.mark_down()
        response = _problem(
            "unavailable", _("The figures are briefly unavailable."), 503
        )
        response["Retry-After"] = str(RETRY_SECONDS)
        return response
    language = request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "en"
    conversion = (
        None
        if found.conversion is None
        else format_percent(found.conversion, "#,##0.0%", locale=babel_locale(language))
    )
    return JsonResponse(
        {
            "viewers_now": found.viewers_now,
            "peak_viewers": found.peak_viewers,
            "unique_viewers": found.unique_viewers,
            "watch_seconds": found.watch_seconds,
            "average_watch_seconds": found.average_watch_seconds,
            "average_watch": _duration(found.average_watch_seconds),
            "chat": found.chat,
            "reactions": found.reactions,
            "questions": found.questions,
            "chat_per_minute": found.chat_last_minute,
            "reactions_per_minute": found.reactions_last_minute,
            "buy_taps": found.buy_taps,
            "sheet_opens": found.sheet_opens,
            "holds": found.holds,
            "orders_paid": found.orders_paid,
            "buyers": found.buyers,
            "refunds": found.refunds,
            "revenue": _amounts(found.revenue, language),
            "refunded": _amounts(found.refunded, language),
            "net_revenue": _amounts(found.net_revenue, language),
            "conversion": found.conversion,
            "conversion_formatted": conversion,
            "funnel": {
                "viewers": found.funnel.viewers,
                "saw_card": found.funnel.saw_card,
                "tapped_buy": found.funnel.tapped_buy,
                "reserved": found.funnel.reserved,
                "paid": found.funnel.paid,
            },
            "products": [
                {
                    "id": product.product_id,
                    "name": product.name,
                    "pinned": product.pinned,
                    "impressions": product.impressions,
                    "buy_taps": product.buy_taps,
                    "holds": product.holds,
                    "units": product.units,
                    "revenue": _amounts(product.revenue, language),
                    "refunded": _amounts(product.refunded, language),
                }
                for product in found.products
            ],
            "minutes": [
                {
                    "at": minute.at,
                    "label": formats.time_format(
                        datetime.fromtimestamp(minute.at, tz=UTC).astimezone(
                            timezone.get_current_timezone()
                        ),
                        "H:i",
                    ),
                    "viewers": minute.viewers,
                    "orders_paid": minute.orders_paid,
                }
                for minute in found.minutes
            ],
            "pins": [{"at": at, "name": name} for at, name in found.pins],
            "sales": [{"at": at, "name": name} for at, name in found.sales],
        }
    )


@never_cache
@require_GET
def question_suggestion(
    request: HttpRequest, slug: str, question_id: int
) -> HttpResponse:
    """A draft answer to one of the show's questions, for its brand's staff:
    ``{"suggestion": {"text", "source", "product"}}``, or ``null`` with a
    ``message`` when the question names no product of the line-up."""
    show = _staff_show(
        request, slug, _("Only the brand's staff can see suggested answers.")
    )
    if isinstance(show, JsonResponse):
        return show
    question = suggestions.show_question(show=show, question_id=question_id)
    if question is None:
        return _problem("not_found", _("There is no such question in this show."), 404)
    language = request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "en"
    found = suggestions.suggest_answer(question=question, language=language)
    if found is None:
        return JsonResponse(
            {
                "suggestion": None,
                "message": _(
                    "No suggestion: the question names no product of the line-up."
                ),
            }
        )
    return JsonResponse(
        {
            "suggestion": {
                "text": found.text,
                "source": found.source,
                "product": {"id": found.product.pk, "name": found.product.name},
            }
        }
    )
