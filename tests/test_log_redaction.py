"""Callback secrets never reach the access log."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from crm.log_redaction import RedactSecrets


def test_the_access_logger_redacts_callback_keys(app: Flask, caplog: pytest.LogCaptureFixture):
    assert app is not None  # building the app installs the filter
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info(
            '%s - - "%s" %s',
            "127.0.0.1",
            "POST /webhooks/africastalking/ussd?key=s3cret HTTP/1.1",
            200,
        )
    [record] = caplog.records
    assert "s3cret" not in record.getMessage()
    assert "?key=[redacted] HTTP/1.1" in record.getMessage()


def test_other_parameters_are_kept():
    record = logging.LogRecord("x", logging.INFO, "", 0, "GET /a?i=1&key=abc&j=2", (), None)
    RedactSecrets().filter(record)
    assert record.getMessage() == "GET /a?i=1&key=[redacted]&j=2"
