"""The catalogue: brands, memberships, products, variants and CSV import.

The services that take an ``actor`` are the brand workspace's: they refuse
anybody whose role lacks ``Capability.CATALOG_MANAGE`` (``require``), and every
price and stock change they make is written to the brand's audit. Without an
actor the call is the platform's own (the admin, the demo, the import
command), whose changes are audited with no actor."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from babel.numbers import get_currency_precision, list_currencies
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.text import slugify
from django.utils.translation import gettext as _

from realtime import events
from shows import images
from shows.exceptions import (
    CatalogAddressTaken,
    CatalogImportError,
    CatalogInputError,
    InvalidInput,
    NotFound,
    SlugTaken,
    StockMoved,
)
from shows.models import Brand, LineupItem, Membership, Product, Show, User, Variant
from shows.services.audit import audit_record
from shows.services.workspace import Capability, require

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


# The audit's actions for the catalogue (shows/services/audit.py).
AUDIT_VARIANT_CREATE = "variant.create"
AUDIT_VARIANT_PRICE = "variant.price"
AUDIT_VARIANT_STOCK = "variant.stock"
AUDIT_CATALOG_IMPORT = "catalog.import"


@dataclass(frozen=True)
class ImageUpload:
    """An uploaded file as a service takes it: its content and its size in
    bytes (the name the browser sent is not used)."""

    file: IO[bytes]
    size: int | None


def _allowed(actor: User | None, brand: Brand) -> None:
    if actor is not None:
        require(actor, brand, Capability.CATALOG_MANAGE)


def _image_store(product: Product, upload: ImageUpload) -> str:
    """Check ``upload``, store it as ``product``'s image with its thumbnails
    and return the name of the image it replaces ("" if none). The row is
    not saved here. Raises ``ImageInvalid`` before anything is stored."""
    return images.image_store(
        product.image,
        upload.file,
        size=upload.size,
        folder=str(product.brand_id),
        kinds=("card",),
    )


def _image_forget(product: Product, name: str) -> None:
    """Delete the stored image ``name`` (and its thumbnails) of ``product``."""
    images.image_forget(product.image, name)


def product_create(
    *,
    brand: Brand,
    name: str,
    slug: str = "",
    description: str = "",
    image_url: str = "",
    requires_shipping: bool = True,
    image: ImageUpload | None = None,
    actor: User | None = None,
) -> Product:
    """Create a product of ``brand``, with an uploaded ``image`` (checked,
    stored and thumbnailed first) when given. Raises ``NotAllowed`` for an
    actor who may not manage the catalogue, ``ImageInvalid``, or
    ``SlugTaken`` (field ``name``); then nothing is kept, the image neither."""
    _allowed(actor, brand)
    slug = slug or slugify(name) or "product"
    product = Product(
        brand=brand,
        name=name.strip(),
        slug=slug,
        description=description,
        image_url=image_url,
        requires_shipping=requires_shipping,
    )
    if image is not None:
        _image_store(product, image)
    try:
        with transaction.atomic():
            product.save(force_insert=True)
    except IntegrityError as exc:
        _image_forget(product, product.image.name or "")
        raise CatalogAddressTaken(
            _("%(brand)s already has a product at the address “%(slug)s”.")
            % {"brand": brand, "slug": slug},
            field="name",
        ) from exc
    return product


def product_update(
    *,
    actor: User | None,
    product: Product,
    name: str,
    description: str,
    requires_shipping: bool,
    image: ImageUpload | None = None,
) -> Product:
    """Change a product's name, description and whether it is posted, and
    replace its image when ``image`` is given (the old one and its thumbnails
    are deleted once the change is committed). Its address (slug) stays.
    Raises ``NotAllowed`` or ``ImageInvalid``; then nothing changed."""
    _allowed(actor, product.brand)
    product.name = name.strip()
    product.description = description
    product.requires_shipping = requires_shipping
    fields = ["name", "description", "requires_shipping"]
    replaced = ""
    if image is not None:
        replaced = _image_store(product, image)
        fields.append("image")
    try:
        with transaction.atomic():
            product.save(update_fields=fields)
            if replaced:
                transaction.on_commit(lambda: _image_forget(product, replaced))
    except Exception:
        if image is not None:
            _image_forget(product, product.image.name or "")
        raise
    return product


def product_list(*, actor: User | None, brand: Brand) -> list[Product]:
    """The brand's products by name, each with its variants. Raises
    ``NotAllowed`` for an actor who may not manage the catalogue."""
    _allowed(actor, brand)
    return list(
        Product.objects.filter(brand=brand)
        .prefetch_related("variants")
        .order_by("name", "pk")
    )


def product_get(*, actor: User | None, brand: Brand, product_id: int) -> Product:
    """One of the brand's products with its variants; ``NotFound`` otherwise,
    ``NotAllowed`` for an actor who may not manage the catalogue."""
    _allowed(actor, brand)
    product = (
        Product.objects.filter(brand=brand, pk=product_id)
        .prefetch_related("variants")
        .first()
    )
    if product is None:
        raise NotFound(_("This product does not exist."))
    return product


def variant_get(*, actor: User | None, brand: Brand, variant_id: int) -> Variant:
    """One of the brand's variants with its product; ``NotFound`` otherwise,
    ``NotAllowed`` for an actor who may not manage the catalogue."""
    _allowed(actor, brand)
    variant = (
        Variant.objects.select_related("product__brand")
        .filter(product__brand=brand, pk=variant_id)
        .first()
    )
    if variant is None:
        raise NotFound(_("This variant does not exist."))
    return variant


def _validate_money(price_minor: int, currency: str) -> None:
    if currency not in ISO_CURRENCIES:
        raise CatalogInputError(
            _("“%(code)s” is not an ISO 4217 currency code.") % {"code": currency},
            field="currency",
        )
    if price_minor < 0:
        raise CatalogInputError(_("A price cannot be negative."), field="price")
    if price_minor > MAX_PRICE_MINOR:
        raise CatalogInputError(_("This price is too large."), field="price")


def _sku_taken(sku: str) -> CatalogAddressTaken:
    return CatalogAddressTaken(
        _("The SKU “%(sku)s” is already in use.") % {"sku": sku}, field="sku"
    )


def variant_create(
    *,
    product: Product,
    sku: str,
    price_minor: int,
    currency: str,
    stock_available: int = 0,
    name: str = "",
    actor: User | None = None,
) -> Variant:
    """Add a variant; its price and stock go to the brand's audit. Raises
    ``NotAllowed`` for an actor who may not manage the catalogue, or
    ``CatalogInputError`` naming the field: a negative or too large price or
    stock, an unknown currency, a SKU already in use."""
    _allowed(actor, product.brand)
    _validate_money(price_minor, currency)
    _validate_stock(stock_available)
    try:
        with transaction.atomic():
            variant = Variant.objects.create(
                product=product,
                sku=sku,
                name=name,
                price_minor=price_minor,
                currency=currency,
                stock_available=stock_available,
            )
            audit_record(
                brand=product.brand,
                actor=actor,
                action=AUDIT_VARIANT_CREATE,
                target=sku,
                after={
                    "price_minor": price_minor,
                    "currency": currency,
                    "stock_available": stock_available,
                },
            )
    except IntegrityError as exc:
        raise _sku_taken(sku) from exc
    return variant


def _validate_stock(stock: int) -> None:
    if stock < 0:
        raise CatalogInputError(_("Stock cannot be negative."), field="stock")
    if stock > MAX_STOCK:
        raise CatalogInputError(
            _("Stock cannot be larger than %(max)s.") % {"max": MAX_STOCK},
            field="stock",
        )


VARIANT_EDITABLE = ("sku", "name", "price_minor", "currency", "stock_available")


def variant_update(
    *, variant: Variant, fields: Iterable[str], actor: User | None = None
) -> Variant:
    """Save only the edited ``fields`` of ``variant``: an edit of its name or
    price never writes back a stock figure read before the sales that happened
    while the form was open. A changed price or stock goes to the brand's
    audit with its value before; a new stock figure reaches the rooms of the
    live shows that carry the product (``stock.changed``, after commit).
    Raises ``NotAllowed`` for an actor who may not manage the catalogue, or
    ``CatalogInputError`` (negative price or stock, unknown currency, a SKU
    already in use)."""
    edited = [f for f in VARIANT_EDITABLE if f in set(fields)]
    if not edited:
        return variant
    brand = variant.product.brand
    _allowed(actor, brand)
    _validate_money(variant.price_minor, variant.currency)
    _validate_stock(variant.stock_available)
    try:
        with transaction.atomic():
            before: Mapping[str, Any] = (
                Variant.objects.filter(pk=variant.pk)
                .values("price_minor", "currency", "stock_available")
                .first()
            ) or {}
            variant.save(update_fields=edited)
            _audit_changes(brand=brand, actor=actor, variant=variant, before=before)
            if "stock_available" in edited:
                _announce_stock([variant])
    except IntegrityError as exc:
        raise _sku_taken(variant.sku) from exc
    return variant


def _audit_changes(
    *,
    brand: Brand,
    actor: User | None,
    variant: Variant,
    before: Mapping[str, Any],
    **extra: Any,
) -> None:
    """Audit the price and the stock of ``variant`` where they differ from
    ``before`` (a row's values as read in the same transaction)."""
    price_before = (before.get("price_minor"), before.get("currency"))
    if before and price_before != (variant.price_minor, variant.currency):
        audit_record(
            brand=brand,
            actor=actor,
            action=AUDIT_VARIANT_PRICE,
            target=variant.sku,
            before={"price_minor": price_before[0], "currency": price_before[1]},
            after={"price_minor": variant.price_minor, "currency": variant.currency},
            **extra,
        )
    if before and before.get("stock_available") != variant.stock_available:
        audit_record(
            brand=brand,
            actor=actor,
            action=AUDIT_VARIANT_STOCK,
            target=variant.sku,
            before={"stock_available": before.get("stock_available")},
            after={"stock_available": variant.stock_available},
            **extra,
        )


def variant_stock_adjust(
    *, actor: User | None, variant: Variant, seen: int, new: int
) -> int:
    """Move the variant's stock by ``new - seen``: the figure the member
    entered minus the one their form showed. Units sold (or held) since the
    form was read stay sold: with 10 shown, 15 entered and 2 sold meanwhile,
    13 are left. One conditional ``F()`` update, so a concurrent sale is never
    overwritten. Returns the stock now; audits it with its value before and
    tells the live rooms (``stock.changed``, after commit).

    Raises ``NotAllowed``, or ``CatalogInputError`` / ``StockMoved`` (field
    ``stock``) when ``new`` is negative or the stock would go below zero;
    then nothing changed."""
    brand = variant.product.brand
    _allowed(actor, brand)
    _validate_stock(new)
    delta = new - seen
    if delta == 0:
        return variant.stock_available
    with transaction.atomic():
        moved = Variant.objects.filter(
            pk=variant.pk, stock_available__gte=-delta
        ).update(stock_available=F("stock_available") + delta)
        current = (
            Variant.objects.filter(pk=variant.pk)
            .values_list("stock_available", flat=True)
            .first()
        )
        if current is None:
            raise NotFound(_("This variant does not exist."))
        if not moved:
            raise StockMoved(
                _(
                    "Only %(current)s left in stock now (%(sold)s sold or held "
                    "since you opened the form), so taking away %(taken)s would "
                    "go below zero. Check the figure and save again."
                )
                % {"current": current, "sold": seen - current, "taken": -delta},
                field="stock",
            )
        if current > MAX_STOCK:
            raise CatalogInputError(
                _("Stock cannot be larger than %(max)s.") % {"max": MAX_STOCK},
                field="stock",
            )
        variant.stock_available = current
        _audit_changes(
            brand=brand,
            actor=actor,
            variant=variant,
            before={"stock_available": current - delta},
            seen=seen,
            entered=new,
        )
        _announce_stock([variant])
    return current


def variant_edit(
    *,
    actor: User | None,
    variant: Variant,
    name: str,
    sku: str,
    price_minor: int,
    currency: str,
    stock_seen: int,
    stock_new: int,
) -> Variant:
    """The workspace's edit of a variant: name, SKU and price as entered
    (``variant_update``), the stock by the difference the member made
    (``variant_stock_adjust``). All or nothing: a refused stock leaves the
    price as it was too. Raises what those two raise."""
    _allowed(actor, variant.product.brand)
    with transaction.atomic():
        variant.name = name
        variant.sku = sku
        variant.price_minor = price_minor
        variant.currency = currency
        variant_update(
            variant=variant,
            fields=["name", "sku", "price_minor", "currency"],
            actor=actor,
        )
        variant_stock_adjust(
            actor=actor, variant=variant, seen=stock_seen, new=stock_new
        )
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


def price_parse(raw: str, currency: str) -> int:
    """Minor units of a price written in major units (``89.00`` euros is
    8900, ``8900`` yen is 8900). Raises ``ValueError`` with a message for
    a non-number, a negative price, more decimals than ``currency`` has, or a
    price past ``MAX_PRICE_MINOR``."""
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
            price_minor = price_parse(field("price"), currency)
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


def _foreign_skus(*, brand: Brand, rows: list[CatalogRow]) -> None:
    """Raise ``CatalogImportError`` for the rows whose SKU is another brand's."""
    foreign = dict(
        Variant.objects.filter(sku__in=[r.sku for r in rows])
        .exclude(product__brand=brand)
        .values_list("sku", "product__brand__name")
    )
    if foreign:
        raise CatalogImportError(
            [
                (
                    r.line,
                    _("sku “%(sku)s” belongs to %(brand)s")
                    % {"sku": r.sku, "brand": foreign[r.sku]},
                )
                for r in rows
                if r.sku in foreign
            ]
        )


@dataclass(frozen=True)
class CatalogPreviewRow:
    """A row of the file beside the variant it would change (None: new)."""

    row: CatalogRow
    current: Variant | None


def catalog_preview(
    *, actor: User | None, brand: Brand, text: str
) -> list[CatalogPreviewRow]:
    """What importing ``text`` would do, writing nothing: each valid row with
    the brand's variant of that SKU as it is now. Raises ``NotAllowed``, or
    ``CatalogImportError`` with every invalid row by its line number."""
    _allowed(actor, brand)
    rows = catalog_parse(text)
    _foreign_skus(brand=brand, rows=rows)
    current = {
        v.sku: v
        for v in Variant.objects.filter(
            product__brand=brand, sku__in=[r.sku for r in rows]
        ).select_related("product")
    }
    return [CatalogPreviewRow(row=r, current=current.get(r.sku)) for r in rows]


def catalog_import(
    *,
    brand: Brand,
    text: str,
    actor: User | None = None,
    stock_seen: Mapping[str, int] | None = None,
) -> CatalogImportResult:
    """Create or update ``brand``'s products and variants from a catalogue CSV.

    All or nothing: every row is validated first, and a single invalid row (or a
    SKU that belongs to another brand) raises ``CatalogImportError`` with line
    numbers and leaves the catalogue untouched.

    ``stock_seen`` maps SKUs to the stock the member saw in the preview: for
    those the file's figure moves the stock by the difference, so units sold
    since the preview stay sold (a row whose stock would go below zero fails
    the import). Without it the file's figure is the stock. Changed prices and
    stock go to the brand's audit, with one entry for the import; changed
    stock reaches the live rooms after commit. Raises ``NotAllowed`` for an
    actor who may not manage the catalogue.
    """
    _allowed(actor, brand)
    rows = catalog_parse(text)
    _foreign_skus(brand=brand, rows=rows)
    seen = stock_seen or {}
    counts = {"pc": 0, "pu": 0, "vc": 0, "vu": 0}
    restocked: list[Variant] = []
    with transaction.atomic():
        before = {
            row["sku"]: row
            for row in Variant.objects.filter(
                product__brand=brand, sku__in=[r.sku for r in rows]
            ).values("sku", "price_minor", "currency", "stock_available")
        }
        products: dict[str, Product] = {}
        moved: list[tuple[int, str]] = []
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
            defaults: dict[str, Any] = {
                "product": product,
                "name": row.variant_name,
                "price_minor": row.price_minor,
                "currency": row.currency,
            }
            by_difference = row.sku in before and row.sku in seen
            if not by_difference:
                defaults["stock_available"] = row.stock
            variant, created = Variant.objects.update_or_create(
                sku=row.sku, defaults=defaults
            )
            counts["vc" if created else "vu"] += 1
            if by_difference:
                delta = row.stock - seen[row.sku]
                if delta and not Variant.objects.filter(
                    pk=variant.pk, stock_available__gte=-delta
                ).update(stock_available=F("stock_available") + delta):
                    moved.append(
                        (
                            row.line,
                            _(
                                "sku “%(sku)s”: units were sold since the "
                                "preview and its stock would go below zero"
                            )
                            % {"sku": row.sku},
                        )
                    )
                    continue
                variant.refresh_from_db(fields=["stock_available"])
            if not created:
                restocked.append(variant)
                _audit_changes(
                    brand=brand,
                    actor=actor,
                    variant=variant,
                    before=before.get(row.sku, {}),
                    source="import",
                )
        if moved:
            transaction.set_rollback(True)
            raise CatalogImportError(moved)
        result = CatalogImportResult(
            products_created=counts["pc"],
            products_updated=counts["pu"],
            variants_created=counts["vc"],
            variants_updated=counts["vu"],
        )
        audit_record(
            brand=brand,
            actor=actor,
            action=AUDIT_CATALOG_IMPORT,
            products_created=result.products_created,
            products_updated=result.products_updated,
            variants_created=result.variants_created,
            variants_updated=result.variants_updated,
        )
        _announce_stock(restocked)
    return result
