"""The brand workspace's catalogue at ``/brand/<slug>/catalogue/``: products
with their images and variants, the CSV import with its preview, stock edits
by difference. For the roles with ``Capability.CATALOG_MANAGE`` (owners and
hosts); the services refuse everybody else, and so do these pages (403).

Every form posts to its own URL and, when the service refuses the input,
comes back with the message next to the field it concerns and a 4xx status;
a success redirects (post/redirect/get). The CSV import shows what it would
do first; the confirmation carries the file in a signed token (the member's,
the brand's, one hour) with the stock each row showed, so the import writes
exactly what was previewed and never overwrites units sold since.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from checkout.money import Money
from checkout.selectors import product_ratings
from frontend import workspace
from frontend.workspace import workspace_page
from frontend.workspace_catalogue_forms import (
    CatalogUploadForm,
    ProductForm,
    VariantEditForm,
    VariantForm,
)
from shows import images
from shows.exceptions import CatalogImportError, CatalogInputError, StockMoved
from shows.models import Product, Variant
from shows.services import catalog
from shows.services.workspace import Capability, NotAllowed, Seat

IMPORT_SALT = "showfloor.catalogue.import"
IMPORT_MAX_AGE = 60 * 60
NEW_VARIANT = "new"


def _page(seat: Seat, **extra: Any) -> dict[str, Any]:
    """The workspace layout's context with the catalogue as the current
    section (added to the navigation where the layout does not list it)."""
    context = workspace._context(seat, "catalogue", **extra)
    if not any(item["key"] == "catalogue" for item in context["nav"]):
        context["nav"].append(
            {
                "key": "catalogue",
                "label": _("Catalogue"),
                "url": "workspace_catalogue",
                "current": True,
            }
        )
    return context


def _manager(seat: Seat) -> None:
    if not seat.can(Capability.CATALOG_MANAGE):
        raise NotAllowed()


def _upload(form: ProductForm) -> catalog.ImageUpload | None:
    file = form.cleaned_data.get("image")
    return catalog.ImageUpload(file=file, size=file.size) if file else None


def _variant_row(variant: Variant) -> dict[str, Any]:
    return {
        "variant": variant,
        "price": Money(variant.price_minor, variant.currency).format(),
    }


def _product_row(product: Product) -> dict[str, Any]:
    return {
        "product": product,
        "thumbnail": images.thumbnail_url(product.image) or product.image_url,
        "variants": [_variant_row(v) for v in product.variants.all()],
    }


@workspace_page
@require_http_methods(["GET"])
def catalogue(request: HttpRequest, seat: Seat) -> HttpResponse:
    """The brand's products with thumbnail, variants, price and stock."""
    _manager(seat)
    products = catalog.product_list(actor=seat.user, brand=seat.brand)
    return render(
        request,
        "frontend/workspace/catalogue.html",
        _page(seat, rows=[_product_row(p) for p in products]),
    )


@workspace_page
@require_http_methods(["GET", "POST"])
def product_new(request: HttpRequest, seat: Seat) -> HttpResponse:
    """A new product: name, description, posted or not, image."""
    _manager(seat)
    if request.method != "POST":
        return _product_new_page(request, seat, ProductForm())
    form = ProductForm(request.POST, request.FILES)
    if not form.is_valid():
        return _product_new_page(request, seat, form, status=400)
    try:
        product = catalog.product_create(
            actor=seat.user,
            brand=seat.brand,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            requires_shipping=form.cleaned_data["requires_shipping"],
            image=_upload(form),
        )
    except CatalogInputError as exc:
        form.add_error(exc.field, exc.message)
        return _product_new_page(request, seat, form, status=400)
    messages.success(
        request,
        _("%(name)s was added. Now give it its variants: price and stock.")
        % {"name": product.name},
    )
    return redirect("workspace_product", slug=seat.brand.slug, product_id=product.pk)


def _product_new_page(
    request: HttpRequest, seat: Seat, form: ProductForm, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "frontend/workspace/catalogue_product_new.html",
        _page(seat, form=form),
        status=status,
    )


def _product_page(
    request: HttpRequest,
    seat: Seat,
    product_id: int,
    *,
    product_form: ProductForm | None = None,
    variant_forms: dict[int, VariantEditForm] | None = None,
    new_variant_form: VariantForm | None = None,
    status: int = 200,
) -> HttpResponse:
    product = catalog.product_get(
        actor=seat.user, brand=seat.brand, product_id=product_id
    )
    variant_forms = variant_forms or {}
    rows = []
    for variant in product.variants.all():
        rows.append(
            {
                **_variant_row(variant),
                "form": variant_forms.get(variant.pk)
                or VariantEditForm.for_variant(variant, prefix=f"v{variant.pk}"),
            }
        )
    currency = rows[-1]["variant"].currency if rows else "EUR"
    context = _page(
        seat,
        product=product,
        thumbnail=images.thumbnail_url(product.image) or product.image_url,
        rating=product_ratings([product.pk]).get(product.pk),
        product_form=product_form
        or ProductForm(
            initial={
                "name": product.name,
                "description": product.description,
                "requires_shipping": product.requires_shipping,
            }
        ),
        variants=rows,
        new_variant_form=new_variant_form
        or VariantForm(prefix=NEW_VARIANT, initial={"currency": currency}),
    )
    return render(
        request, "frontend/workspace/catalogue_product.html", context, status=status
    )


@workspace_page
@require_http_methods(["GET", "POST"])
def product_page(request: HttpRequest, seat: Seat, product_id: int) -> HttpResponse:
    """A product with its variants; POST here changes the product."""
    _manager(seat)
    if request.method != "POST":
        return _product_page(request, seat, product_id)
    product = catalog.product_get(
        actor=seat.user, brand=seat.brand, product_id=product_id
    )
    form = ProductForm(request.POST, request.FILES)
    if not form.is_valid():
        return _product_page(request, seat, product_id, product_form=form, status=400)
    try:
        catalog.product_update(
            actor=seat.user,
            product=product,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            requires_shipping=form.cleaned_data["requires_shipping"],
            image=_upload(form),
        )
    except CatalogInputError as exc:
        form.add_error(exc.field, exc.message)
        return _product_page(request, seat, product_id, product_form=form, status=400)
    messages.success(request, _("%(name)s was saved.") % {"name": product.name})
    return redirect("workspace_product", slug=seat.brand.slug, product_id=product.pk)


@workspace_page
@require_POST
def variant_add(request: HttpRequest, seat: Seat, product_id: int) -> HttpResponse:
    """Add a variant to the product."""
    _manager(seat)
    product = catalog.product_get(
        actor=seat.user, brand=seat.brand, product_id=product_id
    )
    form = VariantForm(request.POST, prefix=NEW_VARIANT)
    if form.is_valid():
        try:
            variant = catalog.variant_create(
                actor=seat.user,
                product=product,
                name=form.cleaned_data["name"],
                sku=form.cleaned_data["sku"],
                price_minor=form.cleaned_data["price_minor"],
                currency=form.cleaned_data["currency"],
                stock_available=form.cleaned_data["stock"],
            )
        except CatalogInputError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(
                request, _("Variant %(sku)s was added.") % {"sku": variant.sku}
            )
            return redirect(
                "workspace_product", slug=seat.brand.slug, product_id=product.pk
            )
    return _product_page(request, seat, product_id, new_variant_form=form, status=400)


@workspace_page
@require_POST
def variant_save(request: HttpRequest, seat: Seat, variant_id: int) -> HttpResponse:
    """Change a variant's name, SKU and price, and its stock by the
    difference from the figure the form showed."""
    _manager(seat)
    variant = catalog.variant_get(
        actor=seat.user, brand=seat.brand, variant_id=variant_id
    )
    prefix = f"v{variant.pk}"
    form = VariantEditForm(request.POST, prefix=prefix)
    status = 400
    if form.is_valid():
        seen = form.cleaned_data["stock_seen"]
        try:
            catalog.variant_edit(
                actor=seat.user,
                variant=variant,
                name=form.cleaned_data["name"],
                sku=form.cleaned_data["sku"],
                price_minor=form.cleaned_data["price_minor"],
                currency=form.cleaned_data["currency"],
                stock_seen=seen,
                stock_new=form.cleaned_data["stock"],
            )
        except StockMoved as exc:
            # Show the stock as it is now, so saving again starts from it.
            variant.refresh_from_db(fields=["stock_available"])
            data = request.POST.copy()
            data[f"{prefix}-stock_seen"] = str(variant.stock_available)
            form = VariantEditForm(data, prefix=prefix)
            form.is_valid()
            form.add_error("stock", exc.message)
            status = 409
        except CatalogInputError as exc:
            form.add_error(exc.field, exc.message)
        else:
            # Units sold or held between the form's reading and now.
            sold = form.cleaned_data["stock"] - variant.stock_available
            text = _("Variant %(sku)s was saved.") % {"sku": variant.sku}
            if sold > 0:
                text += " " + ngettext(
                    "%(count)s unit was sold or held while you edited: "
                    "%(stock)s are in stock now.",
                    "%(count)s units were sold or held while you edited: "
                    "%(stock)s are in stock now.",
                    sold,
                ) % {"count": sold, "stock": variant.stock_available}
            messages.success(request, text)
            return redirect(
                "workspace_product",
                slug=seat.brand.slug,
                product_id=variant.product_id,
            )
    return _product_page(
        request,
        seat,
        variant.product_id,
        variant_forms={variant.pk: form},
        status=status,
    )


# --- CSV import -----------------------------------------------------------------


def _import_page(
    request: HttpRequest,
    seat: Seat,
    *,
    form: CatalogUploadForm | None = None,
    preview: list[catalog.CatalogPreviewRow] | None = None,
    token: str = "",
    errors: list[tuple[int, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    rows = [
        {
            "line": item.row.line,
            "row": item.row,
            "price": Money(item.row.price_minor, item.row.currency).format(),
            "current": item.current,
            "current_price": Money(
                item.current.price_minor, item.current.currency
            ).format()
            if item.current
            else "",
            "price_changed": item.current is not None
            and (item.current.price_minor, item.current.currency)
            != (item.row.price_minor, item.row.currency),
            "stock_changed": item.current is not None
            and item.current.stock_available != item.row.stock,
        }
        for item in preview or []
    ]
    return render(
        request,
        "frontend/workspace/catalogue_import.html",
        _page(
            seat,
            form=form or CatalogUploadForm(),
            preview=rows,
            token=token,
            errors=errors or [],
        ),
        status=status,
    )


@workspace_page
@require_http_methods(["GET", "POST"])
def catalogue_import(request: HttpRequest, seat: Seat) -> HttpResponse:
    """Upload a CSV; see its rows (or every invalid line) before anything is
    written, then confirm."""
    _manager(seat)
    if request.method != "POST":
        return _import_page(request, seat)
    form = CatalogUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, seat, form=form, status=400)
    text = form.cleaned_data["file"]
    try:
        preview = catalog.catalog_preview(actor=seat.user, brand=seat.brand, text=text)
    except CatalogImportError as exc:
        return _import_page(request, seat, form=form, errors=exc.errors, status=400)
    token = signing.dumps(
        {
            "brand": seat.brand.pk,
            "user": seat.user.pk,
            "text": text,
            "seen": {
                item.row.sku: item.current.stock_available
                for item in preview
                if item.current is not None
            },
        },
        salt=IMPORT_SALT,
        compress=True,
    )
    return _import_page(request, seat, preview=preview, token=token)


@workspace_page
@require_POST
def catalogue_import_confirm(request: HttpRequest, seat: Seat) -> HttpResponse:
    """Import the previewed file, all or nothing."""
    _manager(seat)
    try:
        data = signing.loads(
            request.POST.get("token", ""), salt=IMPORT_SALT, max_age=IMPORT_MAX_AGE
        )
    except signing.BadSignature:
        data = None
    if (
        not isinstance(data, dict)
        or data.get("brand") != seat.brand.pk
        or data.get("user") != seat.user.pk
    ):
        messages.error(
            request,
            _("This preview is too old or not yours. Upload the file again."),
        )
        return redirect("workspace_catalogue_import", slug=seat.brand.slug)
    try:
        result = catalog.catalog_import(
            actor=seat.user,
            brand=seat.brand,
            text=str(data["text"]),
            stock_seen={str(k): int(v) for k, v in dict(data["seen"]).items()},
        )
    except CatalogImportError as exc:
        return _import_page(request, seat, errors=exc.errors, status=409)
    messages.success(
        request,
        _(
            "Imported: %(pc)s products added, %(pu)s updated; "
            "%(vc)s variants added, %(vu)s updated."
        )
        % {
            "pc": result.products_created,
            "pu": result.products_updated,
            "vc": result.variants_created,
            "vu": result.variants_updated,
        },
    )
    return redirect("workspace_catalogue", slug=seat.brand.slug)
