"""ICE configuration: explicit ICE servers and host candidates only on the
configured addresses."""

from __future__ import annotations

from typing import Any

import aioice.ice
import pytest
from django.core.exceptions import ImproperlyConfigured

from live.media import aioice_patches, asyncio_patches, network


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
    """After the patch (applied at startup) aioice lists only the configured
    addresses, read at call time and split by family."""
    aioice_patches.apply()
    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == [
        "127.0.0.1",
        "::1",
    ]


async def test_aioice_connection_gathers_only_loopback(settings):
    """A real aioice connection gathers host candidates on 127.0.0.1 only,
    whatever other interfaces this machine has (the patch is applied at
    startup, not by this test)."""
    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1"]
    connection = aioice.Connection(ice_controlling=True)
    try:
        await connection.gather_candidates()
        hosts = {c.host for c in connection.local_candidates}
        assert hosts == {"127.0.0.1"}
    finally:
        await connection.close()


async def test_publisher_socket_is_read_dry_on_each_wakeup(settings):
    """After negotiation the publisher's sockets are read up to
    INGEST_READS_PER_WAKEUP datagrams per wake-up (asyncio reads one), so a
    busy loop does not leave the host's packets waiting in the kernel. Fails if
    aioice or asyncio move what this relies on."""
    import asyncio
    import socket

    from aiortc import RTCPeerConnection

    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1"]
    offerer = RTCPeerConnection(network.rtc_configuration())
    answerer = RTCPeerConnection(network.rtc_configuration())
    try:
        offerer.addTransceiver("video", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert network.read_ingest_eagerly(answerer) == 1

        # aioice's datagram protocol and asyncio's selector are private: typed Any.
        connection: Any = answerer.getTransceivers()[0].receiver.transport.transport
        (protocol,) = connection._connection._protocols
        received: list[bytes] = []
        protocol.datagram_received = lambda data, addr: received.append(data)
        port = protocol.transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for index in range(5):
                sender.sendto(bytes([index]), ("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(received) < 5 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert [d for d in received if len(d) == 1] == [bytes([i]) for i in range(5)]
        selector: Any = loop
        reader, _writer = selector._selector.get_key(protocol.transport._sock_fd).data
        assert reader._callback is asyncio_patches._read_all
    finally:
        await offerer.close()
        await answerer.close()
