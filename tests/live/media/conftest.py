"""Fixtures for the media node: an isolated media directory, the node closed
after every test, and an HTTP poster for the WHIP/WHEP clients that goes through
the whole Django stack in this event loop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.test import AsyncClient


@pytest.fixture
def media_settings(settings: Any, tmp_path: Any) -> Any:
    settings.SHOWFLOOR_HLS_DIR = tmp_path / "hls"
    settings.SHOWFLOOR_RECORDINGS_DIR = tmp_path / "recordings"
    settings.SHOWFLOOR_VIDEO_MAX_WIDTH = 320
    settings.SHOWFLOOR_VIDEO_MAX_HEIGHT = 240
    settings.SHOWFLOOR_VIDEO_BITRATE = 500_000
    settings.SHOWFLOOR_VIDEO_PRESET = "ultrafast"
    settings.SHOWFLOOR_MEDIA_ADDRESSES = ["127.0.0.1"]
    settings.SHOWFLOOR_ICE_SERVERS = "[]"
    return settings


@pytest.fixture
async def node(media_settings: Any, transactional_db: None) -> AsyncIterator[Any]:
    from live.media.node import get_node

    media_node = get_node()
    yield media_node
    await media_node.close_all()
    from asgiref.sync import sync_to_async
    from django.db import connections

    # The views reached the database from asgiref's thread: close that
    # connection so the test database can be dropped.
    await sync_to_async(connections.close_all)()


@pytest.fixture
def http() -> Any:
    """``post(url, sdp, token)``, ``delete(url, token)``, ``get(url)`` and the
    studio's ``end_show(slug, staff)`` through Django."""
    client = AsyncClient()

    class Http:
        async def post(self, url: str, sdp: str, token: str):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.post(
                url, data=sdp, content_type="application/sdp", headers=headers
            )
            return (
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                response.content.decode(),
            )

        async def delete(self, url: str, token: str = ""):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await client.delete(url, headers=headers)

        async def get(self, url: str):
            return await client.get(url)

        async def end_show(self, slug: str, staff: Any):
            """The studio's "End show" (``stream/end``), as ``staff``."""
            await client.aforce_login(staff)
            return await client.post(f"/live/{slug}/stream/end")

    return Http()


@pytest.fixture
def thread_baseline() -> set[int]:
    return {t.ident or 0 for t in threading.enumerate()}
