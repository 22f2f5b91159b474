"""ICE configuration: explicit ICE servers and host candidates only on the
configured addresses."""

from __future__ import annotations

import aioice.ice
import pytest
from django.core.exceptions import ImproperlyConfigured

from live.media import network


def test_ice_servers_are_parsed_from_settings(settings):
    """The JSON list becomes RTCIceServer objects; an empty list stays empty
    (never aiortc's default public STUN server)."""
    settings.SHOWFLOOR_ICE_SERVERS = (
        '[{"urls": "turn:turn.example.test:3478", "username": "u", "credential": "c"}]'
    )
    servers = network.rtc_configuration().iceServers
    assert servers is not None
    (server,) = servers
    assert server.urls == "turn:turn.example.test:3478"
    assert (server.username, server.credential) == ("u", "c")
    settings.SHOWFLOOR_ICE_SERVERS = "[]"
    assert network.rtc_configuration().iceServers == []


@pytest.mark.parametrize("raw", ["{", '{"urls": "stun:x"}', '[{"username": "u"}]'])
def test_bad_ice_servers_setting_is_refused(settings, raw):
    """A malformed SHOWFLOOR_ICE_SERVERS is a configuration error, not a silent
    fallback."""
    settings.SHOWFLOOR_ICE_SERVERS = raw
    with pytest.raises(ImproperlyConfigured):
        network.ice_servers()


def test_gathering_is_restricted_to_media_addresses(settings):
    """After the restriction aioice lists only the configured addresses, read
    at call time and split by family."""
    network.restrict_ice_gathering()
    network.restrict_ice_gathering()  # idempotent
    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == [
        "127.0.0.1",
        "::1",
    ]


async def test_aioice_connection_gathers_only_loopback(settings):
    """A real aioice connection gathers host candidates on 127.0.0.1 only,
    whatever other interfaces this machine has."""
    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1"]
    network.restrict_ice_gathering()
    connection = aioice.Connection(ice_controlling=True)
    try:
        await connection.gather_candidates()
        hosts = {c.host for c in connection.local_candidates}
        assert hosts == {"127.0.0.1"}
    finally:
        await connection.close()
