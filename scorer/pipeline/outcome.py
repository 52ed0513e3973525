"""What scoring a micro-batch yields: score records, shadow comparisons, and the outcome
that accounts for every input record (scored or dead-lettered)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Protocol, overload

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.events.structs import EventKind, RecordFailure
from scorer.inference.base import ModelRef
from scorer.pipeline.deadletter import dead_letter
from scorer.pipeline.records import InputRecord, OutputRecord

if TYPE_CHECKING:
    from scorer.metrics import ScorerMetrics
    from scorer.pipeline.rules import RuleShadow


class OutputHook(Protocol):
    """Records added to each batch (e.g. shadow scores), produced and committed with it.
    ``topic`` is where they go: its partitions join the batch's transactions, so the
    leftover transaction at start must cover them as it covers the alert topics."""

    topic: str

    def __call__(self, outcome: BatchOutcome) -> list[OutputRecord]: ...


class ScoredEvent(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    # gc=False: one per scored event, and it holds only strings, numbers and a tuple of
    # strings (no reference cycle possible): the collector need not track or scan them.
    kind: EventKind
    uid: str
    score: float
    model: str
    version: str
    backend: str
    alerted: bool
    # Ids of the detection rules that fired on the event (EDR with a rule pack), alerting or not.
    rules: tuple[str, ...] = ()


class KindScores(msgspec.Struct, frozen=True):
    """One kind's score records of a batch as columns, row-aligned: the scores topic's records
    are written from these (scorer.pipeline.sink.score_records), a :class:`ScoredEvent` per row
    is built only for whoever reads them one by one."""

    kind: EventKind
    uids: list[str]
    scores: list[float]  # float32 scores as float64, as the records print them
    model: str
    version: str
    backend: str
    alerted: list[bool]
    rules: list[tuple[str, ...]] | None  # each row's rule ids; None: the kind has no rules

    def events(self) -> list[ScoredEvent]:
        n = len(self.uids)
        hits = repeat((), n) if self.rules is None else self.rules
        return list(map(ScoredEvent, repeat(self.kind, n), self.uids, self.scores, repeat(self.model, n),
                        repeat(self.version, n), repeat(self.backend, n), self.alerted, hits))


class ScoredEvents(Sequence[ScoredEvent]):
    """A batch's score records, kind by kind, read as a sequence of :class:`ScoredEvent`."""

    def __init__(self) -> None:
        self.kinds: list[KindScores] = []
        self._rows = 0  # counted as kinds are added: the sink asks for it with every batch
        self._events: list[ScoredEvent] | None = None

    def add(self, scores: KindScores) -> None:
        self.kinds.append(scores)
        self._rows += len(scores.uids)
        self._events = None

    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[ScoredEvent]:
        return iter(self._all())

    @overload
    def __getitem__(self, i: int) -> ScoredEvent: ...
    @overload
    def __getitem__(self, i: slice) -> list[ScoredEvent]: ...
    def __getitem__(self, i: int | slice) -> ScoredEvent | list[ScoredEvent]:
        return self._all()[i]

    def _all(self) -> list[ScoredEvent]:
        if self._events is None:
            self._events = list(chain.from_iterable(k.events() for k in self.kinds))
        return self._events


class ShadowBatch(msgspec.Struct):
    """Production and shadow scores of the same events of one kind, row-aligned."""

    kind: EventKind
    production: ModelRef
    shadow: ModelRef
    uids: list[str]
    production_scores: npt.NDArray[np.float32]
    shadow_scores: npt.NDArray[np.float32]
    production_threshold: float
    shadow_threshold: float
    rules: RuleShadow | None = None  # the shadow runs a candidate rule pack (scorer rules deploy)


class BatchOutcome(msgspec.Struct):
    alerts: list[OutputRecord]
    dead_letters: list[OutputRecord]
    scores: Sequence[ScoredEvent]  # ScoredEvents from scoring; a list where made otherwise
    consumed: dict[str, int]
    scored: dict[tuple[str, str], int]  # (kind, backend) -> n
    failures: list[RecordFailure]
    timings: dict[str, float]
    alert_counts: dict[tuple[str, str], int]  # (kind, severity) -> n
    shadows: list[ShadowBatch] = []
    shadow_errors: list[str] = []
    rule_hits: dict[str, int] = {}  # rule level -> rules fired, over the batch's events
    # What scoring made (events, rows, matrices), kept by the outcome so that it is freed once
    # the outputs are handed over, not while the batch's latency runs (~0.25 us an event).
    spent: object = None


def failure(rec: InputRecord, reason: str, message: str) -> RecordFailure:
    """``rec`` given up on by a step after decode (``rule_error``, ``feature_error``...)."""
    kind = rec.kind.value if rec.kind else None
    return RecordFailure(reason, message, rec.ref, rec.value, rec.key, kind)


def unscorable(rec: InputRecord, exc: Exception, dead_letter_topic: str, max_bytes: int) -> BatchOutcome:
    failed = failure(rec, "scoring_error", f"{type(exc).__name__}: {exc}"[:500])
    return BatchOutcome(
        alerts=[], dead_letters=[dead_letter(failed, dead_letter_topic, max_bytes)], scores=[],
        consumed={rec.kind.value if rec.kind else "unknown": 1}, scored={}, failures=[failed],
        timings={}, alert_counts={},
    )


def merge_outcomes(outcomes: Sequence[BatchOutcome]) -> BatchOutcome:
    """One outcome for records scored in several parts (lists joined, counts summed)."""
    merged = BatchOutcome(alerts=[], dead_letters=[], scores=[], consumed={}, scored={}, failures=[],
                          timings={}, alert_counts={}, shadows=[], shadow_errors=[], rule_hits={})
    for part in outcomes:
        for name in ("alerts", "dead_letters", "scores", "failures", "shadows", "shadow_errors"):
            getattr(merged, name).extend(getattr(part, name))
        for name in ("consumed", "scored", "timings", "alert_counts", "rule_hits"):
            total = getattr(merged, name)
            for key, value in getattr(part, name).items():
                total[key] = total.get(key, 0) + value
    return merged


def count_batch(m: ScorerMetrics, outcome: BatchOutcome, n: int, latency: float, built: float, handed: float,
                acked: float) -> None:
    """A delivered batch into the metrics: its records by kind and fate, its stages'
    seconds, and each record's added latency (consumer -> acked)."""
    for kind, count in outcome.consumed.items():
        m.count_consumed(kind, count)
    for (kind, backend), count in outcome.scored.items():
        m.count_scored(kind, backend, count)
    for failed in outcome.failures:
        m.count_dead_letter(failed.kind or "unknown", failed.reason)
    for (kind, severity), count in outcome.alert_counts.items():
        m.alerts.labels(kind, severity).inc(count)
    for level, count in outcome.rule_hits.items():
        m.rule_hits.labels(level).inc(count)
    m.batch_size.observe(n)
    m.added_latency.observe(latency, n)
    stages = m.stage_seconds
    for stage, seconds in outcome.timings.items():
        stages.observe(stage, seconds)
    stages.observe("send", handed - built)
    stages.observe("ack", acked - handed)
    stages.observe("produce_commit", acked - built)
