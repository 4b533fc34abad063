"""Keep callback secrets out of access logs.

Africa's Talking callbacks carry their shared secret in the URL (``?key=...``), and access logs
(werkzeug's in development, gunicorn's when enabled) write request lines as they came.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAM = re.compile(r"([?&](?:key|token)=)[^&\s\"']+", re.IGNORECASE)
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


class RedactSecrets(logging.Filter):
    """Replace secret query parameter values with ``[redacted]`` in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_PARAM.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install() -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
