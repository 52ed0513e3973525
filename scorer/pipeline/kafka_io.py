"""Moved to :mod:`scorer.kafka` (clients, producer, admin).

Only ``redact_in_logs`` is still imported from here, by tests/reliability/test_log_redaction.py,
which another change is editing now: once it imports :mod:`scorer.kafka`, delete this module.
"""

from scorer.kafka.redact import redact_in_logs

__all__ = ["redact_in_logs"]
