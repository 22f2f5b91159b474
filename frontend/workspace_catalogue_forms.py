"""The catalogue pages' forms (frontend/workspace_catalogue.py): shape only,
and prices read as people write them. Who may, SKUs in use and stock that
moved meanwhile are the services' (shows/services/catalog.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import NumberFormatError, get_currency_precision, parse_decimal
from django import forms
from django.utils.translation import gettext_lazy as _

from checkout.money import babel_locale
from frontend.forms import TEXT_ERRORS
from shows import images
from shows.services.catalog import ISO_CURRENCIES, MAX_STOCK, price_parse

NUMBER_ERRORS = {
    **TEXT_ERRORS,
    "invalid": _("Enter a whole number."),
    "min_value": _("Enter 0 or more."),
    "max_value": _("Enter %(limit_value)s or less."),
}
IMAGE_TYPES = "image/jpeg,image/png,image/webp"
CSV_MAX_BYTES = 1024 * 1024


def price_major(minor: int, currency: str) -> str:
    """Minor units as the major-unit figure a form shows, with exactly the
    currency's decimals: 8900 EUR is ``89.00``, 8900 JPY is ``8900``."""
    digits = get_currency_precision(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def _decimal_text(raw: str) -> str:
    """A price as the member wrote it, in their language (``89,00`` in German,
    ``1,000.50`` in English) or with a plain point, as Decimal's text."""
    raw = raw.strip()
    try:
        return str(parse_decimal(raw, locale=babel_locale(), strict=True))
    except NumberFormatError:
        return raw


class ProductForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, error_messages=TEXT_ERRORS)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages=TEXT_ERRORS,
    )
    requires_shipping = forms.BooleanField(
        label=_("Posted to the buyer"),
        required=False,
        initial=True,
        help_text=_("Untick for what is not posted: a download, a ticket, pickup."),
    )
    image = forms.FileField(
        label=_("Image"),
        required=False,
        widget=forms.FileInput(attrs={"accept": IMAGE_TYPES}),
        error_messages={"invalid": _("Upload a JPEG, PNG or WebP image.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["image"].help_text = _("JPEG, PNG or WebP, up to %(mb)s MB.") % {
            "mb": images.MAX_IMAGE_BYTES // (1024 * 1024)
        }


class VariantForm(forms.Form):
    name = forms.CharField(
        label=_("Variant"),
        required=False,
        max_length=120,
        help_text=_("Size, colour… leave empty if there is one kind only."),
        error_messages=TEXT_ERRORS,
    )
    sku = forms.CharField(label=_("SKU"), max_length=64, error_messages=TEXT_ERRORS)
    price = forms.CharField(
        label=_("Price"),
        max_length=32,
        help_text=_("In the currency's units, e.g. 89.00 (euros) or 8900 (yen)."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages=TEXT_ERRORS,
    )
    currency = forms.CharField(
        label=_("Currency"),
        min_length=3,
        max_length=3,
        initial="EUR",
        help_text=_("Three letters: EUR, GBP, JPY…"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "ws-currency"}),
        error_messages=TEXT_ERRORS,
    )
    stock = forms.IntegerField(
        label=_("In stock"),
        min_value=0,
        max_value=MAX_STOCK,
        initial=0,
        error_messages=NUMBER_ERRORS,
    )

    def clean_currency(self) -> str:
        code = str(self.cleaned_data["currency"]).strip().upper()
        if code not in ISO_CURRENCIES:
            raise forms.ValidationError(
                _("“%(code)s” is not a currency code."), params={"code": code}
            )
        return code

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        currency = cleaned.get("currency")
        raw = cleaned.get("price")
        if currency and raw is not None:
            try:
                cleaned["price_minor"] = price_parse(_decimal_text(raw), currency)
            except ValueError as exc:
                self.add_error("price", str(exc))
        return cleaned


class VariantEditForm(VariantForm):
    # The stock the member was shown: the service applies the difference to
    # what is in stock by then.
    stock_seen = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    @classmethod
    def for_variant(cls, variant: Any, *, prefix: str) -> VariantEditForm:
        return cls(
            prefix=prefix,
            initial={
                "name": variant.name,
                "sku": variant.sku,
                "price": price_major(variant.price_minor, variant.currency),
                "currency": variant.currency,
                "stock": variant.stock_available,
                "stock_seen": variant.stock_available,
            },
        )


class CatalogUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Catalogue file (CSV)"),
        help_text=_(
            "UTF-8 with a header row: product_slug, product_name, sku, "
            "variant_name, price, currency, stock; optional description, "
            "image_url. Prices in the currency's units (89.00)."
        ),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={
            "required": _("Choose a CSV file."),
            "empty": _("The file is empty."),
        },
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > CSV_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(kb)s KB."),
                params={"kb": CSV_MAX_BYTES // 1024},
            )
        try:
            return bytes(upload.read()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("Save the file as UTF-8 text.")) from exc
