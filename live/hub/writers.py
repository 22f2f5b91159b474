"""The writers that put frames on sockets: the one module that touches Twisted.

``AsgiWriter`` goes through the ASGI ``send`` callable (any server, and the
tests' communicator). ``DaphneWriter`` is Daphne's fast path: it writes the
frame, built once per batch, straight to the connection's socket. It reads
Twisted's and autobahn's internals (``transport.dataBuffer``, ``offset``,
``_tempDataLen``, ``socket``, ``protocol.state``), checked against the versions
in ``live.versions``; nothing else in the project does.

``buffered()`` and ``unsent()`` are the slow-reader measure. ``buffered()`` is
what the server itself holds (Twisted's buffer: no system call), ``unsent()``
adds the kernel's send queue (``SIOCOUTQ``). A socket's kernel send buffer is
capped (``SEND_BUFFER_BYTES``): on a socket that stopped reading the kernel's
buffers fill first, and uncapped they grew to megabytes on loopback, which the
old Twisted-only count never passed. So a healthy socket costs one attribute
read per frame, and only one the server already holds data for also asks the
kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import socket
import struct
import termios
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# Linux's SIOCOUTQ is TIOCOUTQ: bytes in the socket's send queue.
SIOCOUTQ = termios.TIOCOUTQ
# The kernel's send buffer per room socket (Linux doubles it for its own
# bookkeeping). Left alone, it grows to megabytes for a client that stopped
# reading, and nothing would be left over for the server to count; a room
# socket carries a few kilobytes a second, so this is plenty for a healthy one.
SEND_BUFFER_BYTES = 64 * 1024


class AsgiWriter:
    """Writes through the ASGI ``send`` callable from a small per-socket task,
    bounded by the bytes waiting."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.send = send
        self.queue: deque[tuple[str, int]] = deque()
        self.size = 0
        self.wake = asyncio.Event()
        self.closed = False
        self.idle = asyncio.Event()
        self.idle.set()
        self.task = asyncio.get_running_loop().create_task(self._run())

    def buffered(self) -> int:
        return self.size

    def unsent(self) -> int:
        return self.size

    def write(self, text: str, data: bytes) -> None:
        self.queue.append((text, len(data)))
        self.size += len(data)
        self.idle.clear()
        self.wake.set()

    async def _run(self) -> None:
        while not self.closed:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                text, size = self.queue.popleft()
                self.size -= size
                await self.send({"type": "websocket.send", "text": text})
            self.idle.set()

    async def drain(self) -> None:
        """Wait until every queued frame was handed to the server."""
        if not self.closed:
            await asyncio.wait_for(self.idle.wait(), timeout=5)

    def abort(self) -> None:
        self.stop()

    def stop(self) -> None:
        self.closed = True
        self.task.cancel()


_last_frame: tuple[bytes, bytes] = (b"", b"")


def websocket_frame(data: bytes) -> bytes:
    """One unmasked, unfragmented text frame (RFC 6455 §5.2) around ``data``;
    a flush frames its batch once and reuses it for every socket."""
    global _last_frame
    if _last_frame[0] is data:
        return _last_frame[1]
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    framed = header + data
    _last_frame = (data, framed)
    return framed


class DaphneWriter:
    """Daphne's fast path.

    A frame written through autobahn and Twisted costs a buffer append, an
    ``add_writer``/``remove_writer`` pair and a loop callback per socket; most of
    the per-viewer cost. When the connection's Twisted buffer is empty (so
    nothing written earlier can be overtaken) and it is plain TCP, the frame,
    built once per batch, goes to the kernel with one ``send``; whatever the
    kernel does not take is handed to Twisted, which keeps the order. Otherwise
    the frame goes through autobahn as usual.
    """

    def __init__(self, server: Any, protocol: Any) -> None:
        self.server = server
        self.protocol = protocol
        transport = protocol.transport
        self.raw = (
            hasattr(transport, "socket")
            and hasattr(transport, "dataBuffer")
            and not getattr(transport, "TLS", False)
            and type(transport).__module__ == "twisted.internet.tcp"
        )
        self.fd = -1
        self._outq = bytearray(4)
        if self.raw:
            self.fd = transport.socket.fileno()
            with contextlib.suppress(OSError):
                transport.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES
                )

    def buffered(self) -> int:
        """Bytes held in Twisted's buffer (cheap: no system call)."""
        transport = self.protocol.transport
        try:
            return int(
                len(transport.dataBuffer) - transport.offset + transport._tempDataLen
            )
        except AttributeError:
            return 0

    def unsent(self) -> int:
        """Twisted's buffer plus the kernel's send queue (one system call)."""
        queued = 0
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.fd, SIOCOUTQ, self._outq)
                queued = int.from_bytes(self._outq, "little", signed=True)
        return self.buffered() + max(queued, 0)

    def write(self, text: str, data: bytes) -> None:
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return
        if not self.raw:
            protocol.sendMessage(data, False)
            return
        framed = websocket_frame(data)
        transport = protocol.transport
        if transport.disconnecting or transport.disconnected:
            return
        if self.buffered():
            transport.write(framed)
            return
        try:
            sent = transport.socket.send(framed)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # Twisted notices the broken connection on its own.
        if sent < len(framed):
            transport.write(framed[sent:])

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.protocol.transport.abortConnection()

    def stop(self) -> None:
        pass


Writer = AsgiWriter | DaphneWriter


def make_writer(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Writer:
    """The fastest writer the server behind ``send`` allows.

    Channels' session middleware wraps ``send`` only to save the session on HTTP
    responses; for ``websocket.send`` it passes through, so it is unwrapped to
    find Daphne's own ``send``.
    """
    raw: Any = send
    for _ in range(5):
        inner = getattr(getattr(raw, "__self__", None), "real_send", None)
        if inner is None:
            break
        raw = inner
    if isinstance(raw, functools.partial) and raw.args:
        server = getattr(raw.func, "__self__", None)
        protocol = raw.args[0]
        if (
            type(server).__module__ == "daphne.server"
            and hasattr(protocol, "sendMessage")
            and hasattr(server, "connections")
        ):
            return DaphneWriter(server, protocol)
    return AsgiWriter(send)
