from __future__ import annotations

import numpy as np
import pytest

from models.datasets import Dataset
from models.edr_risk import risk_alerts
from scorer.events.structs import EventKind
from scorer.rules.risk import RiskPolicy

LEVELS = {"m1": "medium", "m2": "medium", "l1": "low"}
POLICY = RiskPolicy(threshold=2.0, window_s=60.0, points={"low": 1.0, "medium": 1.0})


def rows(*spec: tuple[str, str, str, float, str]) -> Dataset:
    """(source, capture, host, ts, hits) per row."""
    source, capture, host, ts, hits = (np.array(c) for c in zip(*spec, strict=True))
    n = len(spec)
    return Dataset(EventKind.EDR, np.zeros((n, 1), np.float32), np.zeros(n, np.int8), capture.astype(str),
                   source.astype(str), np.full(n, "x"), capture.astype(str), [], hits.astype(str),
                   host.astype(str), ts.astype(np.float64))


def test_each_capture_is_replayed_alone_in_time_order() -> None:
    ds = rows(("otrf", "c1", "h", 10.0, "m2"),  # listed first, happens second: it tips the host
              ("otrf", "c1", "h", 5.0, "m1"),
              ("otrf", "c2", "h", 6.0, "l1"),  # same host name, another capture: a fresh state
              ("otrf", "c2", "h", 7.0, ""),
              ("sigma", "s", "h", 8.0, "m1|m2"))  # Sigma rows are single events, never replayed
    assert risk_alerts(ds, POLICY, LEVELS).tolist() == [True, False, False, False, False]


def test_model_scores_count_only_over_the_floor() -> None:
    policy = RiskPolicy(threshold=2.0, window_s=60.0, points={"medium": 1.0}, model_points=1.0, model_floor=0.5)
    ds = rows(("otrf", "c", "h", 1.0, "m1"), ("otrf", "c", "h", 2.0, ""), ("otrf", "c", "g", 3.0, "m1"),
              ("otrf", "c", "g", 4.0, ""))
    scores = np.array([0.0, 0.6, 0.0, 0.4])
    assert risk_alerts(ds, policy, LEVELS, scores).tolist() == [False, True, False, False]


def test_rows_without_hosts_are_refused() -> None:
    ds = rows(("otrf", "c", "h", 1.0, "m1"))
    ds.host = None
    with pytest.raises(ValueError, match="hosts and times"):
        risk_alerts(ds, POLICY, LEVELS)
