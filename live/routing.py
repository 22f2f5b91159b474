"""Websocket routes (the show room protocol, docs/protocol.md)."""

from django.urls import URLPattern, URLResolver, path

from live.consumers import ShowConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/shows/<slug:slug>/", ShowConsumer.as_asgi()),
]
