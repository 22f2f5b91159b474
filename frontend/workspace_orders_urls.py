"""The brand's orders under ``brand/<slug>/orders/``
(frontend/workspace_orders.py), included by ``BRAND_PATTERNS``."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_orders as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.orders, name="workspace_orders"),
    path("bulk/", views.orders_bulk, name="workspace_orders_bulk"),
    path("<uuid:public_id>/", views.order_page, name="workspace_order"),
]
