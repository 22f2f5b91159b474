"""ICE settings for every peer connection the media node creates.

Two rules (DESIGN.md §5): ``iceServers`` is always passed explicitly (aiortc
falls back to a public STUN server when it is left unset), and the node gathers
host candidates only on ``SHOWFLOOR_MEDIA_ADDRESSES`` (``aioice_patches``,
applied at startup).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from live.media import aioice_patches, aiortc_patches, asyncio_patches


def ice_servers() -> list[RTCIceServer]:
    """``SHOWFLOOR_ICE_SERVERS`` parsed: a JSON list of ``{"urls", "username",
    "credential"}`` objects, as in the browser's ``RTCConfiguration``."""
    try:
        raw: Any = json.loads(settings.SHOWFLOOR_ICE_SERVERS or "[]")
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"SHOWFLOOR_ICE_SERVERS is not valid JSON: {exc}"
        ) from exc
    if not isinstance(raw, list):
        raise ImproperlyConfigured("SHOWFLOOR_ICE_SERVERS must be a JSON list.")
    servers = []
    for entry in raw:
        if not isinstance(entry, dict) or "urls" not in entry:
            raise ImproperlyConfigured(
                "Each SHOWFLOOR_ICE_SERVERS entry needs at least “urls”."
            )
        servers.append(
            RTCIceServer(
                urls=entry["urls"],
                username=entry.get("username"),
                credential=entry.get("credential"),
            )
        )
    return servers


def rtc_configuration() -> RTCConfiguration:
    """The configuration for a new ``RTCPeerConnection`` (never the default)."""
    return RTCConfiguration(iceServers=ice_servers())


# Datagrams read from a publisher's socket each time it is ready.
INGEST_READS_PER_WAKEUP = 64


def read_ingest_eagerly(pc: RTCPeerConnection) -> int:
    """Read the publisher's sockets dry each time the event loop finds them
    readable; returns how many sockets now are.

    asyncio's datagram transport reads one datagram per wake-up. When the loop
    is busy sending to many viewers, each turn of the loop takes longer, the
    publisher's packets pile up in the kernel's socket buffer, and the whole
    show falls seconds behind the host. Reading up to
    ``INGEST_READS_PER_WAKEUP`` per wake-up keeps the ingest current. How the
    sockets are found and read is private to aiortc, aioice and asyncio (their
    patch modules; ``test_network.py`` fails if it moves); with another event
    loop nothing changes.
    """
    transports: list[asyncio.BaseTransport] = []
    for transceiver in pc.getTransceivers():
        connection = aiortc_patches.ice_connection(
            transceiver.receiver.transport.transport
        )
        for transport in aioice_patches.datagram_transports(connection):
            if transport not in transports:
                transports.append(transport)
    return sum(
        asyncio_patches.read_datagrams_eagerly(transport, INGEST_READS_PER_WAKEUP)
        for transport in transports
    )
