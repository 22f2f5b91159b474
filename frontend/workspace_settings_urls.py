"""The brand's settings and audit (frontend/workspace_settings.py), included
by ``BRAND_PATTERNS``."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_settings as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/", views.settings_page, name="workspace_settings"),
    path("audit/", views.audit_page, name="workspace_audit"),
]
