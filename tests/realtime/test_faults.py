"""Nothing a viewer was told was sent is lost when a dependency fails.

Each test runs one scenario of ``bench/faults.py`` (its docstring defines the
figures): 200 anonymous viewers on two Daphne processes, the host sending ten
chat messages a second, one fault in the middle, and some viewers cut off
halfway through the outage and again as it ends (they resume with
``?since=``). Every message the host got an ``ack`` for reaches every viewer
exactly once, with no seq skipped, and every viewer has a new message within
five seconds of the dependency's return. The servers are the harness's own
(PostgreSQL, Redis, Daphne on free loopback ports), shared by this module's
tests on one worker; the scenarios themselves take turns.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.faults import Faults, Plan, ServiceBinaryMissing, harness
from tests.conftest import missing_service

# One worker runs the three scenarios on one harness (its PostgreSQL migrated
# and seeded once): spread over two workers, each built a harness of its own
# (~40 s on the loaded machine) and one waited idle for the other's turn.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

PLAN = Plan(viewers=200, rate=10.0, before_seconds=2.0, after_seconds=3.0)
RECOVERY_SECONDS = 5.0


@pytest.fixture(scope="module")
def faults() -> Iterator[Faults]:
    try:
        with harness(PLAN) as running:
            yield running
    except ServiceBinaryMissing as exc:
        missing_service(str(exc))


@pytest.fixture(autouse=True)
def one_fault_at_a_time() -> Iterator[None]:
    """Scenarios measure seconds on a small machine: two of them at once (the
    other xdist worker, another checkout's run) would measure each other. So
    they take turns, through a lock file; the harnesses may start meanwhile."""
    with (Path(tempfile.gettempdir()) / "showfloor-faults.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def assert_nothing_lost(result: dict[str, Any]) -> None:
    assert result["viewers"] == PLAN.viewers, result
    # Messages went through on both sides of the fault: nothing passes vacuously.
    assert result["acked_before"] > 0, result
    assert result["acked_after"] > 0, result
    assert result["acked_lost"] == 0, result
    assert result["duplicates"] == 0, result
    assert result["seq_gaps"] == 0, result
    assert result["gave_up"] == 0, result
    assert result["recovery_s_max"] is not None, result
    assert result["recovery_s_max"] <= RECOVERY_SECONDS, result


def test_a_redis_restart_loses_no_acknowledged_message(faults: Faults) -> None:
    """Redis is killed (every key gone), down 5 s, started again empty; the
    viewers cut off meanwhile resume from PostgreSQL."""
    result = faults.run("redis_restart", outage_seconds=5, churn=0.1)
    assert_nothing_lost(result)
    assert result["resumes"] == result["dropped"] > 0, result


def test_a_killed_process_loses_no_acknowledged_message(faults: Faults) -> None:
    """One of the two processes is SIGKILLed; its viewers resume on the other."""
    result = faults.run("process_kill")
    assert_nothing_lost(result)
    assert result["resumes"] >= PLAN.viewers // 2, result


def test_a_database_outage_loses_nothing_and_answers_503_fast(faults: Faults) -> None:
    """PostgreSQL is stopped for 15 s: chat is refused meanwhile (never
    acknowledged and lost), every HTTP answer is a 503 within a second, and
    the viewers cut off meanwhile resume once it is back."""
    result = faults.run("db_outage", outage_seconds=15, churn=0.03)
    assert_nothing_lost(result)
    assert result["resumes"] == result["dropped"] > 0, result
    assert result["answers"] > 0, result
    assert result["answers_not_503"] == 0, result
    assert result["answer_ms_max"] < 1000, result
