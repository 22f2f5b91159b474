"""Every write of the shows app, one module per area.

New areas get their own module (``from shows.services import room``); the names
below are re-exported for the callers that predate the split.
"""

from shows.services.accounts import user_signup
from shows.services.catalog import (
    CatalogImportResult,
    CatalogRow,
    brand_create,
    catalog_import,
    catalog_parse,
    catalog_preview,
    membership_set,
    product_create,
    product_update,
    variant_create,
    variant_edit,
    variant_stock_adjust,
    variant_update,
)
from shows.services.lifecycle import lineup_set, show_create, show_end, show_start

__all__ = [
    "CatalogImportResult",
    "CatalogRow",
    "brand_create",
    "catalog_import",
    "catalog_parse",
    "catalog_preview",
    "lineup_set",
    "membership_set",
    "product_create",
    "product_update",
    "show_create",
    "show_end",
    "show_start",
    "user_signup",
    "variant_create",
    "variant_edit",
    "variant_stock_adjust",
    "variant_update",
]
