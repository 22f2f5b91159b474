"""Checkout's background tasks, run by the django-tasks worker
(``manage.py db_worker``; a thread in ``manage.py demo``).

django-tasks runs a task once and records its outcome; it does not retry. A
task here that needs another try enqueues itself again with ``run_after``.
"""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from checkout import emails


@task()
def order_email_deliver(*, email_id: int) -> str:
    """Send one buyer's email (``emails.order_email_attempt``). When the mail
    server failed, enqueue the next attempt after ``emails.retry_delay``, up
    to ``emails.MAX_ATTEMPTS`` in all. Returns the attempt's outcome."""
    attempt = emails.order_email_attempt(email_id=email_id)
    if attempt.outcome == "retry":
        order_email_deliver.using(
            run_after=timezone.now() + emails.retry_delay(attempt.attempts)
        ).enqueue(email_id=email_id)
    return attempt.outcome
