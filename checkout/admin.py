"""Admin: orders with their lines, holds, payment, refunds and events; full and
partial refunds through the gateway; CSV export."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import get_currency_precision
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from checkout import services
from checkout.exceptions import CheckoutError
from checkout.models import (
    FlashSale,
    Order,
    OrderAddress,
    OrderLine,
    OrderTransition,
    Payment,
    Refund,
    ShippingZone,
    StockHold,
    TaxRate,
    WebhookEvent,
)
from checkout.money import Money
from checkout.services import brand_orders, delivery, fulfilment


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LineInline(ReadOnlyInline):
    model = OrderLine
    fields = [
        "product_name",
        "variant_name",
        "quantity",
        "unit_price_minor",
        "currency",
    ]


class HoldInline(ReadOnlyInline):
    model = StockHold
    fields = ["variant", "quantity", "status", "expires_at", "settled_at"]


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = [
        "provider",
        "intent_id",
        "status",
        "amount_minor",
        "captured_minor",
        "refunded_minor",
        "currency",
        "failure_code",
    ]


class TransitionInline(ReadOnlyInline):
    model = OrderTransition
    fields = ["created_at", "from_status", "to_status", "reason"]
    readonly_fields = ["created_at"]


class EventInline(ReadOnlyInline):
    model = WebhookEvent
    fields = ["received_at", "type", "provider_event_id", "status"]
    readonly_fields = ["received_at"]


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), decimal_places=3, label=gettext_lazy("Amount")
    )
    reason = forms.CharField(
        max_length=200, required=False, label=gettext_lazy("Reason")
    )
    restock = forms.BooleanField(
        required=False,
        label=gettext_lazy("Return the units to stock"),
        help_text=gettext_lazy(
            "Only if they are back with you or never left: they go on sale again."
        ),
    )


class ShipForm(forms.Form):
    carrier = forms.CharField(max_length=60, label=gettext_lazy("Carrier"))
    tracking_number = forms.CharField(
        max_length=100, required=False, label=gettext_lazy("Tracking number")
    )
    tracking_url = forms.URLField(
        max_length=500,
        required=False,
        assume_scheme="https",
        label=gettext_lazy("Tracking link"),
    )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "reference_display",
        "show",
        "status",
        "fulfilment_display",
        "total_display",
        "email",
        "created_at",
    ]
    list_filter = ["status", "show", "brand"]
    search_fields = ["public_id", "number", "email", "payment__intent_id"]
    date_hierarchy = "created_at"
    list_select_related = ["show"]
    readonly_fields = [
        "public_id",
        "show",
        "buyer",
        "email",
        "status",
        "total_minor",
        "currency",
        "idempotency_key",
        "sale",
        "proof_city",
        "created_at",
        "paid_at",
        "brand",
        "number",
        "packed_at",
        "shipped_at",
        "delivered_at",
        "carrier",
        "tracking_number",
        "tracking_url",
        "cancel_requested_at",
        "refund_link",
        "ship_link",
    ]
    exclude = ["session_key", "save_card"]
    inlines = [LineInline, HoldInline, PaymentInline, TransitionInline, EventInline]
    actions = [
        "export_csv",
        "mark_packed",
        "mark_shipped",
        "mark_delivered",
        "refund_in_full",
        "restock",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=gettext_lazy("Refund"))
    def refund_link(self, order: Order) -> str:
        if order.status not in (Order.Status.PAID, Order.Status.FULFILLED):
            return "-"
        url = reverse("admin:checkout_order_refund", args=[order.pk])
        return format_html('<a href="{}">{}</a>', url, _("Refund all or part…"))

    @admin.display(description=gettext_lazy("Order"), ordering="number")
    def reference_display(self, order: Order) -> str:
        return order.reference

    @admin.display(description=gettext_lazy("Fulfilment"))
    def fulfilment_display(self, order: Order) -> str:
        if order.delivered_at:
            return str(_("Delivered"))
        if order.shipped_at:
            return str(_("Shipped"))
        if order.packed_at:
            return str(_("Packed"))
        if order.cancel_requested_at:
            return str(_("Cancelling"))
        return "-"

    @admin.display(description=gettext_lazy("Ship"))
    def ship_link(self, order: Order) -> str:
        if order.status != Order.Status.PAID:
            return "-"
        url = reverse("admin:checkout_order_ship", args=[order.pk])
        return format_html('<a href="{}">{}</a>', url, _("Ship with tracking…"))

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Order],
        step: Callable[[Order], object],
        done: str,
    ) -> None:
        """Apply one fulfilment step to each selected order, saying which
        could not take it (and why) and how many did."""
        count = 0
        for order in queryset:
            try:
                step(order)
            except CheckoutError as exc:
                self.message_user(
                    request, f"{order.reference}: {exc.message}", messages.WARNING
                )
            else:
                count += 1
        if count:
            self.message_user(request, done % {"count": count})

    @admin.action(description=gettext_lazy("Mark selected orders packed"))
    def mark_packed(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: fulfilment.order_pack(order=order),
            _("%(count)s orders packed."),
        )

    @admin.action(description=gettext_lazy("Mark selected orders shipped…"))
    def mark_shipped(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse | None:
        """Asks for the carrier and tracking, then ships each order with them."""
        form = ShipForm(request.POST if "carrier" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            self._each(
                request,
                queryset,
                lambda order: fulfilment.order_ship(
                    order=order,
                    carrier=data["carrier"],
                    tracking_number=data["tracking_number"],
                    tracking_url=data["tracking_url"],
                ),
                _("%(count)s orders shipped."),
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ship orders"),
            "orders": queryset,
            "form": form,
            "action": "mark_shipped",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/checkout/order/ship.html", context)

    @admin.action(description=gettext_lazy("Mark selected orders delivered"))
    def mark_delivered(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._each(
            request,
            queryset,
            lambda order: fulfilment.order_mark_delivered(order=order),
            _("%(count)s orders delivered."),
        )

    @admin.display(description=gettext_lazy("Total"), ordering="total_minor")
    def total_display(self, order: Order) -> str:
        return Money(order.total_minor, order.currency).format()

    @admin.action(description=gettext_lazy("Export selected orders as CSV"))
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[Order]
    ) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="orders.csv"'
        rows = queryset.select_related(
            "show", "payment", "shipping_address"
        ).prefetch_related("lines")
        brand_orders.write_csv(rows.order_by("id"), response)
        return response

    @admin.action(description=gettext_lazy("Refund selected orders in full"))
    def refund_in_full(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        for order in queryset:
            try:
                services.order_refund(order=order, by=request.user, reason="admin")  # type: ignore[arg-type]
            except CheckoutError as exc:
                self.message_user(
                    request, f"{order.public_id}: {exc.message}", messages.ERROR
                )
            else:
                self.message_user(
                    request, _("Refunded %(order)s") % {"order": order.public_id}
                )

    @admin.action(description=gettext_lazy("Return the units to stock"))
    def restock(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """For sold orders whose units came back (or never left): once each."""
        for order in queryset:
            try:
                units = services.order_restock(order=order)
            except CheckoutError as exc:
                self.message_user(
                    request, f"{order.public_id}: {exc.message}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    _("%(units)s units of %(order)s returned to stock")
                    % {"units": units, "order": order.public_id},
                )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="checkout_order_refund",
            ),
            path(
                "<path:object_id>/ship/",
                self.admin_site.admin_view(self.ship_view),
                name="checkout_order_ship",
            ),
        ]
        return own + super().get_urls()

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A full or partial refund of one order."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        order = get_object_or_404(Order.objects.select_related("payment"), pk=object_id)
        payment = getattr(order, "payment", None)
        refundable = (payment.captured_minor - payment.refunded_minor) if payment else 0
        digits = get_currency_precision(order.currency)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                minor = Decimal(form.cleaned_data["amount"]).scaleb(digits)
                if minor != minor.to_integral_value():
                    raise InvalidOperation
                services.order_refund(
                    order=order,
                    amount_minor=int(minor),
                    reason=form.cleaned_data["reason"],
                    by=request.user,  # type: ignore[arg-type]
                    restock=form.cleaned_data["restock"],
                )
            except InvalidOperation:
                form.add_error(
                    "amount", _("Too many decimal places for %s.") % order.currency
                )
            except CheckoutError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("Refund sent."))
                return HttpResponseRedirect(
                    reverse("admin:checkout_order_change", args=[order.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund order %s") % order.public_id,
            "order": order,
            "form": form,
            "refundable": Money(refundable, order.currency).format(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/checkout/order/refund.html", context)

    def ship_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ship one order with its carrier and tracking."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        order = get_object_or_404(Order, pk=object_id)
        form = ShipForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                fulfilment.order_ship(order=order, **form.cleaned_data)
            except CheckoutError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("Shipped; the buyer gets an email."))
                return HttpResponseRedirect(
                    reverse("admin:checkout_order_change", args=[order.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ship order %s") % order.reference,
            "orders": [order],
            "form": form,
            "action": "",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/checkout/order/ship.html", context)


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "provider_refund_id",
        "payment",
        "amount_minor",
        "currency",
        "automatic",
        "created_at",
    ]
    readonly_fields = [f.name for f in Refund._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["received_at", "type", "provider_event_id", "status", "order"]
    list_filter = ["type", "status"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FlashSale)
class FlashSaleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "show",
        "product",
        "price_minor",
        "currency",
        "per_buyer_limit",
        "starts_at",
        "ends_at",
        "closed_at",
    ]
    readonly_fields = [f.name for f in FlashSale._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ShippingZone)
class ShippingZoneAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Where each brand ships and for how much (saved through the service,
    which refuses a country in two zones of one currency)."""

    list_display = ["brand", "name", "countries", "rate_minor", "free_from_minor"]
    list_filter = ["brand"]

    def save_model(
        self, request: HttpRequest, obj: ShippingZone, form: Any, change: bool
    ) -> None:
        try:
            saved = delivery.shipping_zone_set(
                brand=obj.brand,
                name=obj.name,
                countries=obj.countries.split(","),
                rate_minor=obj.rate_minor,
                currency=obj.currency,
                free_from_minor=obj.free_from_minor,
            )
        except CheckoutError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["brand", "country", "rate_bp"]
    list_filter = ["brand"]

    def save_model(
        self, request: HttpRequest, obj: TaxRate, form: Any, change: bool
    ) -> None:
        try:
            saved = delivery.tax_rate_set(
                brand=obj.brand, country=obj.country, rate_bp=obj.rate_bp
            )
        except CheckoutError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk


class AddressInline(admin.StackedInline):  # type: ignore[type-arg]
    model = OrderAddress
    extra = 0
    can_delete = False
    readonly_fields = [
        "name", "line1", "line2", "postal_code", "city", "area", "country"
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


OrderAdmin.inlines = [AddressInline, *OrderAdmin.inlines]
