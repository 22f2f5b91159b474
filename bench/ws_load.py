"""The websocket load generator of bench/chat_fanout.py, in several processes.

- Counting workers hold most viewers as raw asyncio protocols: after the HTTP
  upgrade they never parse a frame, they count the markers the senders put in
  each message with ``bytes.count`` (C speed) on the unmasked server frames; a
  marker split across two reads is counted once.
  While messages flow, a counting viewer asks the kernel to wake it only once
  a few frames wait (``SO_RCVLOWAT``), and back to every byte before the final
  count: on loopback the server's ``send`` pays for waking the reader, which a
  remote viewer would not cost it, and the generator spends far less CPU.
- One probe worker holds a sample of viewers that parse every frame (RFC 6455
  framing, then the JSON events) and time each marked message from the stamp the
  sender wrote in it. It does little else, so its clock reads the server's
  latency rather than the load generator's backlog.
- One sender process paces the messages to an absolute schedule (message ``i``
  at ``t0 + i / rate``; a late one goes at once and is never skipped), so all
  ``rate * seconds`` messages are really sent.

Each worker is a child process driven over a ``multiprocessing`` pipe by the
bench's main process, which holds no sockets itself. Stamps are wall-clock
microseconds (``time.time_ns``), shared by every process on the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import re
import resource
import socket
import time
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

MARK = b"~Mk"
MARKED = re.compile(r"~Mk(\d+)_(\d+)~")
HANDSHAKE_END = b"\r\n\r\n"


def marker(index: int, stamp_us: int) -> str:
    """The text of message ``index``, sent at ``stamp_us``."""
    return f"~Mk{index}_{stamp_us}~"


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def upgrade_request(port: int, path: str, cookie: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://127.0.0.1:{port}",
    ]
    if cookie:
        lines.append(f"Cookie: sessionid={cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask, RFC 6455 §5.3); only pongs and
    closes are sent by viewers, so payloads are short."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


# --- Viewers -------------------------------------------------------------------


class Tally:
    """What one worker's viewers received while ``counting`` was on."""

    def __init__(self) -> None:
        self.counting = False
        self.lost = 0
        self.latencies = array("d")


class Viewer(asyncio.Protocol):
    """Performs the upgrade, then counts markers without parsing frames."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.count = 0
        self.tail = b""
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.open.done():
            self.head += data
            head, sep, rest = self.head.partition(HANDSHAKE_END)
            if not sep:
                return
            self.head = b""
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.open.set_exception(ConnectionError(head[:80].decode()))
                return
            self.open.set_result(None)
            if not rest:
                return
            data = rest
        self.received(data)

    def received(self, data: bytes) -> None:
        tail = self.tail
        if self.tally.counting:
            found = data.count(MARK)
            if tail:
                # A marker that starts in the previous read and ends in this one.
                found += (tail + data[: len(MARK) - 1]).count(MARK)
            self.count += found
        keep = len(MARK) - 1
        self.tail = data[-keep:] if len(data) >= keep else (tail + data)[-keep:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.tally.lost += 1
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed before the upgrade"))


class Probe(Viewer):
    """Parses every frame and times every marked chat message."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(tally)
        self.buffer = bytearray()
        self.fragments: list[bytes] = []

    def received(self, data: bytes) -> None:
        now_us = time.time_ns() // 1000
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            if second & 0x80:
                raise ConnectionError("a server frame was masked")
            size, start = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            self.frame(first & 0x80, first & 0x0F, payload, now_us)

    def frame(self, fin: int, opcode: int, payload: bytes, now_us: int) -> None:
        if opcode == 0x9 and self.transport is not None:
            self.transport.write(masked_frame(0xA, payload))
            return
        if opcode in (0x1, 0x0):
            self.fragments.append(payload)
            if fin:
                text, self.fragments = b"".join(self.fragments), []
                self.message(json.loads(text), now_us)

    def message(self, decoded: Any, now_us: int) -> None:
        events = decoded if isinstance(decoded, list) else [decoded]
        for event in events:
            if not isinstance(event, dict) or event.get("type") != "chat.message":
                continue
            match = MARKED.fullmatch(str(event.get("text", "")))
            if match and self.tally.counting:
                self.count += 1
                self.tally.latencies.append((now_us - int(match.group(2))) / 1000)


async def open_viewer(
    loop: asyncio.AbstractEventLoop,
    make: Callable[[], Viewer],
    port: int,
    path: str,
    attempts: int = 3,
) -> Viewer:
    for attempt in range(attempts):
        try:
            _transport, viewer = await loop.create_connection(make, "127.0.0.1", port)
            assert viewer.transport is not None
            viewer.transport.write(upgrade_request(port, path))
            await asyncio.wait_for(viewer.open, 120)
            return viewer
        except (OSError, ConnectionError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def command_loop(
    conn: Connection, handlers: dict[str, Callable[..., Any]]
) -> None:
    """Answer the main process's commands (``(name, *args)``) until ``exit``."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    try:
        while True:
            name, *args = await inbox.get()
            if name == "exit":
                conn.send(("ok",))
                return
            reply = handlers[name](*args)
            if asyncio.iscoroutine(reply):
                reply = await reply
            conn.send(reply)
    finally:
        loop.remove_reader(conn.fileno())


def viewer_worker(
    conn: Connection, port: int, path: str, count: int, probe: bool, concurrency: int
) -> None:
    raise_fd_limit()
    asyncio.run(_viewer_worker(conn, port, path, count, probe, concurrency))


async def _viewer_worker(
    conn: Connection, port: int, path: str, count: int, probe: bool, concurrency: int
) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally()
    viewers: list[Viewer] = []
    kind = Probe if probe else Viewer

    async def connect() -> tuple[str, int, int]:
        gate = asyncio.Semaphore(concurrency)
        failures = 0

        async def one() -> None:
            nonlocal failures
            async with gate:
                try:
                    viewers.append(
                        await open_viewer(loop, lambda: kind(tally), port, path)
                    )
                except (OSError, ConnectionError, TimeoutError):
                    failures += 1

        await asyncio.gather(*(one() for _ in range(count)))
        return ("connected", len(viewers), failures)

    def start() -> tuple[str]:
        for viewer in viewers:
            viewer.count = 0
        tally.lost = 0
        tally.latencies = array("d")
        tally.counting = True
        return ("counting",)

    def batch(low_water: int) -> tuple[str, int]:
        """Let the kernel wake a counting viewer only once ``low_water`` bytes
        wait (``SO_RCVLOWAT``), so it reads several frames at a time; 1 turns
        it back to every frame (done before the final count)."""
        for viewer in viewers:
            sock = (
                viewer.transport.get_extra_info("socket") if viewer.transport else None
            )
            if sock is not None and not viewer.closed:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, low_water)
        return ("batched", low_water)

    def poll() -> tuple[str, int]:
        return ("received", sum(viewer.count for viewer in viewers))

    def stop(expected_each: int) -> tuple[str, dict[str, Any]]:
        tally.counting = False
        counts = [viewer.count for viewer in viewers]
        return (
            "stopped",
            {
                "received": sum(min(c, expected_each) for c in counts),
                "extra": sum(max(0, c - expected_each) for c in counts),
                "complete": sum(c >= expected_each for c in counts),
                "viewers": len(counts),
                "lost": tally.lost,
                "latencies": tally.latencies.tobytes(),
            },
        )

    async def close() -> tuple[str]:
        for viewer in viewers:
            if viewer.transport is not None:
                viewer.transport.close()
        await asyncio.sleep(0.2)
        return ("closed",)

    await command_loop(
        conn,
        {
            "connect": connect,
            "start": start,
            "poll": poll,
            "batch": batch,
            "stop": stop,
            "close": close,
        },
    )


# --- Senders -------------------------------------------------------------------


def sender_worker(
    conn: Connection,
    port: int,
    path: str,
    cookies: list[str],
    chat_frame: bool,
) -> None:
    asyncio.run(_sender_worker(conn, port, path, cookies, chat_frame))


async def _sender_worker(
    conn: Connection, port: int, path: str, cookies: list[str], chat_frame: bool
) -> None:
    import websockets

    senders: list[Any] = []
    drains: list[asyncio.Task[None]] = []

    async def drain(sender: Any) -> None:
        with contextlib.suppress(Exception):
            async for _ in sender:
                pass

    async def connect() -> tuple[str, int]:
        for cookie in cookies:
            sender = await websockets.connect(
                f"ws://127.0.0.1:{port}{path}",
                origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={cookie}"} if cookie else {},
                max_size=None,
                ping_interval=None,
            )
            senders.append(sender)
            drains.append(asyncio.create_task(drain(sender)))
        return ("connected", len(senders))

    async def send(total: int, rate: float) -> tuple[str, dict[str, float]]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        worst = 0.0
        for index in range(total):
            due = started + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                worst = max(worst, -delay)
            text = marker(index, time.time_ns() // 1000)
            frame = (
                json.dumps({"type": "chat.send", "text": text, "ref": index})
                if chat_frame
                else text
            )
            await senders[index % len(senders)].send(frame)
        return (
            "sent",
            {
                "sent": total,
                "send_seconds": loop.time() - started,
                "worst_late_ms": worst * 1000,
            },
        )

    async def close() -> tuple[str]:
        for sender in senders:
            with contextlib.suppress(Exception):
                await sender.close()
        for task in drains:
            task.cancel()
        return ("closed",)

    await command_loop(conn, {"connect": connect, "send": send, "close": close})


# --- Driving the workers from the main process --------------------------------


class Worker:
    """A child process and the pipe to it."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()

    def ask(self, *command: Any) -> None:
        self.conn.send(command)

    def answer(self, timeout: float = 600) -> tuple[Any, ...]:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"load worker {self.process.pid} did not answer")
        reply: tuple[Any, ...] = self.conn.recv()
        return reply

    def call(self, *command: Any, timeout: float = 600) -> tuple[Any, ...]:
        self.ask(*command)
        return self.answer(timeout)

    def finish(self) -> None:
        with contextlib.suppress(Exception):
            self.call("exit", timeout=10)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal shares."""
    return [total // parts + (i < total % parts) for i in range(parts)]
