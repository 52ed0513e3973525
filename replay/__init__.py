"""Replay, record and evaluate: captures into Kafka or the embedded scorer, topics to files,
scores and alerts against ground truth (``scorer replay | record | eval``).

The capture readers are the core's (:mod:`scorer.captures`): training reads them too.
"""
