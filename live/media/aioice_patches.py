"""Everything this project patches or reads inside aioice, and why.

aioice has no public hook for either, so they live here and nowhere else
(``tests/live/media/test_patches.py`` fails if another media module reaches
into aioice). Checked against the aioice in
``live.versions.CHECKED_VERSIONS``, which the process asserts at startup.

- Host candidates only on ``SHOWFLOOR_MEDIA_ADDRESSES`` (DESIGN.md §5):
  ``Connection.gather_candidates`` calls the module-level
  ``aioice.ice.get_host_addresses``, which lists every interface except
  loopback. ``apply()`` replaces that one function with ``media_addresses``,
  which reads the setting at call time. ``test_network.py`` fails if the hook
  moves.
- The sockets of a connection (``Connection._protocols``), so the media node
  can read the publisher's datagrams eagerly (``datagram_transports``; see
  ``network.read_ingest_eagerly``).
"""

from __future__ import annotations

import asyncio
import threading

import aioice
import aioice.ice
from django.conf import settings

_apply_lock = threading.Lock()


def apply() -> None:
    """Install the patch above; calling it again changes nothing. Called once,
    from ``LiveConfig.ready()``, before any peer connection exists."""
    with _apply_lock:
        if aioice.ice.get_host_addresses is not media_addresses:
            aioice.ice.get_host_addresses = media_addresses


def media_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """The addresses aioice may gather host candidates on."""
    addresses = []
    for address in settings.SHOWFLOOR_MEDIA_ADDRESSES:
        is_v6 = ":" in address
        if (is_v6 and use_ipv6) or (not is_v6 and use_ipv4):
            addresses.append(address)
    return addresses


def datagram_transports(
    connection: aioice.Connection | None,
) -> list[asyncio.BaseTransport]:
    """The asyncio transports of the connection's sockets (none for None)."""
    transports = []
    for protocol in getattr(connection, "_protocols", []):
        transport = getattr(protocol, "transport", None)
        if isinstance(transport, asyncio.BaseTransport):
            transports.append(transport)
    return transports
