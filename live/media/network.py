"""ICE settings for every peer connection the media node creates.

Two rules (DESIGN.md §5): ``iceServers`` is always passed explicitly (aiortc
falls back to a public STUN server when it is left unset), and the node gathers
host candidates only on ``SHOWFLOOR_MEDIA_ADDRESSES``.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import json
import threading
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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


def media_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """The addresses aioice may gather host candidates on."""
    addresses = []
    for address in settings.SHOWFLOOR_MEDIA_ADDRESSES:
        is_v6 = ":" in address
        if (is_v6 and use_ipv6) or (not is_v6 and use_ipv4):
            addresses.append(address)
    return addresses


_patch_lock = threading.Lock()


def restrict_ice_gathering() -> None:
    """Make aioice gather only on ``SHOWFLOOR_MEDIA_ADDRESSES``.

    aioice offers no hook for this: ``Connection.gather_candidates`` calls the
    module-level ``aioice.ice.get_host_addresses``, which lists every interface
    except loopback. We replace that one function (idempotently) with one that
    returns the configured addresses, read at call time. Checked against
    aioice 0.10; ``tests/live/media/test_network.py`` fails if the hook moves.
    """
    with _patch_lock:
        if aioice.ice.get_host_addresses is not media_addresses:
            aioice.ice.get_host_addresses = media_addresses


# Datagrams read from a publisher's socket each time it is ready.
INGEST_READS_PER_WAKEUP = 64


def read_ingest_eagerly(pc: RTCPeerConnection) -> int:
    """Read the publisher's sockets dry each time the event loop finds them
    readable; returns how many sockets now are.

    asyncio's datagram transport reads one datagram per wake-up. When the loop
    is busy sending to many viewers, each turn of the loop takes longer, the
    publisher's packets pile up in the kernel's socket buffer, and the whole
    show falls seconds behind the host. Reading up to
    ``INGEST_READS_PER_WAKEUP`` per wake-up keeps the ingest current. Relies on
    aioice's ``Connection._protocols`` and asyncio's selector transport
    (checked against aioice 0.10 and Python 3.11; ``test_network.py`` fails if
    they move); with another event loop nothing changes.
    """
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return 0
    transports = []
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        connection = getattr(ice, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            transport = getattr(protocol, "transport", None)
            if (
                isinstance(transport, _DatagramTransport)
                and transport not in transports
            ):
                transports.append(transport)
    for transport in transports:
        loop._remove_reader(transport._sock_fd)  # type: ignore[attr-defined]
        loop._add_reader(transport._sock_fd, _read_all, transport)  # type: ignore[attr-defined]
    return len(transports)


_DatagramTransport = asyncio.selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


def _read_all(transport: Any) -> None:
    """``_SelectorDatagramTransport._read_ready``, in a loop."""
    for _ in range(INGEST_READS_PER_WAKEUP):
        if transport._conn_lost:
            return
        try:
            data, addr = transport._sock.recvfrom(transport.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            transport._protocol.error_received(exc)
            return
        transport._protocol.datagram_received(data, addr)
