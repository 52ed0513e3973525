"""Shadow comparisons: production vs shadow on the same events, to a topic and to Prometheus.

An output hook of the scoring service: the records are produced and committed with the
batch that scored them, so the shadow topic never claims events that were not scored (and,
in exactly-once mode, is in the same transaction). One record per kind and batch (split
every ``chunk`` events to stay well under Kafka's message size), key = kind:

    {"kind", "production": {"model","version","threshold"}, "shadow": {...}, "n",
     "production_alerts", "shadow_alerts", "both_alerts", "alert_overlap", "agreement",
     "correlation", "mean_abs_diff", "events": [[uid, production_score, shadow_score], ...],
     "rules": null | {"production", "shadow", "hits_added", "hits_removed", "alerts_added",
                      "alerts_removed", "score_changed", "max_abs_score_diff", "errors", "failed"}}

A shadow runs a candidate model, a candidate rule pack (``scorer rules deploy --shadow``),
or both. With a candidate pack, ``rules`` says what it changes on the same events: rule hits
added and removed per rule id, the events that would alert (model score or a high/critical
rule) under it and do not now and the reverse, and how the model's score moves because
its rule-hit features read the candidate's hits. The model fields above compare scores with
each side's threshold, as for a model shadow; a shadow that only runs a candidate pack is
counted in the rule-pack metrics, not in the model-shadow ones.
"""

from __future__ import annotations

import logging
from collections import Counter

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.metrics import LifecycleMetrics
from scorer.metrics.rulepacks import RulePackMetrics
from scorer.pipeline.outcome import BatchOutcome, ShadowBatch
from scorer.pipeline.records import OutputRecord
from scorer.pipeline.rules import RuleShadow

log = logging.getLogger(__name__)
CHUNK = 2048


class Side(msgspec.Struct, frozen=True):
    model: str
    version: str
    threshold: float


class RuleChanges(msgspec.Struct, frozen=True):
    production: str  # "pack:version"
    shadow: str
    hits_added: dict[str, int]  # rule id -> events it fires on under the candidate only
    hits_removed: dict[str, int]
    alerts_added: list[str]  # uids that would alert under the candidate, and do not now
    alerts_removed: list[str]
    score_changed: int  # events whose model score the candidate's hits move
    max_abs_score_diff: float
    errors: int = 0  # events a candidate rule raised on
    failed: str | None = None  # the candidate could not run on this batch


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
    rules: RuleChanges | None = None


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


def rule_changes(
    r: RuleShadow, rows: slice, uids: list[str], p: npt.NDArray[np.float32], s: npt.NDArray[np.float32],
    thresholds: tuple[float, float],
) -> RuleChanges:
    """What the candidate pack of ``r`` changes on ``rows`` (``uids``, ``p``, ``s``: those rows)."""
    if r.failed is not None:
        return RuleChanges(r.production, r.candidate, {}, {}, [], [], 0, 0.0, failed=r.failed)
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for before, after in zip(r.production_hits[rows], r.candidate_hits[rows], strict=False):
        if before != after:
            added.update(set(after) - set(before))
            removed.update(set(before) - set(after))
    offset = rows.start or 0
    alerts_now = (p >= thresholds[0]).tolist()
    alerts_then = (s >= thresholds[1]).tolist()
    for forced, marks in ((r.production_alerts, alerts_now), (r.candidate_alerts, alerts_then)):
        for row in forced:
            if 0 <= row - offset < len(marks):
                marks[row - offset] = True
    diff = np.abs(p.astype(np.float64) - s.astype(np.float64))
    return RuleChanges(
        production=r.production, shadow=r.candidate, hits_added=dict(added), hits_removed=dict(removed),
        alerts_added=[u for u, a, b in zip(uids, alerts_now, alerts_then, strict=True) if b and not a],
        alerts_removed=[u for u, a, b in zip(uids, alerts_now, alerts_then, strict=True) if a and not b],
        score_changed=int((diff > 1e-6).sum()), max_abs_score_diff=float(diff.max()) if len(diff) else 0.0,
        errors=r.errors if offset == 0 else 0, failed=r.failed,
    )


class ShadowPublisher:
    """``ScoringLoop.output_hooks`` entry: ShadowBatch -> records on ``topic`` + metrics."""

    def __init__(self, topic: str, metrics: LifecycleMetrics, rule_metrics: RulePackMetrics | None = None, *,
                 chunk: int = CHUNK) -> None:
        self.topic = topic
        self.metrics = metrics
        self.rule_metrics = rule_metrics
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
            rows = slice(start, start + self.chunk)
            uids, p, s = b.uids[rows], b.production_scores[rows], b.shadow_scores[rows]
            report = compare(kind, prod, shadow, uids, p, s)
            if b.rules is not None:
                report = msgspec.structs.replace(report, rules=rule_changes(
                    b.rules, rows, uids, p, s, (b.production_threshold, b.shadow_threshold)))
                self._count_rules(report.n, report.rules)
            if b.shadow != b.production:  # a candidate model (alone or with a candidate pack)
                self._count(report)
            records.append(OutputRecord(self.topic, self._json.encode(report), kind.encode()))
        return records

    def _count_rules(self, n: int, r: RuleChanges | None) -> None:
        if self.rule_metrics is None or r is None:
            return
        m, (pack, _, version) = self.rule_metrics, r.shadow.rpartition(":")
        labels = (pack, version)
        if r.failed is not None:
            m.shadow_errors.labels(*labels).inc()
            log.warning("candidate rule pack %s failed on a batch (production unaffected): %s", r.shadow, r.failed)
            return
        m.shadow_events.labels(*labels).inc(n)
        m.shadow_errors.labels(*labels).inc(r.errors)
        m.shadow_hits.labels(*labels, "added").inc(sum(r.hits_added.values()))
        m.shadow_hits.labels(*labels, "removed").inc(sum(r.hits_removed.values()))
        m.shadow_alerts.labels(*labels, "added").inc(len(r.alerts_added))
        m.shadow_alerts.labels(*labels, "removed").inc(len(r.alerts_removed))
        m.shadow_score_changed.labels(*labels).inc(r.score_changed)

    def _count(self, r: ShadowReport) -> None:
        m, labels = self.metrics, (r.kind, r.shadow.model, r.shadow.version)
        m.shadow_events.labels(*labels).inc(r.n)
        for side, n in (("production", r.production_alerts), ("shadow", r.shadow_alerts), ("both", r.both_alerts)):
            m.shadow_alerts.labels(*labels, side).inc(n)
        m.shadow_agreement.labels(*labels).set(r.agreement)
        if r.correlation is not None:
            m.shadow_correlation.labels(*labels).set(r.correlation)
