"""The catalogue's URLs under ``brand/<slug>/catalogue/``
(frontend/workspace_catalogue.py), included by ``BRAND_PATTERNS``."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_catalogue as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.catalogue, name="workspace_catalogue"),
    path("products/new/", views.product_new, name="workspace_product_new"),
    path("products/<int:product_id>/", views.product_page, name="workspace_product"),
    path(
        "products/<int:product_id>/variants/",
        views.variant_add,
        name="workspace_variant_add",
    ),
    path("variants/<int:variant_id>/", views.variant_save, name="workspace_variant"),
    path("import/", views.catalogue_import, name="workspace_catalogue_import"),
    path(
        "import/confirm/",
        views.catalogue_import_confirm,
        name="workspace_catalogue_import_confirm",
    ),
]
