"""Prometheus metrics of one scorer process (``scorer_`` prefix, ``_total`` / ``_seconds``).

Below the pipeline and the lifecycle, which both count into them; the service exposes the
registry over HTTP (``/metrics``).
"""

from scorer.metrics.batchtrace import BatchTrace
from scorer.metrics.counters import Accounting, LifecycleMetrics, ScorerMetrics
from scorer.metrics.latency import WeightedHistogram

__all__ = ["Accounting", "BatchTrace", "LifecycleMetrics", "ScorerMetrics", "WeightedHistogram"]
