"""The reviews' URLs under ``brand/<slug>/reviews/`` (frontend/workspace_reviews.py),
included by ``BRAND_PATTERNS``: the workspace page, its actions, and the
studio panel's list and "Feature" for one show."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_reviews as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.reviews_page, name="workspace_reviews"),
    path("<int:review_id>/", views.review_action, name="workspace_review"),
    path("shows/<slug:show_slug>/", views.studio_reviews, name="studio_reviews"),
    path(
        "shows/<slug:show_slug>/<int:review_id>/feature/",
        views.studio_review_feature,
        name="studio_review_feature",
    ),
]
