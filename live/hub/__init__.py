"""Show-room fan-out: one subscription per show per process, local delivery.

``bus`` is the sync side (services publish after commit, rate limits);
``core`` is the asyncio side (the per-process hub that feeds the sockets).
See docs/protocol.md for the wire format and the reasons behind the design.
"""

from live.hub.bus import get_bus
from live.hub.core import Hub, Viewer, get_hub

__all__ = ["Hub", "Viewer", "get_bus", "get_hub"]
