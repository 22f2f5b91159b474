"""The reports under ``brand/<slug>/`` (frontend/workspace_reports.py),
included by ``BRAND_PATTERNS``: one show's report and its CSV parts, the
brand's overview and its CSV."""

from django.urls import URLPattern, URLResolver, path

from frontend import workspace_reports as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("reports/", views.brand_reports, name="workspace_reports"),
    path("reports/shows.csv", views.brand_reports_csv, name="workspace_reports_csv"),
    path(
        "shows/<slug:show_slug>/report/",
        views.show_report,
        name="workspace_show_report",
    ),
    path(
        "shows/<slug:show_slug>/report/<slug:part>.csv",
        views.show_report_csv,
        name="workspace_show_report_csv",
    ),
]
