"""The shows app's background tasks, run by the django-tasks worker
(``manage.py db_worker``; a thread in ``manage.py demo``)."""

from __future__ import annotations

import logging

from django.utils import timezone
from django_tasks import task

from shows import emails

logger = logging.getLogger(__name__)


@task()
def invitation_email_deliver(
    *, invitation_id: int, version: int, attempt: int = 1
) -> str:
    """Send a team invitation's email (``emails.invitation_email_attempt``).
    When the mail server failed, enqueue the next attempt after
    ``emails.retry_delay``, up to ``emails.MAX_ATTEMPTS`` in all. Returns the
    attempt's outcome."""
    outcome = emails.invitation_email_attempt(
        invitation_id=invitation_id, version=version
    )
    if outcome == "failed":
        if attempt < emails.MAX_ATTEMPTS:
            invitation_email_deliver.using(
                run_after=timezone.now() + emails.retry_delay(attempt)
            ).enqueue(invitation_id=invitation_id, version=version, attempt=attempt + 1)
            return "retry"
        logger.error(
            "gave up on the email of invitation %s after %s attempts",
            invitation_id,
            attempt,
        )
    return outcome
