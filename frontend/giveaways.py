"""The public page of a giveaway's draw (docs/giveaways.md): the rules, the
commitment, and once drawn the seed, the full list and each round's winner,
recomputed here by the published method, with a way to check it by oneself.
The winner claims the prize here too (the email links to this page)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from shows import giveaway_cards, selectors
from shows.exceptions import ShowfloorError
from shows.models import Show, User
from shows.services import giveaways


def _show(slug: str) -> Show:
    try:
        return selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise Http404(_("There is no show at this address.")) from exc


@never_cache
@require_http_methods(["GET", "POST"])
def giveaway_verify(request: HttpRequest, slug: str, giveaway_id: int) -> HttpResponse:
    show = _show(slug)
    viewer = request.user if isinstance(request.user, User) else None
    if not selectors.show_access_granted(
        show=show, session=request.session, user=viewer
    ):
        return redirect("show_detail", slug=show.slug)
    giveaway = giveaway_cards.giveaway_of_show(show=show, giveaway_id=giveaway_id)
    if giveaway is None:
        raise Http404(_("There is no giveaway at this address."))
    problem = ""
    if request.method == "POST":
        try:
            giveaways.giveaway_claim(show=show, user=viewer, giveaway_id=giveaway.pk)
        except ShowfloorError as exc:
            problem = exc.message
        else:
            return redirect("giveaway_verify", slug=show.slug, giveaway_id=giveaway.pk)
    shown = giveaway_cards.giveaway_verification(giveaway, user=viewer)
    if request.GET.get("format") == "json":
        card = shown["card"]
        return JsonResponse(
            {
                "seed_hash": card["seed_hash"],
                "seed": card["seed"],
                "entries": shown["entries"],
                "draws": card["draws"],
            }
        )
    return render(
        request,
        "frontend/giveaway.html",
        {"show": show, "giveaway": giveaway, "problem": problem, **shown},
        status=400 if problem else 200,
    )
