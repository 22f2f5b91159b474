"""The task worker in a process of its own, for the test that kills it in the
middle of a batch of reminder emails (not a test module).

Started by ``test_audience.py`` with the test database's name in
``NOTICE_DB_NAME`` and a directory for the mail in ``NOTICE_MAIL_DIR``; runs
``manage.py db_worker --batch`` with a file mail backend that takes
``NOTICE_MAIL_DELAY`` seconds per message.
"""

from __future__ import annotations

import os
import time

from django.core.mail.backends.filebased import EmailBackend


class SlowFileBackend(EmailBackend):
    """Django's file backend, slowed down like a real mail server."""

    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        time.sleep(float(os.environ.get("NOTICE_MAIL_DELAY", "0.05")))
        return super().send_messages(email_messages)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["NOTICE_DB_NAME"]
    settings.EMAIL_BACKEND = "tests.shows.notice_worker.SlowFileBackend"
    settings.EMAIL_FILE_PATH = os.environ["NOTICE_MAIL_DIR"]
    django.setup()
    from django.core.management import call_command

    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0")


if __name__ == "__main__":
    main()
