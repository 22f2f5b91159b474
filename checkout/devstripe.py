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


def serve(port: int, host: str = "127.0.0.1") -> None:
    from aiohttp import web
    from localstripe import resources, server

    # Keep the store in this process: no shared pickle file, no write per call.
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
