"""Log filters for the console handler (``LOGGING`` in config/settings.py)."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx that Django logs (a refused page, a missing one) keeps its one
    line but not the traceback of the ``PermissionDenied`` or ``Http404``
    behind it: that is how the view said no, not a fault. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
