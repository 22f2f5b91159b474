"""The buyer's order pages: "My orders" for a signed-in buyer, one order's
page with its timeline and tracking link, and the same page reached through
the signed link in the order email (guests have no account). A buyer may
cancel from the order's page while the brand has not packed it, and rate and
review each product once it is delivered (checkout/services/reviews.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from checkout import selectors, services
from checkout.exceptions import CheckoutError
from checkout.models import Order, SavedAddress
from checkout.money import Money
from checkout.order_links import order_from_link
from checkout.services import delivery, reviews
from checkout.services.fulfilment import order_cancel_by_buyer
from shows.models import User


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if user.is_authenticated else None


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    """The buyer's orders, and what checkout keeps for them (the saved card
    and address), each with a way to remove it."""
    user = _user(request)
    assert user is not None  # noqa: S101  # nosec B101 - login_required
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "remove_card":
                services.saved_card_remove(user=user)
                messages.success(request, _("Your saved card is removed."))
            elif action == "remove_address":
                delivery.saved_address_remove(user=user)
                messages.success(request, _("Your saved address is removed."))
        except CheckoutError as exc:
            messages.error(request, exc.message)
        return redirect("my_orders")
    orders = selectors.orders_of_buyer(user=user)
    rows = [
        {
            "order": order,
            "total": Money(order.total_minor, order.currency).format(),
            "items": _items(order),
        }
        for order in orders
    ]
    card = selectors.saved_card_for(user=user)
    address = SavedAddress.objects.filter(user=user).first()
    context = {
        "rows": rows,
        "card": f"{card.brand.title()} •••• {card.last4}" if card else "",
        "address": address,
    }
    return render(request, "frontend/orders/list.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def order_page(request: HttpRequest, public_id: Any) -> HttpResponse:
    """The order of this signed-in buyer or this guest session; 404 for
    anybody else (whether or not it exists)."""
    order = selectors.order_for_buyer(
        public_id=str(public_id),
        user=_user(request),
        session_key=request.session.session_key or "",
    )
    if order is None:
        raise Http404
    return _order(request, order, here=request.path)


@never_cache
@require_http_methods(["GET", "POST"])
def order_link(request: HttpRequest, token: str) -> HttpResponse:
    """The order the email's signed link names."""
    order = order_from_link(token)
    if order is None:
        return render(request, "frontend/orders/link_invalid.html", status=404)
    return _order(request, order, here=request.path)


def _order(request: HttpRequest, order: Order, *, here: str) -> HttpResponse:
    if request.method == "POST" and request.POST.get("action") == "review":
        errors = _review(request, order)
        if errors is not None:
            return _order_page(request, order, review_errors=errors, status=400)
        messages.success(request, _("Thank you: your review is saved."))
        return redirect(here)
    if request.method == "POST":
        if request.POST.get("action") == "cancel":
            try:
                order_cancel_by_buyer(order=order)
            except CheckoutError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Your order is cancelled."))
        # Post/redirect/get: a reload does not send the cancel again.
        return redirect(here)
    return _order_page(request, order)


def _review(request: HttpRequest, order: Order) -> dict[str, Any] | None:
    """Save the posted review of one of the order's products; None when
    saved, else the form's errors by field (with what was typed)."""
    product = request.POST.get("product", "")
    text = request.POST.get("text", "")
    rating = request.POST.get("rating", "")
    product_id = int(product) if product.isdecimal() else 0
    errors: dict[str, Any] = {"product": product_id, "text_value": text}
    try:
        reviews.review_write(
            order=order,
            product_id=product_id,
            rating=int(rating) if rating.isdecimal() else 0,
            text=text,
            language=get_language() or "",
        )
    except reviews.RatingInvalid as exc:
        errors["rating"] = exc.message
    except reviews.ReviewTextInvalid as exc:
        errors["text"] = exc.message
    except CheckoutError as exc:
        errors["form"] = exc.message
    else:
        return None
    return errors


def _review_rows(order: Order, errors: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per product the buyer may review: their review if written,
    else the form (with the errors of a refused post, for that product)."""
    allowed = reviews.reviewable_product_ids(order)
    errors = errors or {}
    written = selectors.reviews_of_order(order)
    names = {
        line.variant.product_id: line.product_name
        for line in order.lines.select_related("variant")
    }
    return [
        {
            "product_id": product_id,
            "name": names.get(product_id, ""),
            "review": written.get(product_id),
            "errors": errors if errors.get("product") == product_id else {},
        }
        for product_id in allowed
    ]


def _order_page(
    request: HttpRequest,
    order: Order,
    *,
    review_errors: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    order.refresh_from_db()
    payment = getattr(order, "payment", None)
    refunded = payment.refunded_minor if payment is not None else 0
    steps = [
        {
            "step": step,
            "label": _step_label(step.kind),
            "amount": step.amount.format() if step.amount else "",
        }
        for step in selectors.order_timeline(order)
    ]
    context = {
        "order": order,
        "brand": order.show.brand,
        "lines": [
            {
                "line": line,
                "total": Money(
                    line.unit_price_minor * line.quantity, line.currency
                ).format(),
            }
            for line in order.lines.all()
        ],
        "total": Money(order.total_minor, order.currency).format(),
        "refunded": Money(refunded, order.currency).format() if refunded else "",
        "steps": steps,
        "cancellable": selectors.order_cancellable(order),
        "reviews": _review_rows(order, review_errors),
        "stars": [5, 4, 3, 2, 1],
    }
    return render(request, "frontend/orders/detail.html", context, status=status)


def _items(order: Order) -> str:
    return ", ".join(
        _("%(quantity)s x %(product)s")
        % {"quantity": line.quantity, "product": line.product_name}
        for line in order.lines.all()
    )


def _step_label(kind: str) -> str:
    labels = {
        "placed": _("Order placed"),
        "paid": _("Paid"),
        "packed": _("Packed"),
        "shipped": _("Shipped"),
        "delivered": _("Delivered"),
        "refunded": _("Refunded"),
        "expired": _("Hold ran out"),
        "failed": _("Payment failed"),
        "cancelled": _("Cancelled"),
    }
    return labels.get(kind, kind)
