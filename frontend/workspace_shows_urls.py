"""The brand's shows under ``brand/<slug>/shows/``
(frontend/workspace_shows.py), included by ``BRAND_PATTERNS``."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_shows as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("new/", views.show_new, name="workspace_show_new"),
    path("<slug:show_slug>/", views.show_page, name="workspace_show"),
    path("<slug:show_slug>/do/", views.show_action, name="workspace_show_action"),
]
