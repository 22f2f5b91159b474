"""The middleware stack under ASGI: one thread for the whole stack
(config/middleware.py), not a hop between the event loop and a thread for
every hook."""

from __future__ import annotations

import pytest
from asgiref.sync import SyncToAsync
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_request_crosses_into_a_thread_only_a_few_times(monkeypatch):
    hops = 0
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        nonlocal hops
        hops += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    response = await AsyncClient().get("/", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    # Five here (the stack, the view, Django's request_started and
    # request_finished signals, the test client's own); seventeen with every
    # middleware hook in a hop of its own.
    assert hops <= 6, hops


def test_a_refused_page_logs_one_line_without_a_traceback(client, brand, moderator):
    """A 403 in the workspace is how a view says no: the console gets Django's
    line, not the PermissionDenied traceback (a 500 keeps its traceback)."""
    import io
    import logging

    from config.logging import ClientErrorsWithoutTraceback

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ClientErrorsWithoutTraceback())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client.force_login(moderator)
        assert client.get(f"/brand/{brand.slug}/settings/").status_code == 403
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "Forbidden" in written
    assert "Traceback" not in written
    record = logging.LogRecord("django.request", logging.ERROR, "", 0, "x", (), None)
    record.status_code = 500
    record.exc_info = (ValueError, ValueError("boom"), None)
    ClientErrorsWithoutTraceback().filter(record)
    assert record.exc_info is not None
