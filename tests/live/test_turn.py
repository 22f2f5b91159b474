"""TURN REST API credentials made by the web tier (live/turn.py) and handed to
the player's and the studio's peer connections."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest

from live.turn import page_ice_servers, turn_credential, turn_server

pytestmark = pytest.mark.django_db

TURN_URLS = [
    "turn:turn.example.test:3478?transport=udp",
    "turns:turn.example.test:5349",
]


@pytest.fixture
def turn_settings(settings):
    settings.SHOWFLOOR_TURN_URLS = TURN_URLS
    settings.SHOWFLOOR_TURN_SECRET = "north-wind"
    settings.SHOWFLOOR_TURN_TTL_SECONDS = 3600
    settings.SHOWFLOOR_ICE_SERVERS = '[{"urls": "stun:stun.example.test"}]'
    return settings


def test_credential_is_base64_of_hmac_sha1_of_the_username():
    """The value coturn recomputes (checked against openssl's
    ``dgst -sha1 -hmac north-wind -binary | base64``)."""
    assert (
        turn_credential(secret="north-wind", username="1796634000:abc123")
        == "oYcSFei9XUB3bczFwn+OOFWace0="
    )


def test_turn_server_username_is_expiry_and_opaque_id(turn_settings):
    """``<now + TTL>:<random id>``, credential by the formula, a new id each
    time (nothing about the viewer in it)."""
    first = turn_server(now=1_796_630_000.7)
    second = turn_server(now=1_796_630_000.7)
    assert first is not None
    assert second is not None
    assert first["urls"] == TURN_URLS
    match = re.fullmatch(r"(\d+):([A-Za-z0-9_-]{16})", first["username"])
    assert match is not None
    assert int(match[1]) == 1_796_630_000 + 3600
    expected = base64.b64encode(
        hmac.new(b"north-wind", first["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert first["credential"] == expected
    assert first["username"] != second["username"]


def test_no_turn_entry_unless_urls_and_secret_are_both_set(settings):
    settings.SHOWFLOOR_ICE_SERVERS = '[{"urls": "stun:stun.example.test"}]'
    settings.SHOWFLOOR_TURN_URLS = TURN_URLS
    settings.SHOWFLOOR_TURN_SECRET = ""
    assert page_ice_servers() == [{"urls": "stun:stun.example.test"}]
    settings.SHOWFLOOR_TURN_URLS = []
    settings.SHOWFLOOR_TURN_SECRET = "north-wind"
    assert page_ice_servers() == [{"urls": "stun:stun.example.test"}]


def _json_script(page: str, element_id: str) -> dict:
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>',
        page,
        re.S,
    )
    assert found is not None, element_id
    return json.loads(found[1])


def test_player_and_studio_pages_carry_fresh_turn_credentials(
    client, show, host, turn_settings
):
    """The show page's player and the studio's publisher get the configured
    ICE servers plus the TURN entry, made per page, and the transport policy."""
    turn_settings.SHOWFLOOR_ICE_TRANSPORT_POLICY = "relay"
    configs = [
        _json_script(
            client.get(f"/shows/{show.slug}/").content.decode(), "player-config"
        )
        for _ in range(2)
    ]
    client.force_login(host)
    studio = client.get(f"/shows/{show.slug}/studio/").content.decode()
    configs.append(_json_script(studio, "publish-config"))
    for config in configs:
        stun, turn = config["iceServers"]
        assert stun == {"urls": "stun:stun.example.test"}
        assert turn["urls"] == TURN_URLS
        assert turn["credential"] == turn_credential(
            secret="north-wind", username=turn["username"]
        )
        assert config["iceTransportPolicy"] == "relay"
    assert (
        configs[0]["iceServers"][1]["username"]
        != (configs[1]["iceServers"][1]["username"])
    )
    turn_settings.SHOWFLOOR_ICE_TRANSPORT_POLICY = "anything else"
    page = client.get(f"/shows/{show.slug}/").content.decode()
    assert _json_script(page, "player-config")["iceTransportPolicy"] == "all"
