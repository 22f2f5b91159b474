"""The catalogue: brands, memberships, products, variants and CSV import."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from realtime import events
from shows.exceptions import CatalogImportError, InvalidInput, SlugTaken
from shows.models import Brand, LineupItem, Membership, Product, Show, User, Variant

ISO_CURRENCIES = frozenset(list_currencies())


def brand_create(*, name: str, slug: str, owner: User | None = None) -> Brand:
    """Create a brand and make ``owner`` its owner. Raises ``SlugTaken``."""
    try:
        with transaction.atomic():
            brand = Brand.objects.create(name=name.strip(), slug=slug)
            if owner is not None:
                Membership.objects.create(
                    brand=brand, user=owner, role=Membership.Role.OWNER
                )
    except IntegrityError as exc:
        raise SlugTaken(
            _("A brand with the address “%(slug)s” already exists.") % {"slug": slug}
        ) from exc
    return brand


def membership_set(*, brand: Brand, user: User, role: str) -> Membership:
    """Give ``user`` exactly one role at ``brand`` (replacing any earlier one)."""
    if role not in Membership.Role.values:
        raise InvalidInput(_("Unknown role “%(role)s”.") % {"role": role})
    membership, _created = Membership.objects.update_or_create(
        brand=brand, user=user, defaults={"role": role}
    )
    return membership


def product_create(
    *,
    brand: Brand,
    name: str,
    slug: str = "",
    description: str = "",
    image_url: str = "",
) -> Product:
    """Create a product of ``brand``. Raises ``SlugTaken``."""
    slug = slug or slugify(name)
    try:
        with transaction.atomic():
            return Product.objects.create(
                brand=brand,
                name=name,
                slug=slug,
                description=description,
                image_url=image_url,
            )
    except IntegrityError as exc:
        raise SlugTaken(f"{brand} already has a product “{slug}”.") from exc


def _validate_money(price_minor: int, currency: str) -> None:
    if price_minor < 0:
        raise InvalidInput("A price cannot be negative.")
    if currency not in ISO_CURRENCIES:
        raise InvalidInput(f"“{currency}” is not an ISO 4217 currency code.")


def variant_create(
    *,
    product: Product,
    sku: str,
    price_minor: int,
    currency: str,
    stock_available: int = 0,
    name: str = "",
) -> Variant:
    """Add a variant. Raises ``InvalidInput`` (negative price or stock, unknown
    currency) or ``SlugTaken`` for a SKU already in use."""
    _validate_money(price_minor, currency)
    if stock_available < 0:
        raise InvalidInput(_("Stock cannot be negative."))
    try:
        with transaction.atomic():
            return Variant.objects.create(
                product=product,
                sku=sku,
                name=name,
                price_minor=price_minor,
                currency=currency,
                stock_available=stock_available,
            )
    except IntegrityError as exc:
        raise SlugTaken(f"The SKU “{sku}” is already in use.") from exc


VARIANT_EDITABLE = ("sku", "name", "price_minor", "currency", "stock_available")


def variant_update(*, variant: Variant, fields: Iterable[str]) -> Variant:
    """Save only the edited ``fields`` of ``variant``: an edit of its name or
    price never writes back a stock figure read before the sales that happened
    while the form was open. A new stock figure reaches the rooms of the live
    shows that carry the product (``stock.changed``, after commit). Raises
    ``InvalidInput`` (negative price or stock, unknown currency) or
    ``SlugTaken`` for a SKU already in use."""
    edited = [f for f in VARIANT_EDITABLE if f in set(fields)]
    if not edited:
        return variant
    _validate_money(variant.price_minor, variant.currency)
    if variant.stock_available < 0:
        raise InvalidInput(_("Stock cannot be negative."))
    try:
        with transaction.atomic():
            variant.save(update_fields=edited)
            if "stock_available" in edited:
                _announce_stock([variant])
    except IntegrityError as exc:
        raise SlugTaken(f"The SKU “{variant.sku}” is already in use.") from exc
    return variant


def _announce_stock(variants: list[Variant]) -> None:
    """Tell the rooms of live shows carrying these variants' products their new
    stock, after commit (checkout announces the stock it moves itself)."""
    by_product: dict[int, list[Variant]] = {}
    for variant in variants:
        by_product.setdefault(variant.product_id, []).append(variant)
    live = LineupItem.objects.filter(
        product_id__in=by_product, show__status=Show.Status.LIVE
    ).values_list("show_id", "product_id")
    for show_id, product_id in live:
        for variant in by_product[product_id]:
            events.broadcast(
                show_id,
                {
                    "type": events.STOCK_CHANGED,
                    "variant_id": variant.pk,
                    "product_id": product_id,
                    "stock_available": variant.stock_available,
                },
            )


# --- Catalogue import ------------------------------------------------------

CATALOG_COLUMNS = (
    "product_slug",
    "product_name",
    "sku",
    "variant_name",
    "price",
    "currency",
    "stock",
)
CATALOG_OPTIONAL_COLUMNS = ("description", "image_url")
# Bounds that keep every valid row inside the database's column types.
MAX_PRICE_MINOR = 10**15
MAX_STOCK = 1_000_000_000


@dataclass(frozen=True)
class CatalogRow:
    line: int
    product_slug: str
    product_name: str
    description: str
    image_url: str
    sku: str
    variant_name: str
    price_minor: int
    currency: str
    stock: int


@dataclass(frozen=True)
class CatalogImportResult:
    products_created: int
    products_updated: int
    variants_created: int
    variants_updated: int


def _parse_price(raw: str, currency: str) -> int:
    try:
        amount = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise ValueError(_("price “%(raw)s” is not a number") % {"raw": raw}) from exc
    if not amount.is_finite():
        raise ValueError(_("price “%(raw)s” is not a number") % {"raw": raw})
    if amount < 0:
        raise ValueError(_("price cannot be negative"))
    digits = get_currency_precision(currency)
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise ValueError(
            _("%(currency)s prices have at most %(digits)s decimal places")
            % {"currency": currency, "digits": digits}
        )
    if minor > MAX_PRICE_MINOR:
        raise ValueError(_("price “%(raw)s” is too large") % {"raw": raw})
    return int(minor)


def _parse_catalog_row(line: int, raw: dict[str, str]) -> CatalogRow:
    def field(name: str) -> str:
        return (raw.get(name) or "").strip()

    problems: list[str] = []
    slug = field("product_slug")
    if not slug or slugify(slug) != slug:
        problems.append(_("product_slug must be lowercase letters, digits and dashes"))
    name = field("product_name")
    if not name:
        problems.append(_("product_name is required"))
    elif len(name) > 200:
        problems.append(_("product_name is longer than 200 characters"))
    if len(slug) > 80:
        problems.append(_("product_slug is longer than 80 characters"))
    sku = field("sku")
    if not sku or len(sku) > 64:
        problems.append(_("sku needs 1 to 64 characters"))
    if len(field("variant_name")) > 120:
        problems.append(_("variant_name is longer than 120 characters"))
    currency = field("currency").upper()
    price_minor = 0
    if currency not in ISO_CURRENCIES:
        problems.append(
            _("currency “%(code)s” is not an ISO 4217 code")
            % {"code": field("currency")}
        )
    else:
        try:
            price_minor = _parse_price(field("price"), currency)
        except ValueError as exc:
            problems.append(str(exc))
    stock = 0
    try:
        stock = int(field("stock"))
        if stock < 0:
            problems.append(_("stock cannot be negative"))
        elif stock > MAX_STOCK:
            problems.append(_("stock is larger than %(max)s") % {"max": MAX_STOCK})
    except ValueError:
        problems.append(
            _("stock “%(stock)s” is not a whole number") % {"stock": field("stock")}
        )
    image_url = field("image_url")
    if len(image_url) > 200:
        problems.append(_("image_url is longer than 200 characters"))
    elif image_url:
        try:
            URLValidator(schemes=["http", "https"])(image_url)
        except ValidationError:
            problems.append(_("image_url is not an http(s) address"))
    if problems:
        raise ValueError("; ".join(problems))
    return CatalogRow(
        line=line,
        product_slug=slug,
        product_name=name,
        description=field("description"),
        image_url=image_url,
        sku=sku,
        variant_name=field("variant_name"),
        price_minor=price_minor,
        currency=currency,
        stock=stock,
    )


class _NumberedLines:
    """Lines of a text, counting how many the CSV reader has consumed, so a
    record that spans lines (a quoted newline) is reported at its first line."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text))
        self.consumed = 0

    def __iter__(self) -> _NumberedLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.consumed += 1
        return line


def catalog_parse(text: str) -> list[CatalogRow]:
    """Parse and validate every row of a catalogue CSV (UTF-8, a header row,
    an optional byte-order mark, quoted fields as in RFC 4180).

    Raises ``CatalogImportError`` listing each invalid row by its line number.
    """
    lines = _NumberedLines(text.lstrip("\ufeff"))
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CatalogImportError([(1, _("the file is empty"))]) from None
    except csv.Error as exc:
        raise CatalogImportError(
            [(1, _("unreadable header: %(error)s") % {"error": exc})]
        ) from exc
    missing = [c for c in CATALOG_COLUMNS if c not in header]
    if missing:
        raise CatalogImportError(
            [(1, _("missing columns: %(columns)s") % {"columns": ", ".join(missing)})]
        )
    rows: list[CatalogRow] = []
    errors: list[tuple[int, str]] = []
    seen_skus: dict[str, int] = {}
    seen_products: dict[str, tuple[str, int]] = {}
    while True:
        line = lines.consumed + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((line, _("unreadable row: %(error)s") % {"error": exc}))
            break
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            errors.append((line, _("more fields than the header has")))
            continue
        raw = dict(zip(header, values, strict=False))
        try:
            row = _parse_catalog_row(line, raw)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if row.sku in seen_skus:
            errors.append(
                (
                    line,
                    _("sku “%(sku)s” repeats line %(line)s")
                    % {"sku": row.sku, "line": seen_skus[row.sku]},
                )
            )
            continue
        earlier = seen_products.get(row.product_slug)
        if earlier is not None and earlier[0] != row.product_name:
            errors.append(
                (
                    line,
                    _("product “%(slug)s” is named “%(name)s” on line %(line)s")
                    % {
                        "slug": row.product_slug,
                        "name": earlier[0],
                        "line": earlier[1],
                    },
                )
            )
            continue
        seen_skus[row.sku] = line
        seen_products.setdefault(row.product_slug, (row.product_name, line))
        rows.append(row)
    if not rows and not errors:
        errors.append((1, _("the file has no product rows")))
    if errors:
        raise CatalogImportError(errors)
    return rows


def catalog_import(*, brand: Brand, text: str) -> CatalogImportResult:
    """Create or update ``brand``'s products and variants from a catalogue CSV.

    All or nothing: every row is validated first, and a single invalid row (or a
    SKU that belongs to another brand) raises ``CatalogImportError`` with line
    numbers and leaves the catalogue untouched.
    """
    rows = catalog_parse(text)
    foreign = dict(
        Variant.objects.filter(sku__in=[r.sku for r in rows])
        .exclude(product__brand=brand)
        .values_list("sku", "product__brand__name")
    )
    if foreign:
        raise CatalogImportError(
            [
                (r.line, f"sku “{r.sku}” belongs to {foreign[r.sku]}")
                for r in rows
                if r.sku in foreign
            ]
        )
    counts = {"pc": 0, "pu": 0, "vc": 0, "vu": 0}
    restocked: list[Variant] = []
    with transaction.atomic():
        products: dict[str, Product] = {}
        for row in rows:
            product = products.get(row.product_slug)
            if product is None:
                product, created = Product.objects.update_or_create(
                    brand=brand,
                    slug=row.product_slug,
                    defaults={
                        "name": row.product_name,
                        "description": row.description,
                        "image_url": row.image_url,
                    },
                )
                products[row.product_slug] = product
                counts["pc" if created else "pu"] += 1
            variant, created = Variant.objects.update_or_create(
                sku=row.sku,
                defaults={
                    "product": product,
                    "name": row.variant_name,
                    "price_minor": row.price_minor,
                    "currency": row.currency,
                    "stock_available": row.stock,
                },
            )
            counts["vc" if created else "vu"] += 1
            if not created:
                restocked.append(variant)
        _announce_stock(restocked)
    return CatalogImportResult(
        products_created=counts["pc"],
        products_updated=counts["pu"],
        variants_created=counts["vc"],
        variants_updated=counts["vu"],
    )
