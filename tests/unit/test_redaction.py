"""The one filter that keeps credentials out of log records."""

from __future__ import annotations

import logging

from fwwatch.redaction import Redaction


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, message, args, None)


def test_a_secret_that_contains_another_is_hidden_whole() -> None:
    # Given a URL and its /fail form, each with its own replacement
    redaction = Redaction()
    redaction.add("https://hc.example/key", "https://hc.example/<hidden>")
    redaction.add("https://hc.example/key/fail", "https://hc.example/<hidden fail>")
    # When a record quotes the longer one through its arguments
    line = record("HTTP Request: GET %s", "https://hc.example/key/fail")
    assert redaction.filter(line)
    # Then it is replaced whole, and the record no longer carries the argument
    assert line.getMessage() == "HTTP Request: GET https://hc.example/<hidden fail>"
    assert line.args is None


def test_a_record_without_secrets_is_left_as_it_was() -> None:
    redaction = Redaction()
    redaction.add("T000/B000/secret", "<hidden webhook>")
    line = record("HTTP Request: POST %s", "https://other.example/x")
    assert redaction.filter(line)
    assert (line.msg, line.args) == ("HTTP Request: POST %s", ("https://other.example/x",))
