"""Checkout API and the Stripe webhook: DESIGN.md §6."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
