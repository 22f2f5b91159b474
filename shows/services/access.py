"""A private show's access code: the one check behind the show page's form and
the media routes (WHEP, HLS, the recording), under one limit.

Each client address may try ``ACCESS_CODE_ATTEMPTS`` wrong codes per show in a
window of ``ACCESS_CODE_WINDOW_SECONDS``; after that even the right code waits
for the window to end. A try is counted *before* the code is compared and given
back when it was right, so concurrent tries cannot get past the limit (a count
read, compared and then written lets every try in flight through).
"""

from __future__ import annotations

from django.utils.crypto import constant_time_compare, salted_hmac

from realtime import limiter
from shows.exceptions import TooManyAttempts
from shows.models import Show

# Wrong access codes one client may try per show before it has to wait.
ACCESS_CODE_ATTEMPTS = 10
ACCESS_CODE_WINDOW_SECONDS = 15 * 60


def _attempts_key(*, show: Show, client: str) -> str:
    # The address is kept only as a digest.
    digest = salted_hmac("shows.access_attempts", client).hexdigest()[:24]
    return f"access-attempts:{show.pk}:{digest}"


def access_code_check(*, show: Show, code: str, client: str) -> bool:
    """Whether ``code`` is the private ``show``'s access code, compared in
    constant time; ``client`` is the caller's address. A wrong code counts
    against the client's limit for the show, a right one does not.

    Raises ``TooManyAttempts`` (with ``retry_after``) once the client has tried
    ``ACCESS_CODE_ATTEMPTS`` wrong codes in the window, whatever ``code`` is.
    Broadcasts nothing."""
    key = _attempts_key(show=show, client=client)
    wait = limiter.take_window(
        key, limit=ACCESS_CODE_ATTEMPTS, seconds=ACCESS_CODE_WINDOW_SECONDS
    )
    if wait > 0:
        raise TooManyAttempts(retry_after=wait)
    right = bool(show.access_code) and constant_time_compare(code, show.access_code)
    if right:
        limiter.give_back_window(key)
    return right
