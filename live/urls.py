"""Media routes (WHIP ingest, WHEP playback, HLS, recording): DESIGN.md §5,
docs/video.md. A load balancer sends ``/live/<slug>/…`` to the show's media node."""

from django.urls import URLPattern, URLResolver, path

from live import views

app_name = "live"

urlpatterns: list[URLPattern | URLResolver] = [
    path("live/<slug:slug>/whip", views.whip, name="whip"),
    path(
        "live/<slug:slug>/whip/<str:session_id>",
        views.whip_session,
        name="whip_session",
    ),
    path("live/<slug:slug>/whep", views.whep, name="whep"),
    path(
        "live/<slug:slug>/whep/<str:session_id>",
        views.whep_session,
        name="whep_session",
    ),
    path("live/<slug:slug>/hls/<str:name>", views.hls_file, name="hls"),
    path("live/<slug:slug>/hls-auth", views.hls_auth, name="hls_auth"),
    path("live/<slug:slug>/recording.mp4", views.recording, name="recording"),
    path("live/<slug:slug>/stream", views.stream_status, name="stream_status"),
    path("live/<slug:slug>/stream/key", views.stream_key_rotate, name="stream_key"),
    path("live/<slug:slug>/stream/end", views.stream_end, name="stream_end"),
    path(
        "live/<slug:slug>/stream/rehearse",
        views.stream_rehearse,
        name="stream_rehearse",
    ),
    path(
        "live/<slug:slug>/stream/go-live", views.stream_go_live, name="stream_go_live"
    ),
    path("live/<slug:slug>/preview", views.preview, name="preview"),
]
