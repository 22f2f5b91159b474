"""The garbage-collection policy of a process holding many sockets
(live/hub/collector.py): frozen while it holds enough of them, so full
collections stop walking them; thawed and collected once enough have closed,
or after a while, so the cyclic garbage they leave is reclaimed."""

from __future__ import annotations

import gc
import weakref

import pytest

from live.hub import collector as collector_module
from live.hub.collector import Collector

pytestmark = [pytest.mark.django_db(transaction=True)]


class Cycle:
    """Garbage only the cyclic collector can free."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy(monkeypatch):
    monkeypatch.setattr(collector_module, "FREEZE_MIN_SOCKETS", 4)
    # What config/asgi.py froze when another test imported it.
    gc.unfreeze()
    collector = Collector()
    yield collector
    if collector._after_collection in gc.callbacks:
        gc.callbacks.remove(collector._after_collection)
    gc.unfreeze()
    gc.collect()


def held(policy: Collector, sockets: int) -> Cycle:
    """Open ``sockets`` sockets; returns a cycle for the caller to hold until
    the freeze and drop after it."""
    for _ in range(sockets):
        policy.socket_opened()
    return Cycle()


def test_below_the_threshold_nothing_is_frozen(policy):
    held(policy, 3)
    policy.tend(now=0.0)
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert policy.frozen_at is None


def test_held_sockets_are_frozen_and_thawed_once_a_quarter_closed(policy):
    kept = held(policy, 8)
    ref = weakref.ref(kept)
    policy.tend(now=0.0)
    assert gc.get_freeze_count() > 0
    assert policy.held_at_freeze == 8
    # Frozen: a full collection neither walks nor frees it.
    del kept
    gc.collect()
    assert ref() is not None
    # One socket closed of eight: not yet.
    policy.socket_closed()
    policy.tend(now=1.0)
    assert ref() is not None
    # Two of eight: thawed and collected.
    policy.socket_closed()
    policy.tend(now=2.0)
    assert ref() is None
    # Six held still: what they hold is frozen again.
    assert policy.frozen_at == 2.0
    assert policy.held_at_freeze == 6


def test_a_thaw_comes_after_thaw_seconds_without_closes(policy):
    kept = held(policy, 4)
    ref = weakref.ref(kept)
    policy.tend(now=100.0)
    del kept
    policy.tend(now=100.0 + collector_module.THAW_SECONDS - 1)
    gc.collect()
    assert ref() is not None
    policy.tend(now=100.0 + collector_module.THAW_SECONDS)
    assert ref() is None


def test_a_full_collection_freezes_its_survivors_without_waiting_for_tend(policy):
    """While an audience arrives the event loop may be too busy to tend: the
    survivors of each full collection are frozen at once."""
    held(policy, 4)
    gc.collect()
    assert gc.get_freeze_count() > 0
    assert policy.frozen_at is not None


async def test_every_socket_is_counted_while_it_is_open(connect, live_show, viewer):
    from live.hub.collector import collector

    before = collector.held
    socket = await connect(live_show, viewer)
    assert collector.held == before + 1
    closed = collector.closed
    await socket.comm.disconnect(timeout=2)
    assert collector.held == before
    assert collector.closed == closed + 1


def test_what_the_process_loaded_is_frozen_and_its_garbage_collected_first(policy):
    """``freeze_loaded`` (called by config/asgi.py) collects, then freezes
    everything alive: a later full collection walks none of it."""
    garbage = weakref.ref(Cycle())
    alive = Cycle()
    policy.freeze_loaded()
    assert garbage() is None
    assert gc.get_freeze_count() > 1000
    assert all(obj is not alive for obj in gc.get_objects())
