"""Show-room fan-out: one subscription per show per process, local delivery.

``core`` is the per-process hub that feeds the sockets; ``writers`` put its
frames on them. The bus, the outbox and the backends the hub stands on are in
``realtime``. See docs/protocol.md for the wire format and the reasons.
"""

from live.hub.core import Hub, Viewer, get_hub

__all__ = ["Hub", "Viewer", "get_hub"]
