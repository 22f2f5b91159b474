"""Reviews for the brand's team (checkout/services/reviews.py).

``/brand/<slug>/reviews/``: every review of the brand's products with each
product's average and count; moderators, hosts and owners hide and show a
review, hosts and owners reply under it. Each action posts to its own URL and
redirects (post/redirect/get); the services decide who may.

The studio's "Reviews" panel reads ``/brand/<slug>/reviews/shows/<show>/``
(the line-up's ratings and its visible reviews, JSON, for members who open
the studio) and features one with a POST to
``/brand/<slug>/reviews/shows/<show>/<id>/feature/``, which sends
``review.featured`` to the room.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checkout import selectors
from checkout.exceptions import CheckoutError
from checkout.models import Review
from checkout.services import reviews
from frontend import workspace
from frontend.workspace import workspace_page
from shows.exceptions import ShowfloorError
from shows.models import LineupItem, Show
from shows.services.workspace import Capability, NotAllowed, Seat


def _page(seat: Seat, **extra: Any) -> dict[str, Any]:
    """The workspace layout with "Reviews" as the current section."""
    return workspace._context(seat, "reviews", **extra)


def _stars(rating: int) -> str:
    return "★" * rating + "☆" * (5 - rating)


@workspace_page
@require_http_methods(["GET"])
def reviews_page(request: HttpRequest, seat: Seat) -> HttpResponse:
    """The brand's reviews, newest first, hidden ones marked."""
    if not seat.can(Capability.ROOM_MODERATE):
        raise NotAllowed()
    rows = selectors.reviews_of_brand(brand_id=seat.brand.pk)
    ratings = selectors.product_ratings({row.product_id for row in rows})
    products = {
        row.product_id: {
            "name": row.product.name,
            "rating": ratings.get(row.product_id),
        }
        for row in rows
    }
    return render(
        request,
        "frontend/workspace/reviews.html",
        _page(
            seat,
            rows=[{"review": row, "stars": _stars(row.rating)} for row in rows],
            products=sorted(products.values(), key=lambda p: p["name"]),
            can_reply=seat.can(Capability.CATALOG_MANAGE),
        ),
    )


@workspace_page
@require_POST
def review_action(request: HttpRequest, seat: Seat, review_id: int) -> HttpResponse:
    """``action``: hide, show or reply (with ``reply``)."""
    action = request.POST.get("action")
    try:
        if action in ("hide", "show"):
            reviews.review_set_hidden(
                actor=seat.user,
                brand_id=seat.brand.pk,
                review_id=review_id,
                hidden=action == "hide",
            )
            messages.success(
                request,
                _("The review is hidden.")
                if action == "hide"
                else _("The review is shown."),
            )
        elif action == "reply":
            reviews.review_reply(
                actor=seat.user,
                brand_id=seat.brand.pk,
                review_id=review_id,
                text=request.POST.get("reply", ""),
            )
            messages.success(request, _("Your reply is saved."))
    except reviews.ReviewNotFound as exc:
        raise Http404(exc.message) from exc
    except CheckoutError as exc:
        messages.error(request, exc.message)
    return redirect(f"{_reviews_url(seat)}#review-{review_id}")


def _reviews_url(seat: Seat) -> str:
    from django.urls import reverse

    return reverse("workspace_reviews", args=[seat.brand.slug])


# --- The studio's panel ---------------------------------------------------------


def _show(seat: Seat, show_slug: str) -> Show:
    """The brand's show, for a member who may open the studio."""
    if not seat.can(Capability.STUDIO_OPEN):
        raise NotAllowed()
    return get_object_or_404(Show, slug=show_slug, brand=seat.brand)


@workspace_page
@require_GET
def studio_reviews(request: HttpRequest, seat: Seat, show_slug: str) -> HttpResponse:
    """The line-up with each product's average and count, and its visible
    reviews (best and newest first) that the host may feature."""
    show = _show(seat, show_slug)
    lineup = list(
        LineupItem.objects.filter(show=show)
        .select_related("product")
        .order_by("position", "id")
    )
    ratings = selectors.product_ratings(item.product_id for item in lineup)
    return JsonResponse(
        {
            "lineup": [
                {
                    "id": item.product_id,
                    "name": item.product.name,
                    **(
                        ratings[item.product_id].as_dict()
                        if item.product_id in ratings
                        else {"average": None, "count": 0}
                    ),
                }
                for item in lineup
            ],
            "reviews": [
                _studio_row(review) for review in selectors.reviews_of_show(show=show)
            ],
        }
    )


def _studio_row(review: Review) -> dict[str, Any]:
    return {
        "id": review.pk,
        "rating": review.rating,
        "text": review.text,
        "author": review.author_name,
        "product": review.product.name,
    }


@workspace_page
@require_POST
def studio_review_feature(
    request: HttpRequest, seat: Seat, show_slug: str, review_id: int
) -> HttpResponse:
    """Feature the review in the live room (CSRF-protected; the show's staff).
    A refusal answers JSON with its code and message."""
    show = _show(seat, show_slug)
    try:
        reviews.review_feature(show=show, actor=seat.user, review_id=review_id)
    except CheckoutError as exc:
        return JsonResponse(
            {"code": exc.code, "message": exc.message}, status=exc.status
        )
    except ShowfloorError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message}, status=409)
    return JsonResponse({"featured": review_id})
