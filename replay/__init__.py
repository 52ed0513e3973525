"""Replay, record and evaluate: captures into Kafka or the embedded scorer, topics to files,
scores and alerts against ground truth (``scorer replay | record | eval``).

The capture readers are the core's (:mod:`scorer.captures`): training reads them too.
"""

# Until the last callers (models/edr_coverage.py, tests/features/test_edr_v3.py, being edited
# elsewhere) import scorer.captures: then delete these lines.
from scorer.captures import LabeledEvent, iter_capture

__all__ = ["LabeledEvent", "iter_capture"]
