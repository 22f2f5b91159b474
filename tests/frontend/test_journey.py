"""The whole product as its users live it, in Chromium, against the README's
demo: a host goes live, two viewers watch, chat, ask, vote, buy the pinned
product, and the replay plays (see ``journey_netns.py`` for the steps)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.netns_support import ROOT

SCRIPT = Path(__file__).with_name("journey_netns.py")
SCREENSHOTS = ("viewer-phone.png", "viewer-desktop.png", "studio.png")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_host_viewers_and_buyer_live_the_whole_show(loopback_namespace, tmp_path):
    """Every step of a show works end to end in the browser, and the run saves
    screenshots of the phone and desktop viewer pages and of the studio."""
    # The script imports tests.netns_support from the checkout.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    inside = ["ip", "netns", "exec", loopback_namespace]
    done = subprocess.run(
        [*inside, sys.executable, str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
    )
    shots = tmp_path / "screenshots"
    if shots.exists():
        shutil.copytree(shots, ARTIFACTS / "journey", dirs_exist_ok=True)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    result = json.loads(lines[-1])
    assert "error" not in result, json.dumps(result, indent=1)[-6000:]
    print(f"journey: {result['duration_s']} s, steps at {result['steps']}")

    assert result["studio_live"] is True
    assert result["badge"] == "live"
    for viewer in ("video_phone", "video_desktop"):
        video = result[viewer]
        assert video["mode"] == "webrtc"
        assert video["width"] > 0
        assert video["end"] - video["start"] > 0.5, video

    assert "Does the mic work with a phone?" in result["chat_seen_by_other"]
    assert result["chat_author"] == "Ada Lovelace"
    assert result["vote_pressed"] == "true"
    assert result["studio_votes"].startswith("1")
    assert result["answer_seen_by_asker_and_other"] is True

    assert result["pin_stock_before"] == "10 left"
    assert result["sheet_product"] == "Polar USB microphone"
    assert "Paid" in result["buy_status"]
    assert result["pin_stock_after"] == "9 left"

    # €89.00 and €4.90 shipping to Berlin, German VAT included.
    assert result["sheet_breakdown"] == "Shipping €4.90 · includes €14.99 tax (19 %)"
    assert result["studio_revenue"] == "€93.90"
    assert "Polar USB microphone" in result["studio_order_row"]
    assert "Ada Lovelace" in result["studio_order_row"]

    assert result["replay"]["duration"] > 1
    assert result["replay"]["currentTime"] > 0.3
    assert not any(result["page_errors"].values()), result["page_errors"]

    for name in SCREENSHOTS:
        picture = shots / name
        assert picture.stat().st_size > 10_000, name
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
