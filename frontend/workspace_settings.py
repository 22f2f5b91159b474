"""The brand's settings and its audit in the workspace (owners only):
``/brand/<slug>/settings/`` and ``/brand/<slug>/audit/``. The rules are
``shows.services.brand_settings``'s; checkout's delivery rules apply to the
shipping zones and tax rates."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from checkout.exceptions import CheckoutError
from checkout.models import ShippingZone, TaxRate
from checkout.services import brand_delivery
from frontend import workspace
from frontend.workspace import workspace_page
from shows.exceptions import ImageInvalid
from shows.models import BlockedWord
from shows.services import audit, brand_settings, catalog
from shows.services.brand_shows import ShowInputError
from shows.services.workspace import Capability, Seat, require


def _context(seat: Seat, current: str, **extra: Any) -> dict[str, Any]:
    return workspace._context(seat, current, **extra)


def _percent_bp(raw: str) -> int:
    """A tax rate typed as a percentage ("19" or "8,1") in basis points."""
    minor = catalog.price_parse(raw.replace(",", ".").replace("%", ""), "EUR")
    return minor  # two decimals of a percent are basis points


@workspace_page
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest, seat: Seat) -> HttpResponse:
    require(seat.user, seat.brand, Capability.SETTINGS_MANAGE)
    brand = seat.brand
    errors: dict[str, str] = {}
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = request.POST.dict()
        action = request.POST.get("action", "brand")
        try:
            if action == "brand":
                brand_settings.brand_settings_save(
                    user=seat.user,
                    brand=brand,
                    data=brand_settings.BrandInput(
                        name=request.POST.get("name", ""),
                        description=request.POST.get("description", ""),
                        time_zone=request.POST.get("time_zone", ""),
                        prices_include_tax=request.POST.get("prices_include_tax")
                        == "on",
                        blocked_words=request.POST.get(
                            "blocked_words", ""
                        ).splitlines(),
                        accent_colour=request.POST.get("accent_colour", ""),
                    ),
                )
            elif action == "embed":
                brand_settings.brand_embed_origins_set(
                    user=seat.user,
                    brand=brand,
                    text=request.POST.get("embed_origins", ""),
                )
            elif action == "zone":
                free = request.POST.get("free_from", "").strip()
                currency = request.POST.get("currency", "EUR").strip().upper()[:3]
                brand_delivery.shipping_zone_save(
                    user=seat.user,
                    brand=brand,
                    name=request.POST.get("zone_name", ""),
                    countries=request.POST.get("countries", "")
                    .replace(" ", ",")
                    .split(","),
                    rate_minor=catalog.price_parse(
                        request.POST.get("rate", ""), currency
                    ),
                    currency=currency,
                    free_from_minor=catalog.price_parse(free, currency)
                    if free
                    else None,
                )
            elif action == "logo":
                upload = request.FILES.get("logo")
                if upload is None:
                    errors["logo"] = _("Choose an image file.")
                else:
                    brand_settings.brand_logo_set(
                        user=seat.user,
                        brand=brand,
                        upload=catalog.ImageUpload(file=upload, size=upload.size),
                    )
            elif action == "tax":
                brand_delivery.tax_rate_save(
                    user=seat.user,
                    brand=brand,
                    country=request.POST.get("country", "").strip().upper(),
                    rate_bp=_percent_bp(request.POST.get("percent", "")),
                )
        except ShowInputError as error:
            errors.update(error.fields)
        except ImageInvalid as error:
            errors["logo"] = error.message
        except (ValueError, CheckoutError) as error:
            errors[action] = str(getattr(error, "message", error))
        if not errors:
            messages.success(request, _("Saved."))
            return redirect("workspace_settings", slug=brand.slug)
        brand.refresh_from_db()
    return render(
        request,
        "frontend/workspace/settings.html",
        _context(
            seat,
            "settings",
            zones=brand_settings.time_zones(),
            logo=brand.logo_url,
            embed_origins="\n".join(brand.embed_origins),
            # The loader's public address, as the order emails' links.
            embed_script=str(settings.SHOWFLOOR_PUBLIC_URL).rstrip("/")
            + reverse("embed_loader"),
            blocked="\n".join(
                BlockedWord.objects.filter(brand=brand).values_list("word", flat=True)
            ),
            shipping=ShippingZone.objects.filter(brand=brand).order_by("name"),
            taxes=[
                {"country": rate.country, "percent": f"{rate.rate_bp / 100:g} %"}
                for rate in TaxRate.objects.filter(brand=brand).order_by("country")
            ],
            errors=errors,
            form=form,
        ),
        status=400 if errors else 200,
    )


@workspace_page
@require_GET
def audit_page(request: HttpRequest, seat: Seat) -> HttpResponse:
    require(seat.user, seat.brand, Capability.AUDIT_VIEW)
    entries = audit.audit_list(brand=seat.brand, limit=200)
    return render(
        request,
        "frontend/workspace/audit.html",
        _context(seat, "audit", entries=entries),
    )
