"""Shadow comparisons: the numbers, the records, the metrics."""

from __future__ import annotations

import msgspec
import numpy as np
from prometheus_client import CollectorRegistry

from scorer.events.structs import EventKind
from scorer.inference.base import ModelRef
from scorer.lifecycle.shadow import ShadowPublisher, ShadowReport, Side, compare
from scorer.metrics import LifecycleMetrics
from scorer.pipeline.outcome import BatchOutcome, ShadowBatch

P, S = Side("m", "1", 0.5), Side("m", "2", 0.4)


def test_compare_counts_overlap_agreement_and_correlation() -> None:
    p = np.array([0.9, 0.6, 0.1, 0.2], np.float32)  # production alerts: rows 0, 1
    s = np.array([0.8, 0.3, 0.45, 0.1], np.float32)  # shadow alerts: rows 0, 2
    r = compare("siem", P, S, ["a", "b", "c", "d"], p, s)
    assert (r.n, r.production_alerts, r.shadow_alerts, r.both_alerts) == (4, 2, 2, 1)
    assert r.alert_overlap == 1 / 3 and r.agreement == 0.5
    assert r.correlation is not None and 0 < r.correlation < 1
    assert r.events[2] == ("c", p[2].item(), s[2].item())


def test_compare_degenerate_batches() -> None:
    flat = np.full(3, 0.1, np.float32)
    r = compare("siem", P, S, ["a", "b", "c"], flat, flat)
    assert r.correlation is None and r.alert_overlap is None and r.agreement == 1.0


def _outcome(n: int) -> BatchOutcome:
    rng = np.random.default_rng(0)
    batch = ShadowBatch(EventKind.SIEM, ModelRef("m", "1"), ModelRef("m", "2"), [str(i) for i in range(n)],
                        rng.random(n).astype(np.float32), rng.random(n).astype(np.float32), 0.5, 0.4)
    return BatchOutcome([], [], [], {}, {}, [], {}, {}, shadows=[batch], shadow_errors=["m:3: boom"])


def test_publisher_chunks_records_and_counts() -> None:
    registry = CollectorRegistry()
    publisher = ShadowPublisher("t.shadow", LifecycleMetrics(registry), chunk=100)
    records = publisher(_outcome(250))
    assert [r.topic for r in records] == ["t.shadow"] * 3 and {r.key for r in records} == {b"siem"}
    reports = [msgspec.json.decode(r.value, type=ShadowReport) for r in records]
    assert [r.n for r in reports] == [100, 100, 50]
    labels = {"kind": "siem", "model": "m", "version": "2"}
    assert registry.get_sample_value("scorer_shadow_events_total", labels) == 250
    both = registry.get_sample_value("scorer_shadow_alerts_total", {**labels, "side": "both"})
    assert both == sum(r.both_alerts for r in reports)
    assert registry.get_sample_value("scorer_shadow_errors_total", {"model": "m"}) == 1
