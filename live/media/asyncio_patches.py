"""Everything this project reads or replaces inside asyncio, and why.

asyncio's datagram transport reads one datagram per wake-up. When the loop is
busy sending to many viewers, each turn of the loop takes longer, the
publisher's packets pile up in the kernel's socket buffer, and the whole show
falls seconds behind the host. ``read_datagrams_eagerly`` swaps the reader the
selector event loop runs for a socket (``BaseSelectorEventLoop._remove_reader``
and ``_add_reader``) for one that reads several datagrams, the way
``_SelectorDatagramTransport._read_ready`` reads one (its ``_sock``,
``_sock_fd``, ``_conn_lost`` and ``_protocol``).

These are private to CPython's asyncio, checked against Python 3.11 (the
project's ``requires-python``); ``test_network.py`` fails if they move. With
another event loop (uvloop) nothing changes. Nothing is patched globally, so
there is no ``apply()``.
"""

from __future__ import annotations

import asyncio
from asyncio import selector_events
from typing import Any

_DatagramTransport: type[Any] = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


def read_datagrams_eagerly(transport: asyncio.BaseTransport, reads: int) -> bool:
    """Make the running loop read up to ``reads`` datagrams from
    ``transport``'s socket each time it is readable; False, and nothing
    changed, if the loop or the transport is not asyncio's selector kind."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, selector_events.BaseSelectorEventLoop) or not isinstance(
        transport, _DatagramTransport
    ):
        return False
    selector_loop: Any = loop
    selector_loop._remove_reader(transport._sock_fd)
    selector_loop._add_reader(transport._sock_fd, _read_all, transport, reads)
    return True


def _read_all(transport: Any, reads: int) -> None:
    """``_SelectorDatagramTransport._read_ready``, in a loop."""
    for _ in range(reads):
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
