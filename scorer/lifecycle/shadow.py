"""Shadow comparisons: production vs shadow on the same events, to a topic and to Prometheus.

An output hook of the scoring service: the records are produced and committed with the
batch that scored them, so the shadow topic never claims events that were not scored (and,
in exactly-once mode, is in the same transaction). One record per kind and batch (split
every ``chunk`` events to stay well under Kafka's message size), key = kind:

    {"kind", "production": {"model","version","threshold"}, "shadow": {...}, "n",
     "production_alerts", "shadow_alerts", "both_alerts", "alert_overlap", "agreement",
     "correlation", "mean_abs_diff", "events": [[uid, production_score, shadow_score], ...]}
"""

from __future__ import annotations

import logging

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.metrics import LifecycleMetrics
from scorer.pipeline.outcome import BatchOutcome, ShadowBatch
from scorer.pipeline.records import OutputRecord

log = logging.getLogger(__name__)
CHUNK = 2048


class Side(msgspec.Struct, frozen=True):
    model: str
    version: str
    threshold: float


class ShadowReport(msgspec.Struct, frozen=True):
    kind: str
    production: Side
    shadow: Side
    n: int
    production_alerts: int
    shadow_alerts: int
    both_alerts: int
    alert_overlap: float | None  # both / either; None when neither alerted
    agreement: float  # share of events with the same alert decision
    correlation: float | None  # Pearson; None when either side is constant
    mean_abs_diff: float
    events: list[tuple[str, float, float]]


def compare(
    kind: str, production: Side, shadow: Side, uids: list[str],
    p: npt.NDArray[np.float32], s: npt.NDArray[np.float32],
) -> ShadowReport:
    pa, sa = p >= production.threshold, s >= shadow.threshold
    both, either = int((pa & sa).sum()), int((pa | sa).sum())
    p64, s64 = p.astype(np.float64), s.astype(np.float64)
    corr = None
    if len(p) > 1 and p64.std() > 1e-12 and s64.std() > 1e-12:  # undefined for a constant side
        corr = float(np.corrcoef(p64, s64)[0, 1])
    return ShadowReport(
        kind=kind, production=production, shadow=shadow, n=len(p),
        production_alerts=int(pa.sum()), shadow_alerts=int(sa.sum()), both_alerts=both,
        alert_overlap=both / either if either else None,
        agreement=float((pa == sa).mean()) if len(p) else 1.0,
        correlation=corr,
        mean_abs_diff=float(np.abs(p64 - s64).mean()) if len(p) else 0.0,
        events=list(zip(uids, p.tolist(), s.tolist(), strict=True)),
    )


class ShadowPublisher:
    """``ScoringLoop.output_hooks`` entry: ShadowBatch -> records on ``topic`` + metrics."""

    def __init__(self, topic: str, metrics: LifecycleMetrics, *, chunk: int = CHUNK) -> None:
        self.topic = topic
        self.metrics = metrics
        self.chunk = chunk
        self._json = msgspec.json.Encoder()

    def __call__(self, outcome: BatchOutcome) -> list[OutputRecord]:
        for error in outcome.shadow_errors:
            self.metrics.shadow_errors.labels(error.split(":", 1)[0]).inc()  # "model:version: why"
            log.warning("shadow inference failed (production unaffected): %s", error)
        out: list[OutputRecord] = []
        for batch in outcome.shadows:
            out.extend(self._records(batch))
        return out

    def _records(self, b: ShadowBatch) -> list[OutputRecord]:
        kind = b.kind.value
        prod = Side(b.production.name, b.production.version, b.production_threshold)
        shadow = Side(b.shadow.name, b.shadow.version, b.shadow_threshold)
        records = []
        for start in range(0, len(b.uids), self.chunk):
            end = start + self.chunk
            report = compare(kind, prod, shadow, b.uids[start:end],
                             b.production_scores[start:end], b.shadow_scores[start:end])
            self._count(report)
            records.append(OutputRecord(self.topic, self._json.encode(report), kind.encode()))
        return records

    def _count(self, r: ShadowReport) -> None:
        m, labels = self.metrics, (r.kind, r.shadow.model, r.shadow.version)
        m.shadow_events.labels(*labels).inc(r.n)
        for side, n in (("production", r.production_alerts), ("shadow", r.shadow_alerts), ("both", r.both_alerts)):
            m.shadow_alerts.labels(*labels, side).inc(n)
        m.shadow_agreement.labels(*labels).set(r.agreement)
        if r.correlation is not None:
            m.shadow_correlation.labels(*labels).set(r.correlation)
