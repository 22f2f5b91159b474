"""Checkout API and the Stripe webhook: docs/checkout.md."""

from django.urls import URLPattern, URLResolver, path

from checkout import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/shows/<slug:slug>/orders", views.orders, name="checkout_orders"),
    path("api/shows/<slug:slug>/quote", views.quote, name="checkout_quote"),
    path("api/shows/<slug:slug>/bag", views.bag, name="checkout_bag"),
    path(
        "api/shows/<slug:slug>/bag/lines/<int:variant_id>",
        views.bag_line,
        name="checkout_bag_line",
    ),
    path("api/shows/<slug:slug>/bag/quote", views.bag_quote, name="checkout_bag_quote"),
    path(
        "api/shows/<slug:slug>/bag/checkout",
        views.bag_checkout,
        name="checkout_bag_checkout",
    ),
    path(
        "api/shows/<slug:slug>/orders/open",
        views.order_open,
        name="checkout_order_open",
    ),
    path("api/shows/<slug:slug>/sales", views.sale_start, name="checkout_sale_start"),
    path("api/orders/<uuid:public_id>", views.order_detail, name="checkout_order"),
    path("api/orders/<uuid:public_id>/pay", views.order_pay, name="checkout_pay"),
    path(
        "api/orders/<uuid:public_id>/address",
        views.order_address,
        name="checkout_order_address",
    ),
    path(
        "api/orders/<uuid:public_id>/cancel", views.order_cancel, name="checkout_cancel"
    ),
    path(
        "api/orders/<uuid:public_id>/refresh",
        views.order_refresh,
        name="checkout_refresh",
    ),
    path("api/me/card", views.saved_card, name="checkout_saved_card"),
    path(
        "api/me/card/setup",
        views.saved_card_setup,
        name="checkout_saved_card_setup",
    ),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
