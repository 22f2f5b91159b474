"""Checkout's JSON API and the Stripe webhook: parse, authorize, call one
service, answer. Domain errors become ``{"code", "message"}`` with a 4xx."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checkout import selectors, services
from checkout import stripe_gateway as gateway
from checkout.exceptions import (
    AddressInvalid,
    CheckoutError,
    OrderNotFound,
    TooManyReservations,
)
from checkout.models import Order, OrderAddress
from checkout.money import Money
from checkout.services import cards, delivery
from checkout.services.resume import order_resume
from checkout.services.sales import epoch_ms
from checkout.webhooks import webhook_receive
from shows import attribution
from shows import selectors as show_selectors
from shows.exceptions import ShowfloorError
from shows.models import Show, User

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def api(view: View) -> View:
    """Turn domain errors into JSON answers with their code and message, and
    say in ``Server-Timing`` how long we took and how much of it was Stripe."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        started = time.perf_counter()
        gateway.provider_ms_take()
        try:
            response = view(request, *args, **kwargs)
        except TooManyReservations as exc:
            response = _error(exc.code, exc.message, exc.status)
            response["Retry-After"] = str(exc.retry_after)
        except AddressInvalid as exc:
            response = _error(exc.code, exc.message, exc.status)
            # Which fields to fix, for the sheet's form.
            response.content = json.dumps(
                {"code": exc.code, "message": exc.message, "fields": exc.fields}
            ).encode()
        except CheckoutError as exc:
            response = _error(exc.code, exc.message, exc.status)
        except ShowfloorError as exc:
            response = _error(exc.code, exc.message, 400)
        total = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = (
            f"app;dur={total:.1f}, psp;dur={gateway.provider_ms_take():.1f}"
        )
        return response

    return wrapped


class BadRequest(CheckoutError):
    code = "invalid"


def _body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BadRequest(_("Send JSON (Content-Type: application/json)."))
    if len(request.body) > 4096:
        raise BadRequest(_("The request is too large."))
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise BadRequest(_("The request is not valid JSON.")) from exc
    if not isinstance(data, dict):
        raise BadRequest(_("The request must be a JSON object."))
    return data


def _int(data: dict[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(_("“%(name)s” must be a whole number.") % {"name": name})
    return value


def _show(slug: str) -> Show:
    try:
        return show_selectors.show_get(slug=slug)
    except Show.DoesNotExist as exc:
        raise OrderNotFound(_("There is no show at this address.")) from exc


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if user.is_authenticated else None


def _buyer(request: HttpRequest, email: str = "") -> services.Buyer:
    def start_session() -> str:
        # A guest's session is how their socket receives ``order.updated``
        # and how they read and pay their order.
        request.session.save()
        return str(request.session.session_key)

    return services.Buyer(
        user=_user(request),
        session_key=request.session.session_key or "",
        email=email,
        start_session=start_session,
        address=str(request.META.get("REMOTE_ADDR") or ""),
    )


def _attribution(request: HttpRequest, show: Show) -> dict[str, Any]:
    """Where the buyer came from, for the order to keep (docs/audience.md)."""
    found = attribution.attribution_for(request, show)
    return {"source": found.source, "share_link_id": found.share_link_id}


def _order_payload(
    order: Order, *, client_secret: str = "", **extra: Any
) -> dict[str, Any]:
    data = selectors.order_json(order, client_secret=client_secret)
    locale = get_language() or "en"
    data["total"] = Money(order.total_minor, order.currency).format(locale)
    for part in ("subtotal", "shipping", "tax"):
        data[part] = Money(data[f"{part}_minor"], order.currency).format(locale)
    data["tax_rate"] = f"{order.tax_rate_bp / 100:g} %"
    # Where a redirecting payment method (a bank's page) sends the buyer back.
    data["return_url"] = services.order_return_url(order)
    # Where it goes, by country only: a wallet may offer only that country.
    data["ship_to_country"] = (
        OrderAddress.objects.filter(order=order)
        .values_list("country", flat=True)
        .first()
    )
    data["server_now"] = int(time.time() * 1000)
    data.update(extra)
    return data


@require_http_methods(["GET", "POST"])
@api
def orders(request: HttpRequest, slug: str) -> HttpResponse:
    """POST: place an order (the buyer). GET: the show's orders (its staff)."""
    show = _show(slug)
    if request.method == "GET":
        return _studio_orders(request, show)
    data = _body(request)
    email = data.get("email") or ""
    city = data.get("city") or ""
    if not isinstance(email, str) or not isinstance(city, str):
        raise BadRequest()
    placed = services.order_create(
        show=show,
        buyer=_buyer(request, email=email[:254]),
        variant_id=_int(data, "variant_id"),
        quantity=_int(data, "quantity", 1),
        idempotency_key=request.headers.get("Idempotency-Key"),
        save_card=data.get("save_card") is True,
        proof_city=city if data.get("share_city") is True else "",
        address=_address(data),
        save_address=data.get("save_address") is True,
        **_attribution(request, show),
        # An ended show sells from its replay to whoever may watch it.
        replay_access=show_selectors.show_access_granted(
            show=show, session=request.session, user=_user(request)
        ),
    )
    if not placed.created:
        _adopt_order_session(request, placed.order)
    payload = _order_payload(
        placed.order,
        client_secret=placed.client_secret,
        expires_at=placed.expires_at.isoformat() if placed.expires_at else None,
        pay_url=f"/api/orders/{placed.order.public_id}/pay",
    )
    return JsonResponse(payload, status=201 if placed.created else 200)


def _address(data: dict[str, Any]) -> dict[str, object] | None:
    address = data.get("address")
    if address is None:
        return None
    if not isinstance(address, dict):
        raise BadRequest(_("“address” must be an object."))
    return address


def _adopt_order_session(request: HttpRequest, order: Order) -> None:
    """A guest's Buy replayed before its first answer arrived (a double tap):
    every answer carries the order's session, whichever the browser keeps.
    The service refused a replay from any other session."""
    if order.buyer_id is not None or not order.session_key:
        return
    if request.session.session_key == order.session_key:
        return
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(order.session_key)
    # SessionMiddleware then saves it (unchanged) and sends its cookie.
    request.session.modified = True


def _studio_orders(request: HttpRequest, show: Show) -> HttpResponse:
    if not show_selectors.user_is_show_staff(user=_user(request), show=show):
        return _error("forbidden", _("Only the brand's staff can see orders."), 403)
    found = selectors.studio_orders(show=show)
    locale = get_language() or "en"
    return JsonResponse(
        {
            "revenue": [
                {
                    "currency": r.currency,
                    "minor": r.minor,
                    "orders": r.orders,
                    "formatted": Money(r.minor, r.currency).format(locale),
                }
                for r in found.revenue
            ],
            "reserved": found.reserved,
            "orders": [
                {
                    "id": str(order.public_id)[:8],
                    "status": order.status,
                    "status_label": order.get_status_display(),
                    "total": Money(order.total_minor, order.currency).format(locale),
                    "items": ", ".join(
                        _("%(quantity)s x %(product)s")
                        % {"quantity": line.quantity, "product": line.product_name}
                        for line in order.lines.all()
                    ),
                    "buyer": order.buyer.display_name if order.buyer else _("Guest"),
                    "created_at": order.created_at.isoformat(),
                }
                for order in found.orders
            ],
        }
    )


def _buyer_order(request: HttpRequest, public_id: Any) -> Order:
    order = selectors.order_for_buyer(
        public_id=str(public_id),
        user=_user(request),
        session_key=request.session.session_key or "",
    )
    if order is None:
        raise OrderNotFound()
    return order


@require_GET
@api
def order_detail(request: HttpRequest, public_id: Any) -> HttpResponse:
    # The saved card too: after Stripe.js paid, the webhook is what saves it.
    return JsonResponse(
        _order_payload(
            _buyer_order(request, public_id), saved_card=_saved_card(request)
        )
    )


@require_GET
@api
def order_open(request: HttpRequest, slug: str) -> HttpResponse:
    """The buyer's order in this show that still holds stock and waits for a
    card (optionally for ``?variant_id=``), to resume after a reload instead
    of placing another; 404 ``no_open_order`` when there is none."""
    show = _show(slug)
    raw = request.GET.get("variant_id", "")
    if raw and not (raw.isdigit() and len(raw) < 19):
        raise BadRequest(
            _("“%(name)s” must be a whole number.") % {"name": "variant_id"}
        )
    found = order_resume(
        show=show,
        user=_user(request),
        session_key=request.session.session_key or "",
        variant_id=int(raw) if raw else None,
    )
    if found is None:
        return _error(
            "no_open_order", _("You have no reservation to resume here."), 404
        )
    return JsonResponse(
        _order_payload(
            found.order,
            client_secret=found.client_secret,
            expires_at=found.expires_at.isoformat(),
            pay_url=f"/api/orders/{found.order.public_id}/pay",
        )
    )


def _saved_card(request: HttpRequest) -> dict[str, str] | None:
    """The signed-in buyer's usable saved card (brand and last four only), so
    the sheet offers it on the next Buy without a reload."""
    user = _user(request)
    return selectors.saved_card_summary(user_id=user.pk if user else None)


@require_POST
@api
def order_pay(request: HttpRequest, public_id: Any) -> HttpResponse:
    """Confirm on the server with the saved card, or the test method in test mode."""
    data = _body(request)
    order = _buyer_order(request, public_id)
    method = data.get("method")
    test_method = data.get("test_payment_method") or ""
    if not isinstance(method, str) or not isinstance(test_method, str):
        raise BadRequest()
    result = services.order_pay(
        order=order,
        buyer=_buyer(request),
        method=method,
        test_payment_method=test_method[:100],
    )
    return _pay_answer(request, result)


def _pay_answer(request: HttpRequest, result: services.PayResult) -> JsonResponse:
    """The order after a payment step, as the pay and refresh endpoints answer."""
    result.order.refresh_from_db()
    return JsonResponse(
        _order_payload(
            result.order,
            client_secret=result.client_secret,
            outcome=result.outcome,
            saved_card=_saved_card(request),
        )
    )


@require_POST
@api
def order_address(request: HttpRequest, public_id: Any) -> HttpResponse:
    """The address the buyer's wallet gave replaces the one typed in the
    sheet, within the country the order was priced for (Express Checkout)."""
    data = _body(request)
    address = _address(data)
    if address is None:
        raise BadRequest(_("“address” must be an object."))
    order = _buyer_order(request, public_id)
    delivery.order_address_replace(order=order, address=address)
    return JsonResponse(_order_payload(order))


@require_POST
@api
def order_cancel(request: HttpRequest, public_id: Any) -> HttpResponse:
    order = services.order_cancel(order=_buyer_order(request, public_id))
    return JsonResponse(_order_payload(order))


@require_POST
@api
def sale_start(request: HttpRequest, slug: str) -> HttpResponse:
    show = _show(slug)
    user = _user(request)
    if user is None:
        return _error("login_required", _("Log in to start a sale."), 403)
    data = _body(request)
    sale = services.sale_start(
        show=show,
        user=user,
        product_id=_int(data, "product_id"),
        price_minor=_int(data, "price_minor"),
        duration_seconds=_int(data, "duration_seconds"),
        per_buyer_limit=_int(data, "per_buyer_limit"),
    )
    return JsonResponse(
        {
            "sale_id": sale.pk,
            "product_id": sale.product_id,
            "price_minor": sale.price_minor,
            "currency": sale.currency,
            "per_buyer_limit": sale.per_buyer_limit,
            "starts_at": epoch_ms(sale.starts_at),
            "ends_at": epoch_ms(sale.ends_at),
        },
        status=201,
    )


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except gateway.SignatureInvalid as exc:
        return _error("webhook_signature_invalid", str(exc), 400)
    except CheckoutError as exc:
        # Not applicable yet (the event was forgotten): Stripe delivers it again.
        return _error(exc.code, exc.message, exc.status)
    return HttpResponse(status=200)


# --- Saved card and the return from a bank's page ----------------------------


@require_http_methods(["DELETE"])
@api
def saved_card(request: HttpRequest) -> HttpResponse:
    """DELETE: forget the signed-in buyer's saved card (detached at Stripe).
    Answers ``{"saved_card": null}``, also when there was none."""
    user = _user(request)
    if user is None:
        return _error("login_required", _("Log in to manage your saved card."), 403)
    services.saved_card_remove(user=user)
    return JsonResponse({"saved_card": None})


@require_POST
@api
def saved_card_setup(request: HttpRequest) -> HttpResponse:
    """POST: save a card without paying (before a first bid, docs/auctions.md).

    ``{}`` opens a SetupIntent: in test mode the server confirms it with a
    test method (``test_payment_method`` may name one) and the card is saved;
    in production the answer's ``client_secret`` is for Stripe.js
    (``stripe.confirmCardSetup``), after which the page posts
    ``{"setup_intent_id": …}`` and the server reads it from Stripe and keeps
    the card. Answers ``{status, client_secret, setup_intent_id,
    saved_card}``."""
    user = _user(request)
    if user is None:
        return _error("login_required", _("Log in to save a card."), 403)
    data = _body(request)
    setup_id = data.get("setup_intent_id") or ""
    test_method = data.get("test_payment_method") or ""
    if not isinstance(setup_id, str) or not isinstance(test_method, str):
        raise BadRequest()
    setup = cards.saved_card_setup(
        user=user, setup_id=setup_id[:255], test_payment_method=test_method[:100]
    )
    return JsonResponse(
        {
            "status": setup.status,
            "client_secret": setup.client_secret,
            "setup_intent_id": setup.setup_id,
            "saved_card": setup.saved_card,
        }
    )


@require_POST
@api
def order_refresh(request: HttpRequest, public_id: Any) -> HttpResponse:
    """The buyer is back from a bank's page (``?order=<id>`` on the show page):
    read the order's payment from Stripe and answer the order as the pay
    endpoint does. Stripe's return parameters are not needed: the server reads
    the order's own intent."""
    result = services.order_refresh(order=_buyer_order(request, public_id))
    return _pay_answer(request, result)


@require_POST
@api
def quote(request: HttpRequest, slug: str) -> HttpResponse:
    """What the sheet shows before the buyer reserves: the lines, shipping to
    the chosen country, tax and the total, written out for the buyer."""
    show = _show(slug)
    data = _body(request)
    country = data.get("country") or ""
    if not isinstance(country, str):
        raise BadRequest()
    found = delivery.variant_quote(
        show=show,
        variant_id=_int(data, "variant_id"),
        quantity=_int(data, "quantity", 1),
        country=country,
    )
    return _quote_answer(found)


def _quote_answer(found: Any) -> JsonResponse:
    locale = get_language() or "en"
    return JsonResponse(
        {
            **{
                f"{part}_minor": getattr(found, f"{part}_minor")
                for part in ("subtotal", "shipping", "tax", "total")
            },
            **{
                part: found.money(getattr(found, f"{part}_minor")).format(locale)
                for part in ("subtotal", "shipping", "tax", "total")
            },
            "currency": found.currency,
            "tax_included": found.tax_included,
            "tax_rate": f"{found.tax_rate_bp / 100:g} %",
            "needs_address": found.needs_address,
        }
    )


# --- The bag -------------------------------------------------------------------


def _bag_answer(bag: Order | None, pending: Order | None = None) -> JsonResponse:
    data = services.bag_json(bag)
    bag_data = data["bag"]
    if bag_data is not None and bag is not None:
        locale = get_language() or "en"
        bag_data["subtotal"] = Money(bag.subtotal_minor, bag.currency).format(locale)
        for line in bag_data["lines"]:
            line["unit_price"] = Money(line["unit_price_minor"], bag.currency).format(
                locale
            )
            line["total"] = Money(
                line["unit_price_minor"] * line["quantity"], bag.currency
            ).format(locale)
    # A bag checked out and still waiting for its payment, to pay after a
    # reload with its client secret (Stripe's Payment Element needs it).
    data["checkout"] = None
    if pending is not None:
        secret, expires_at = services.bag_checkout_resume(pending)
        data["checkout"] = _order_payload(
            pending,
            client_secret=secret,
            expires_at=expires_at.isoformat() if expires_at else None,
            pay_url=f"/api/orders/{pending.public_id}/pay",
        )
    return JsonResponse(data)


@require_GET
@api
def bag(request: HttpRequest, slug: str) -> HttpResponse:
    """The buyer's bag in this show (``{"bag": null}`` when empty) and a
    checked-out bag still waiting for payment (``checkout``)."""
    show = _show(slug)
    found, pending = services.bag_get(show=show, buyer=_buyer(request))
    return _bag_answer(found, pending)


@require_http_methods(["PUT"])
@api
def bag_line(request: HttpRequest, slug: str, variant_id: int) -> HttpResponse:
    """Set how many of a line-up product option the bag holds (0 removes it).
    Absolute, so a repeated request changes nothing."""
    show = _show(slug)
    data = _body(request)
    found, _buyer_now = services.bag_set_line(
        show=show,
        buyer=_buyer(request),
        variant_id=variant_id,
        quantity=_int(data, "quantity"),
        replay_access=show_selectors.show_access_granted(
            show=show, session=request.session, user=_user(request)
        ),
    )
    return _bag_answer(found)


@require_POST
@api
def bag_quote(request: HttpRequest, slug: str) -> HttpResponse:
    """The bag's shipping, tax and total to the chosen country, before Pay."""
    show = _show(slug)
    data = _body(request)
    country = data.get("country") or ""
    if not isinstance(country, str):
        raise BadRequest()
    found = services.bag_quote(show=show, buyer=_buyer(request), country=country)
    return _quote_answer(found)


@require_POST
@api
def bag_checkout(request: HttpRequest, slug: str) -> HttpResponse:
    """Check the bag out: one order for all its lines, reserved, with its
    PaymentIntent; paid through ``/api/orders/<id>/pay`` like any order."""
    show = _show(slug)
    data = _body(request)
    email = data.get("email") or ""
    city = data.get("city") or ""
    if not isinstance(email, str) or not isinstance(city, str):
        raise BadRequest()
    placed = services.bag_checkout(
        show=show,
        buyer=_buyer(request, email=email[:254]),
        address=_address(data),
        save_address=data.get("save_address") is True,
        save_card=data.get("save_card") is True,
        proof_city=city if data.get("share_city") is True else "",
        **_attribution(request, show),
    )
    payload = _order_payload(
        placed.order,
        client_secret=placed.client_secret,
        expires_at=placed.expires_at.isoformat() if placed.expires_at else None,
        pay_url=f"/api/orders/{placed.order.public_id}/pay",
    )
    return JsonResponse(payload, status=201 if placed.created else 200)
