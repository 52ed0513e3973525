"""The scorer's counters, gauges and histograms, and the accounting behind them.

Accounting invariant, per kind: consumed = scored + dead_lettered. ``Accounting`` keeps the
same counts as plain integers so tests and the demo can check it without scraping.
"""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from scorer.metrics.latency import LabelledHistogram, WeightedHistogram
from scorer.metrics.runtime import GcPauses, LoopLag

BATCH_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384)


class ScorerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = PromCounter(
            "scorer_events_consumed", "Records returned by the consumer", ["kind"], registry=r
        )
        self.scored = PromCounter(
            "scorer_events_scored", "Events scored by a model", ["kind", "backend"], registry=r
        )
        self.dead_lettered = PromCounter(
            "scorer_events_dead_lettered", "Records sent to the dead-letter topic",
            ["kind", "reason"], registry=r,
        )
        self.alerts = PromCounter(
            "scorer_alerts", "Detection findings produced", ["kind", "severity"], registry=r
        )
        self.rule_hits = PromCounter(
            "scorer_rule_hits", "Detection rules that fired on an event, by rule level", ["level"], registry=r
        )
        self.rule_pack_info = Gauge(
            "scorer_rule_pack_info", "Detection rule pack in use", ["pack", "version", "rules"], registry=r,
        )
        self.batch_size = Histogram(
            "scorer_batch_records", "Records per micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        # Per micro-batch. The scoring steps (decode, rules, features, inference, decide;
        # inference_wait: what the batch still waited for inference once its features were
        # done, ~0 with an in-process engine, which scores each kind in line) and the path of
        # its outputs: score (consumer -> outputs built), send (handed to
        # the producer), ack (handed -> every ack seen), produce_commit (send + ack).
        self.stage_seconds = LabelledHistogram(
            "scorer_stage_seconds", "Time per micro-batch stage", "stage", registry=r,
        )
        self.fetch_delay = WeightedHistogram(
            "scorer_fetch_delay_seconds",
            "Per micro-batch: its oldest record's Kafka timestamp -> returned by the consumer "
            "(broker, fetch, and the wait behind the previous batch; producer clock skew shows here)",
            registry=r,
        )
        self.loop_lag = LoopLag(r)
        self.gc_pauses = GcPauses(r)
        self.added_latency = WeightedHistogram(
            "scorer_added_latency_seconds",
            "Per record: returned by the consumer -> all outputs of its batch acknowledged by the broker",
            registry=r,
        )
        self.backend_up = Gauge(
            "scorer_backend_up", "1 when the inference backend answers", ["backend"], registry=r
        )
        self.paused = Gauge(
            "scorer_consumption_paused", "1 while consumption is paused (backpressure/outage)",
            registry=r,
        )
        self.model_info = Gauge(
            "scorer_model_info", "Model version in production per kind",
            ["kind", "model", "version"], registry=r,
        )
        # The consumer group's rebalances as this process sees them: every member gives up all its
        # partitions and gets a new set (aiokafka's eager protocol); under --processes N, per worker.
        self.assignments = PromCounter(
            "scorer_partition_assignments", "Partition sets the consumer group assigned to this process "
            "(one per rebalance it took part in)", registry=r,
        )
        self.assigned_partitions = Gauge(
            "scorer_assigned_partitions", "Input partitions this process owns (0 during a rebalance)", registry=r,
        )
        self.accounting = Accounting()

    def count_consumed(self, kind: str, n: int) -> None:
        self.consumed.labels(kind).inc(n)
        self.accounting.consumed[kind] += n

    def count_scored(self, kind: str, backend: str, n: int) -> None:
        self.scored.labels(kind, backend).inc(n)
        self.accounting.scored[kind] += n

    def count_dead_letter(self, kind: str, reason: str) -> None:
        self.dead_lettered.labels(kind, reason).inc()
        self.accounting.dead_lettered[kind] += 1


class Accounting:
    """Plain counts behind the invariant ``consumed == scored + dead_lettered``."""

    def __init__(self) -> None:
        self.consumed: Counter[str] = Counter()
        self.scored: Counter[str] = Counter()
        self.dead_lettered: Counter[str] = Counter()

    def balanced(self) -> bool:
        kinds = set(self.consumed) | set(self.scored) | set(self.dead_lettered)
        return all(
            self.consumed[k] == self.scored[k] + self.dead_lettered[k] for k in kinds
        )

    def totals(self) -> dict[str, int]:
        return {
            "consumed": sum(self.consumed.values()),
            "scored": sum(self.scored.values()),
            "dead_lettered": sum(self.dead_lettered.values()),
        }


class LifecycleMetrics:
    """Model lifecycle (scorer.lifecycle): switches, refusals and shadow comparisons.

    Shadow agreement is exported as counters so any window can be computed in PromQL:
    alert overlap = both / (production + shadow - both); the gauges hold the last batch.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.switches = PromCounter(
            "scorer_model_switches", "Model installs between micro-batches",
            ["kind", "role", "model", "version"], registry=r,
        )
        self.refusals = PromCounter(
            "scorer_model_refusals", "Desired model states refused (production kept)",
            ["kind", "model", "version", "reason"], registry=r,
        )
        self.prepare_seconds = Histogram(
            "scorer_model_prepare_seconds", "Verify, load and trial a version before the switch",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )
        self.switch_seconds = Histogram(
            "scorer_model_switch_seconds", "Control record issued -> new model installed",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )
        self.shadow_info = Gauge(
            "scorer_shadow_model_info", "Model version in shadow per kind",
            ["kind", "model", "version"], registry=r,
        )
        self.shadow_events = PromCounter(
            "scorer_shadow_events", "Events scored by the shadow model", ["kind", "model", "version"], registry=r,
        )
        self.shadow_alerts = PromCounter(
            "scorer_shadow_alerts", "Events over threshold: side=production|shadow|both",
            ["kind", "model", "version", "side"], registry=r,
        )
        self.shadow_errors = PromCounter(
            "scorer_shadow_errors", "Shadow inference failures (production unaffected)", ["model"], registry=r,
        )
        self.shadow_correlation = Gauge(
            "scorer_shadow_score_correlation", "Pearson correlation of production and shadow scores, last batch",
            ["kind", "model", "version"], registry=r,
        )
        self.shadow_agreement = Gauge(
            "scorer_shadow_agreement_ratio", "Share of events with the same alert decision, last batch",
            ["kind", "model", "version"], registry=r,
        )
