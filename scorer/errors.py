"""One root exception and a small named hierarchy.

Like aiokafka's ``errors.py``, every class says whether retrying the same operation can
succeed (``retriable``). Per-record problems are not raised through the pipeline: they
travel as :class:`scorer.events.RecordFailure` values to the dead-letter topic.
"""

from __future__ import annotations


class ScorerError(Exception):
    """Root of every error the scorer raises on purpose."""

    retriable: bool = False


class ConfigError(ScorerError):
    """The configuration is invalid; fix it and start again."""


class RecordError(ScorerError):
    """One input record cannot be scored (bad JSON, wrong schema, NaN features...).

    ``reason`` is a short machine-readable code; the message says what was wrong.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InferenceError(ScorerError):
    """A backend failed to score a batch."""


class BackendUnavailable(InferenceError):
    """The inference server cannot be reached or is not ready; try again later."""

    retriable = True


class ModelError(ScorerError):
    """A model is missing, malformed, or does not match its feature contract."""


class IntegrityError(ModelError):
    """A model file does not match its recorded checksum; it is refused."""


class KafkaUnavailable(ScorerError):
    """The broker cannot be reached right now."""

    retriable = True
