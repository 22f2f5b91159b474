"""Django's database sessions without two round trips a guest's first order
paid for (``SESSION_ENGINE``).

* No ``exists()`` query before a new key is used: the INSERT's primary key
  already refuses a duplicate, and ``create()`` then tries another key.
* A session created earlier in the request and unchanged since is not written
  a second time when ``SessionMiddleware`` saves it for the response.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    # The data as this request last wrote it, serialized (a nested value
    # changed in place must count as a change); None when it has not written.
    _written: bytes | None = None

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    def _serialized(self) -> bytes:
        # What the request holds now (after a save, the data just written).
        data: dict[str, Any] = getattr(self, "_session_cache", {})
        return bytes(self.serializer().dumps(data))

    def _unchanged(self) -> bool:
        return self._written is not None and self._written == self._serialized()

    def save(self, must_create: bool = False) -> None:
        if not must_create and self.session_key is not None and self._unchanged():
            return
        super().save(must_create=must_create)
        if self.session_key is not None:
            self._written = self._serialized()

    async def asave(self, must_create: bool = False) -> None:
        if not must_create and self.session_key is not None and self._unchanged():
            return
        await super().asave(must_create=must_create)
        if self.session_key is not None:
            self._written = self._serialized()
