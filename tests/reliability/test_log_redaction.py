"""Secrets registered with ``redact_in_logs`` never reach a log handler: not through a
handler added after start-up, not through another logger's own handler, not inside a
traceback (``exc_info``) or a stack (``stack_info``). No services needed."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from scorer.kafka.redact import redact_in_logs


@pytest.fixture
def secret() -> str:
    value = f"s3cret-{uuid.uuid4().hex}"
    redact_in_logs(value)
    return value


@pytest.fixture
def late_handler() -> Iterator[io.StringIO]:
    """A handler on a logger of its own, added after the secret was registered (as a
    deployment adding a file or syslog handler would), with the full default formatting."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def _logger(out: io.StringIO) -> logging.Logger:
    return next(lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger) and any(getattr(h, "stream", None) is out for h in lg.handlers))


def test_message_and_bytes_form_are_masked_in_a_handler_added_later(secret: str, late_handler: io.StringIO) -> None:
    log = _logger(late_handler)
    log.debug("SaslAuthenticate request auth_bytes=%r", b"\x00user\x00" + secret.encode())
    log.info("password is %s", secret)
    text = late_handler.getvalue()
    assert secret not in text
    assert text.count("**********") == 2, text


def test_traceback_and_stack_text_are_masked(secret: str, late_handler: io.StringIO) -> None:
    log = _logger(late_handler)
    try:
        raise RuntimeError(f"authentication failed for password {secret}")
    except RuntimeError:
        log.exception("connect failed")
    log.warning("where", stack_info=True, extra={"note": secret})
    text = late_handler.getvalue()
    assert "Traceback (most recent call last)" in text and "RuntimeError: authentication failed" in text
    assert secret not in text, text


def test_a_record_without_a_secret_is_left_alone(secret: str, late_handler: io.StringIO) -> None:
    log = _logger(late_handler)
    try:
        raise ValueError("nothing to hide")
    except ValueError:
        log.exception("plain %d", 1)
    text = late_handler.getvalue()
    assert "plain 1" in text and "ValueError: nothing to hide" in text and "**********" not in text
    # A bad format string is logging's to report when a handler emits; making the record
    # (where the masking runs) must not raise into the caller.
    record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "broken %d", ("nan",), None)
    assert record.msg == "broken %d"
