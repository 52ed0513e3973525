"""Secrets masked in every log record: the SASL password above all.

aiokafka logs each request at DEBUG, SASL/PLAIN's authenticate request included, and that
request carries the password itself: without this, DEBUG logging leaks it.
:func:`scorer.kafka.clients.security_options` registers the password as it hands it over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

MASK = "**********"


class _Redactor:
    """Masks registered secrets in every log record, as the record is made.

    A record factory, not a handler filter: a filter covers only the handlers it was added
    to (not those added later, nor other loggers' handlers), and handlers format the
    traceback from ``exc_info`` after their filters ran.
    """

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self._make: Callable[..., logging.LogRecord] | None = None

    def install(self) -> None:
        if self._make is None:
            self._make = logging.getLogRecordFactory()  # chained: keep what others installed
            logging.setLogRecordFactory(self._record)

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        assert self._make is not None
        record = self._make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when a handler emits
            return record
        if (masked := self._mask(message)) != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # What Formatter.format would write; set only when it must change, so custom
            # formatters still format clean tracebacks their own way.
            text = logging.Formatter().formatException(record.exc_info)
            if (masked := self._mask(text)) != text:
                record.exc_text = masked
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return record

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


_REDACTOR = _Redactor()


def redact_in_logs(secret: str) -> None:
    """Mask ``secret`` (and its bytes-repr form) in every log record made from now on."""
    _REDACTOR.secrets.update({secret, repr(secret.encode())[2:-1]})
    _REDACTOR.install()
