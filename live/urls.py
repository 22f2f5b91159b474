"""Media routes (WHIP ingest, WHEP playback, HLS): DESIGN.md §5."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
