from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView

from frontend import audience, csp, embed, giveaways, orders, search, views
from frontend.forms import LoginForm


class FaviconRedirect(RedirectView):
    """To the icon's static address, read per request (the static files'
    manifest exists only once they are collected)."""

    permanent = True

    def get_redirect_url(self, *args: object, **kwargs: object) -> str:
        return static("frontend/favicon.svg")


urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers and tools that look for the old address find the icon.
    path("favicon.ico", FaviconRedirect.as_view(), name="favicon"),
    path("search/", search.search, name="search"),
    path("csp-report", csp.csp_report, name="csp_report"),
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("shows/<slug:slug>/", views.show_detail, name="show_detail"),
    path("shows/<slug:slug>/studio/", views.studio, name="studio"),
    path(
        "shows/<slug:slug>/giveaways/<int:giveaway_id>/",
        giveaways.giveaway_verify,
        name="giveaway_verify",
    ),
    path("embed.js", embed.embed_loader, name="embed_loader"),
    path("embed/<slug:slug>/", embed.embed_page, name="embed_page"),
    path(
        "api/embed/orders/<uuid:public_id>/link",
        embed.embed_order_link,
        name="embed_order_link",
    ),
    path("shows/<slug:slug>/remind/", audience.remind, name="remind"),
    path("shows/<slug:slug>/calendar.ics", audience.calendar, name="show_calendar"),
    path("brands/<slug:slug>/", audience.brand_page, name="brand_page"),
    path("brands/<slug:slug>/theme.css", audience.brand_theme, name="brand_theme"),
    path("brands/<slug:slug>/follow/", audience.follow, name="follow"),
    path(
        "reminders/confirm/<str:token>/",
        audience.reminder_confirm,
        name="reminder_confirm",
    ),
    path(
        "account/notifications/",
        audience.notification_settings,
        name="notification_settings",
    ),
    path("unsubscribe/<str:token>/", audience.unsubscribe, name="unsubscribe"),
    path("orders/", orders.my_orders, name="my_orders"),
    path("orders/<uuid:public_id>/", orders.order_page, name="order_page"),
    path("orders/link/<str:token>/", orders.order_link, name="order_link"),
    path("", include("frontend.workspace_urls")),
]
