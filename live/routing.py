"""Websocket routes (the show room protocol, docs/protocol.md)."""

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
