"""The access-code check shared by the show page and the media routes: wrong
codes per address and show are limited, atomically, in Redis or in memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from realtime import limiter
from realtime import redis as rclient
from shows.exceptions import TooManyAttempts
from shows.models import Show
from shows.services.access import (
    ACCESS_CODE_ATTEMPTS,
    ACCESS_CODE_WINDOW_SECONDS,
    access_code_check,
)
from tests.conftest import missing_service

pytestmark = pytest.mark.django_db

CLIENT = "203.0.113.7"


def clear_access_limits() -> None:
    limiter._memory.windows.clear()
    if settings.REDIS_URL:
        client = rclient.sync_client()
        keys = list(client.scan_iter(rclient.key("access-attempts", "*")))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def access_limits_cleared() -> Iterator[None]:
    clear_access_limits()
    yield
    clear_access_limits()


@pytest.fixture(params=["redis", "memory"])
def backend(request: Any, settings: Any) -> str:
    """Each test runs against Redis and against the memory stand-in."""
    if request.param == "redis" and not settings.REDIS_URL:
        missing_service("Redis on 127.0.0.1:6379")
    if request.param == "memory":
        settings.REDIS_URL = ""
    return str(request.param)


@pytest.fixture
def private_show(show: Show) -> Show:
    show.access_code = "Sesame-42"
    show.save(update_fields=["access_code"])
    return show


def test_right_code_opens_and_does_not_count(backend, private_show):
    """The right code is accepted as often as it is sent and leaves the whole
    allowance of wrong codes."""
    for _ in range(ACCESS_CODE_ATTEMPTS * 2):
        assert access_code_check(show=private_show, code="Sesame-42", client=CLIENT)
    for _ in range(ACCESS_CODE_ATTEMPTS):
        assert not access_code_check(show=private_show, code="guess", client=CLIENT)


def test_right_code_before_the_limit_opens(backend, private_show):
    """Nine wrong codes, then the right one: accepted."""
    for _ in range(ACCESS_CODE_ATTEMPTS - 1):
        assert not access_code_check(show=private_show, code="guess", client=CLIENT)
    assert access_code_check(show=private_show, code="Sesame-42", client=CLIENT)


def test_ten_wrong_codes_lock_out_even_the_right_one(backend, private_show):
    """After ten wrong codes the right one is refused with the seconds to wait,
    and the refused tries do not lengthen the wait."""
    for _ in range(ACCESS_CODE_ATTEMPTS):
        assert not access_code_check(show=private_show, code="guess", client=CLIENT)
    for code in ("Sesame-42", "guess", "Sesame-42"):
        with pytest.raises(TooManyAttempts) as refused:
            access_code_check(show=private_show, code=code, client=CLIENT)
        assert 0 < refused.value.retry_after <= ACCESS_CODE_WINDOW_SECONDS
    assert refused.value.code == "too_many_attempts"
    assert "Too many wrong codes" in refused.value.message


def test_limit_is_per_address_and_per_show(backend, private_show, brand):
    """Another address, or another private show, still has its own allowance."""
    other = Show.objects.create(
        brand=brand,
        slug="other-private",
        title="Other",
        scheduled_at=private_show.scheduled_at,
        access_code="Other-7",
    )
    for _ in range(ACCESS_CODE_ATTEMPTS):
        access_code_check(show=private_show, code="guess", client=CLIENT)
    assert access_code_check(show=private_show, code="Sesame-42", client="198.51.100.1")
    assert access_code_check(show=other, code="Other-7", client=CLIENT)


def test_empty_code_never_opens(backend, private_show):
    """An empty code is wrong (and counts), even for a show without a code."""
    assert not access_code_check(show=private_show, code="", client=CLIENT)
    private_show.access_code = ""
    assert not access_code_check(show=private_show, code="", client=CLIENT)


def test_concurrent_wrong_codes_cannot_pass_the_limit(backend, private_show):
    """Forty wrong codes sent at the same moment from one address: exactly ten
    are compared, the other thirty are refused (a count read, then written, lets
    every try in flight through)."""
    tries = 40
    start = threading.Barrier(tries)
    wrong: list[str] = []
    refused: list[float] = []
    errors: list[BaseException] = []

    def guess(number: int) -> None:
        start.wait()
        try:
            if access_code_check(
                show=private_show, code=f"guess-{number}", client=CLIENT
            ):
                errors.append(AssertionError("a wrong code opened the show"))
            else:
                wrong.append(f"guess-{number}")
        except TooManyAttempts as exc:
            refused.append(exc.retry_after)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(wrong) == ACCESS_CODE_ATTEMPTS
    assert len(refused) == tries - ACCESS_CODE_ATTEMPTS
    with pytest.raises(TooManyAttempts):
        access_code_check(show=private_show, code="Sesame-42", client=CLIENT)


def test_redis_window_ends_and_counts_again(redis_client, settings):
    """The Redis window expires with its first try; a give-back after that does
    not leave a key without expiry."""
    key = "access-attempts:window-test"
    assert limiter.take_window(key, limit=1, seconds=0.2) == 0
    assert limiter.take_window(key, limit=1, seconds=0.2) > 0
    full = rclient.key(key)
    assert 0 < redis_client.pttl(full) <= 200
    redis_client.delete(full)
    limiter.give_back_window(key)
    assert not redis_client.exists(full)
    assert limiter.take_window(key, limit=1, seconds=0.2) == 0
