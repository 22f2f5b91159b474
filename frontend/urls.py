from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("shows/<slug:slug>/", views.show_detail, name="show_detail"),
    path("shows/<slug:slug>/studio/", views.studio, name="studio"),
]
