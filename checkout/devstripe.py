"""Run localstripe (a fake of Stripe's API, GPL-3.0, dev and demo only) on loopback.

``python -m checkout.devstripe --port 8420`` serves it on 127.0.0.1 only: the
package's own command binds every interface and re-pickles its whole store to a
shared file in /tmp on every write, so this runner binds loopback and keeps the
store in memory.
"""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess  # nosec B404 - starts localstripe, our own module
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


def serve(port: int, host: str = "127.0.0.1") -> None:
    from aiohttp import web
    from localstripe import resources, server

    # Keep the store in this process: no shared pickle file, no write per call.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"localstripe exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"localstripe did not listen on 127.0.0.1:{port}")


def register_webhook(base_url: str, webhook_url: str, secret: str) -> None:
    """Make localstripe deliver its (signed) events to ``webhook_url``."""
    body = urllib.parse.urlencode({"url": webhook_url, "secret": secret}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base_url}/_config/webhooks/showfloor",
        data=body,
        headers={"Authorization": "Bearer sk_test_showfloor"},
        method="POST",
    )
    # localstripe's loopback http:// URL, built here; never a caller's.
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310 - see above
        if response.status != 200:
            raise RuntimeError(f"localstripe refused the webhook: {response.status}")


def start_for_demo(
    webhook_url: str, secret: str, *, timeout: float = 20
) -> tuple[subprocess.Popen[bytes], str]:
    """Start localstripe as a child process on a free loopback port, wait for
    it, register ``webhook_url`` with ``secret``; returns (process, base URL).
    The caller terminates the process."""
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603  # nosec B603 - our module, fixed arguments
        [sys.executable, "-m", "checkout.devstripe", "--port", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(port, proc, timeout)
        register_webhook(base_url, webhook_url, secret)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=10)
        raise
    return proc, base_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
