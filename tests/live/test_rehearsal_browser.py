"""Rehearsal in the browser (docs/video.md): the studio rehearses with
Chromium's fake camera, a viewer's page sees a scheduled show and gets no
video, Go live makes it play for the viewer while the studio's publisher
connection carries on. Inside a loopback-only network namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.netns_support import run_in_namespace

SCRIPT = Path(__file__).with_name("rehearsal_netns.py")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_rehearsal_is_invisible_to_viewers_and_public_after_go_live(
    loopback_namespace, tmp_path
):
    result = run_in_namespace(loopback_namespace, SCRIPT, tmp_path)
    assert "error" not in result, result

    assert result["studio_rehearsal_text"] == "Rehearsal: only your team sees this"
    assert result["studio_end_label"] == "End rehearsal"

    # The viewer: a scheduled show, no video, WHEP and HLS refused.
    for seen in (result["viewer_in_rehearsal"], result["viewer_after_preview"]):
        assert seen["mode"] == "none"
        assert seen["state"].startswith("The show has not started yet.")
        assert seen["badgeHidden"] is True
        assert seen["width"] == 0
        assert seen["currentTime"] == 0
        assert seen["whep"] == 409
        assert seen["hls"] == 404
        assert "Rehearsal" not in seen["body"]
        assert "SCHEDULED" in seen["body"].upper()

    # The staff's preview plays the rehearsal; nothing is recorded yet.
    preview = result["preview"]
    assert preview["mode"] == "webrtc"
    assert preview["width"] > 0
    assert preview["end"] - preview["start"] > 1.0
    assert result["recordings_in_rehearsal"] == []

    # After Go live the viewer plays, and the publisher was never replaced.
    live = result["viewer_live"]
    assert live["mode"] == "webrtc"
    assert live["width"] > 0
    assert live["end"] - live["start"] > 1.0
    assert result["studio_live_text"] == "Live"
    before = result["publisher_before_go_live"]
    after = result["publisher_after_go_live"]
    assert result["rehearsal_publisher"]["peers"] == 1
    assert after["peers"] == 1
    assert after["closes"] == 0
    assert after["state"] == "connected"
    assert after["framesSent"] > before["framesSent"] + 30
    assert len(result["recordings_live"]) == 1
