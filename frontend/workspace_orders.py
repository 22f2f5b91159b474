"""The brand's orders in the workspace, ``/brand/<slug>/orders/``: the list
with filters and bulk packing, one order with its address, timeline,
fulfilment and refunds, and the CSV export. Everything goes through
``checkout.services.brand_orders``, which checks the role (owners and hosts)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checkout import selectors
from checkout.exceptions import CheckoutError
from checkout.models import Order
from checkout.money import Money
from checkout.services import brand_orders
from checkout.services.brand_orders import OrderFilter
from frontend import workspace
from frontend.workspace import workspace_page
from shows.services import catalog
from shows.services.workspace import Capability, Seat

PER_PAGE = 50
TIMELINE_LABELS = {
    "placed": _("Placed"),
    "paid": _("Paid"),
    "packed": _("Packed"),
    "shipped": _("Shipped"),
    "delivered": _("Delivered"),
    "refunded": _("Refunded"),
    "expired": _("Expired"),
    "failed": _("Payment failed"),
    "cancelled": _("Cancelled"),
}


def _context(seat: Seat, **extra: Any) -> dict[str, Any]:
    context = workspace._context(seat, "orders", **extra)
    if seat.can(Capability.ORDERS_MANAGE) and not any(
        item["key"] == "orders" for item in context["nav"]
    ):
        context["nav"].append(
            {
                "key": "orders",
                "label": _("Orders"),
                "url": "workspace_orders",
                "current": True,
            }
        )
    return context


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _filter(request: HttpRequest) -> tuple[OrderFilter, dict[str, str], list[str]]:
    """The list's filter from the query string, what the form shows, and a
    message for each value that made no sense (it is then left out)."""
    raw = {
        name: request.GET.get(name, "").strip()
        for name in ("show", "status", "since", "until")
    }
    problems = []
    show_id = int(raw["show"]) if raw["show"].isdigit() else None
    if raw["show"] and show_id is None:
        problems.append(_("Choose a show from the list."))
    status = raw["status"] if raw["status"] in brand_orders.LISTED else ""
    if raw["status"] and not status:
        problems.append(_("Choose a status from the list."))
    since, until = _day(raw["since"]), _day(raw["until"])
    for name, value in (("since", since), ("until", until)):
        if raw[name] and value is None:
            problems.append(_("Enter dates as YYYY-MM-DD."))
            raw[name] = ""
    return OrderFilter(show_id, status, since, until), raw, problems


@workspace_page
@require_GET
def orders(request: HttpRequest, seat: Seat) -> HttpResponse:
    where, raw, problems = _filter(request)
    found = brand_orders.brand_orders(user=seat.user, brand=seat.brand, where=where)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{seat.brand.slug}-orders.csv"'
        )
        brand_orders.write_csv(found.iterator(chunk_size=500), response)
        return response
    page = Paginator(found, PER_PAGE).get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in raw.items() if v)
    return render(
        request,
        "frontend/workspace/orders.html",
        _context(
            seat,
            page=page,
            rows=[_row(order) for order in page.object_list],
            shows=brand_orders.brand_shows(user=seat.user, brand=seat.brand),
            statuses=[
                (value, label)
                for value, label in Order.Status.choices
                if value in brand_orders.LISTED
            ],
            raw=raw,
            query=query,
            problems=problems,
        ),
    )


def _row(order: Order) -> dict[str, Any]:
    return {
        "order": order,
        "total": Money(order.total_minor, order.currency).format(),
        "items": ", ".join(
            _("%(quantity)s x %(product)s")
            % {"quantity": line.quantity, "product": line.product_name}
            for line in order.lines.all()
        ),
        "buyer": order.buyer.display_name if order.buyer else order.email,
    }


@workspace_page
@require_POST
def orders_bulk(request: HttpRequest, seat: Seat) -> HttpResponse:
    """Pack or mark delivered the ticked orders; each refused one says why."""
    result = brand_orders.brand_orders_bulk(
        user=seat.user,
        brand=seat.brand,
        public_ids=request.POST.getlist("order"),
        action=request.POST.get("action", ""),
    )
    if result.done:
        messages.success(
            request,
            ngettext(
                "%(count)s order updated.",
                "%(count)s orders updated.",
                len(result.done),
            )
            % {"count": len(result.done)},
        )
    for reference, message in result.refused:
        messages.error(request, f"{reference}: {message}")
    if not result.done and not result.refused:
        messages.error(request, _("Tick the orders to change first."))
    return redirect("workspace_orders", slug=seat.brand.slug)


def _amount(raw: str, currency: str) -> int | None:
    """A refund amount typed in major units ("12.50"); None for "all".
    Raises ``ValueError`` with the reason."""
    if not raw.strip():
        return None
    minor = catalog.price_parse(raw.replace(",", "."), currency)
    if minor <= 0:
        raise ValueError(_("Enter an amount above zero, or leave it empty for all."))
    return minor


@workspace_page
@require_http_methods(["GET", "POST"])
def order_page(request: HttpRequest, seat: Seat, public_id: str) -> HttpResponse:
    order = brand_orders.brand_order(
        user=seat.user, brand=seat.brand, public_id=str(public_id)
    )
    errors: dict[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "pack":
                brand_orders.brand_order_pack(
                    user=seat.user, brand=seat.brand, order=order
                )
                messages.success(request, _("Marked as packed."))
            elif action == "ship":
                brand_orders.brand_order_ship(
                    user=seat.user,
                    brand=seat.brand,
                    order=order,
                    carrier=request.POST.get("carrier", ""),
                    tracking_number=request.POST.get("tracking_number", ""),
                    tracking_url=request.POST.get("tracking_url", ""),
                )
                messages.success(request, _("Marked as shipped; the buyer is emailed."))
            elif action == "deliver":
                brand_orders.brand_order_deliver(
                    user=seat.user, brand=seat.brand, order=order
                )
                messages.success(request, _("Marked as delivered."))
            elif action == "refund":
                try:
                    amount = _amount(request.POST.get("amount", ""), order.currency)
                except ValueError as exc:
                    errors["amount"] = str(exc)
                else:
                    brand_orders.brand_order_refund(
                        user=seat.user,
                        brand=seat.brand,
                        order=order,
                        amount_minor=amount,
                        reason=request.POST.get("reason", ""),
                        restock=request.POST.get("restock") == "on",
                    )
                    messages.success(request, _("Refund made."))
        except CheckoutError as exc:
            errors[
                "refund"
                if action == "refund"
                else "ship"
                if action == "ship"
                else "action"
            ] = exc.message
        if not errors:
            return redirect(
                "workspace_order", slug=seat.brand.slug, public_id=order.public_id
            )
        order = brand_orders.brand_order(
            user=seat.user, brand=seat.brand, public_id=str(public_id)
        )
    payment = getattr(order, "payment", None)
    refunded = payment.refunded_minor if payment else 0
    return render(
        request,
        "frontend/workspace/order.html",
        _context(
            seat,
            order=order,
            lines=[
                {
                    "line": line,
                    "total": Money(
                        line.unit_price_minor * line.quantity, line.currency
                    ).format(),
                }
                for line in order.lines.all()
            ],
            total=Money(order.total_minor, order.currency).format(),
            shipping=Money(order.shipping_minor, order.currency).format(),
            tax=Money(order.tax_minor, order.currency).format(),
            refunded=Money(refunded, order.currency).format() if refunded else "",
            refundable=Money(
                (payment.captured_minor - refunded) if payment else 0, order.currency
            ).format(),
            address=getattr(order, "shipping_address", None),
            steps=[
                {
                    "kind": step.kind,
                    "at": step.at,
                    "label": TIMELINE_LABELS.get(step.kind, step.kind),
                    "amount": step.amount.format() if step.amount else "",
                }
                for step in selectors.order_timeline(order)
            ],
            errors=errors,
            form=request.POST if errors else {},
        ),
        status=400 if errors else 200,
    )
