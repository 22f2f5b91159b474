"""Which database lifetime this process's room events belong to.

Redis keeps, per show, the last seq it published and a capped log; the seqs
come from PostgreSQL. A database created afresh (a new test run, a new
deployment on an old Redis, a backup restored into a new database) starts its
seqs again at 1, and a Redis that still held the old last seq would skip every
new event as already published. So those keys carry the database's identity: its
OID in the PostgreSQL server, which changes when the database is created again
and not when rows are deleted (reading it needs no privilege). SQLite is
used only without Redis (the embedded demo), where the in-process bus lives
and dies with the process.
"""

from __future__ import annotations

import threading

from asgiref.sync import sync_to_async
from django.db import connection

_known: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def _key() -> tuple[str, str]:
    settings = connection.settings_dict
    return (str(settings.get("HOST") or ""), str(settings.get("NAME") or ""))


def current() -> str:
    """The current database's lifetime (one query per process, then cached)."""
    key = _key()
    with _lock:
        known = _known.get(key)
    if known is not None:
        return known
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            )
            (oid,) = cursor.fetchone() or (0,)
        found = f"db{oid}"
    else:
        found = connection.vendor
    with _lock:
        _known[key] = found
    return found


async def acurrent() -> str:
    """``current()`` from async code (a thread hop only the first time)."""
    with _lock:
        known = _known.get(_key())
    if known is not None:
        return known
    return str(await sync_to_async(current, thread_sensitive=False)())
