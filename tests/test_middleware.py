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
