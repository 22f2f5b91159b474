"""Chromium plays a live show through coturn only (``iceTransportPolicy:
"relay"``), with the short-lived credentials the pages get, inside a network
namespace that has only loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.netns_support import run_in_namespace

SCRIPT = Path(__file__).with_name("turn_netns.py")

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_viewer_plays_a_live_show_through_turn_only(loopback_namespace, tmp_path):
    """The studio and the viewer gather relay candidates only (a relay
    candidate exists only once coturn accepted the page's REST API
    credentials in an authenticated Allocate) and their selected pairs are
    relayed; the viewer decodes frames."""
    if not (shutil.which("turnserver") or Path("/usr/bin/turnserver").exists()):
        missing_service("coturn (apt-get install coturn)")
    result = run_in_namespace(loopback_namespace, SCRIPT, tmp_path)
    assert "error" not in result, result
    for page in ("studio", "viewer"):
        seen = result[page]
        assert seen["policy"] == "relay", seen
        assert seen["turn"] == 1, seen
        assert seen["local_types"], seen
        assert set(seen["local_types"]) == {"relay"}, seen
        assert seen["selected_type"] == "relay", seen
        assert seen["state"] == "connected", seen
    assert result["viewer"]["frames_decoded"] > 10
    assert result["viewer_width"] > 0
