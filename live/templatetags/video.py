"""``{% video_config show as config %}``: what the player and the studio's
publisher need, rendered with ``json_script`` by the video partials."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.utils.translation import gettext as _

from live.turn import page_ice_servers
from shows.models import Show
from shows.services.stream import stream_recording_path

register = template.Library()


@register.simple_tag
def video_config(show: Show, preview: bool = False) -> dict[str, Any]:
    """``preview``: the staff's preview page, where a rehearsal plays as if
    live (WHEP and HLS check that the viewer is on the brand's staff)."""
    base = f"/live/{show.slug}"
    started = show.started_at
    recording = stream_recording_path(show=show)
    return {
        "slug": show.slug,
        "status": "live" if preview and show.is_rehearsing else show.status,
        "startedAt": int(started.timestamp() * 1000) if started else None,
        "whepUrl": f"{base}/whep",
        "whipUrl": f"{base}/whip",
        "hlsUrl": f"{base}/hls/master.m3u8",
        "statusUrl": f"{base}/stream",
        "endUrl": f"{base}/stream/end",
        "keyUrl": f"{base}/stream/key",
        "recordingUrl": f"{base}/recording.mp4" if recording else None,
        # TURN credentials are made per page (live/turn.py).
        "iceServers": page_ice_servers(),
        "iceTransportPolicy": "relay"
        if settings.SHOWFLOOR_ICE_TRANSPORT_POLICY == "relay"
        else "all",
        "maxBitrate": settings.SHOWFLOOR_VIDEO_BITRATE,
        "abandonedSeconds": settings.SHOWFLOOR_ABANDONED_SHOW_SECONDS,
    }


@register.simple_tag
def player_strings() -> dict[str, str]:
    """The player's user-facing strings, translated (``json_script`` them)."""
    return {
        "scheduled": _(
            "The show has not started yet. It will play here as soon as the "
            "host goes live."
        ),
        "connecting": _("Connecting to the live video…"),
        "waiting": _("The host is getting ready. The video starts in a moment."),
        "reconnecting": _(
            "The host's connection dropped. Waiting for them to come back…"
        ),
        "paused": _("The host paused the stream. Stay here: it comes back."),
        "ended": _("This show has ended."),
        "replay": _("This show has ended. Watch the replay below."),
        "failed": _("The video could not be played. Retrying…"),
        "tapToPlay": _("Tap to play"),
    }


@register.simple_tag
def publish_strings() -> dict[str, str]:
    """The studio publisher's user-facing strings, translated."""
    return {
        "offline": _("Off air"),
        "live": _("Live"),
        "ended": _("Ended"),
        "connecting": _("Connecting…"),
        "connected": _("Connected"),
        "reconnecting": _("Connection lost, reconnecting…"),
        "lost": _("The stream has been away for a while. Reconnect or end the show."),
        "stopped": _(
            "The encoder stopped streaming. The show stays live until you "
            "stream again or end it."
        ),
        "autoEnd": _(
            "Nobody is streaming: the show ends by itself at %(time)s unless "
            "you stream again."
        ),
        "endedAbandoned": _(
            "The show was ended automatically: nobody had streamed to it for "
            "%(minutes)s minutes."
        ),
        "none": _("No publisher"),
        "noCamera": _("No camera or microphone is available, or access was denied."),
        "goLiveFailed": _("Could not go live: %(reason)s"),
        "rehearsal": _("Rehearsal: only your team sees this"),
        "rehearsalFailed": _("Could not start the rehearsal: %(reason)s"),
        "confirmEndRehearsal": _(
            "End the rehearsal? The show stays scheduled and can go live later."
        ),
        "endShow": _("End show"),
        "endRehearsal": _("End rehearsal"),
        "confirmEnd": _("End the show for everybody? This cannot be undone."),
        "confirmRotate": _(
            "Rotate the stream key? Encoders using the old key must be updated."
        ),
        "copied": _("Copied"),
        "cameraOff": _("Camera off"),
        "cameraN": _("Camera %(n)s"),
        "microphoneN": _("Microphone %(n)s"),
        "micOff": _("No microphone"),
    }
