import re

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from frontend import uploads
from frontend.forms import AdminLoginForm
from live import studio

# Tells a locked-out staff member how long to wait (frontend/login_throttling.py).
admin.site.login_form = AdminLoginForm

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("checkout.urls")),
    path(
        "api/shows/<slug:slug>/figures",
        studio.studio_figures,
        name="studio_figures",
    ),
    path(
        "api/shows/<slug:slug>/questions/<int:question_id>/suggestion",
        studio.question_suggestion,
        name="question_suggestion",
    ),
    path("", include("frontend.urls")),
]
# Uploaded images from MEDIA_ROOT (frontend/uploads.py), when MEDIA_URL is a
# path on this site rather than a CDN's or a bucket's address.
if settings.SHOWFLOOR_SERVE_UPLOADS and re.match(r"/[^/]", settings.MEDIA_URL):
    urlpatterns.insert(
        0,
        re_path(
            rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.+)$",
            uploads.upload,
            name="upload",
        ),
    )
if settings.SHOWFLOOR_SERVE_MEDIA:
    urlpatterns.insert(0, path("", include("live.urls")))

handler403 = "frontend.views.permission_denied"
handler404 = "frontend.views.page_not_found"
handler500 = "frontend.views.server_error"
