"""The brand workspace's URLs (frontend/workspace.py). Everything under
``brand/<slug>/`` is for the brand's team only: ``BRAND_PATTERNS`` is walked by
the tests, so a page added here is checked for outsiders automatically."""

from django.urls import URLPattern, URLResolver, include, path

from frontend import workspace

BRAND_PATTERNS: list[URLPattern | URLResolver] = [
    path("", workspace.home, name="workspace_home"),
    path("team/", workspace.team_page, name="workspace_team"),
    path(
        "team/invitations/<int:invitation_id>/",
        workspace.invitation_action,
        name="workspace_invitation",
    ),
    path(
        "team/members/<int:membership_id>/",
        workspace.member_action,
        name="workspace_member",
    ),
    path("catalogue/", include("frontend.workspace_catalogue_urls")),
    path("orders/", include("frontend.workspace_orders_urls")),
    path("reviews/", include("frontend.workspace_reviews_urls")),
    path("shows/", include("frontend.workspace_shows_urls")),
    path("", include("frontend.workspace_reports_urls")),
    path("", include("frontend.workspace_settings_urls")),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("brand/", workspace.index, name="workspace_index"),
    path("brand/<slug:slug>/", include(BRAND_PATTERNS)),
    path(
        "invitations/<str:token>/",
        workspace.invitation_accept,
        name="invitation_accept",
    ),
]
