"""One micro-batch through decode -> features -> inference -> decide -> OCSF.

``BatchScorer`` knows nothing of Kafka: the Kafka service, the embedded demo and the
benchmarks all drive it the same way. Every input record ends as exactly one of
"scored" or "dead-lettered" in the returned :class:`BatchOutcome`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.alerts.decide import Decider, rule_severity
from scorer.alerts.ocsf import detection_finding
from scorer.alerts.ocsf import encode as encode_finding
from scorer.errors import ModelError, ScorerError
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EndpointEvent, Event, EventKind, SourceRef, entity_key
from scorer.inference.base import InferenceBackend, ModelRef
from scorer.inference.repository import ModelCard
from scorer.pipeline.deadletter import MAX_DEAD_LETTER_BYTES, dead_letter
from scorer.pipeline.outcome import BatchOutcome, ScoredEvent, ShadowBatch, failure, merge_outcomes, unscorable
from scorer.pipeline.records import InputRecord, OutputRecord
from scorer.rules.annotate import RuleStage

log = logging.getLogger(__name__)


class FeatureSet(Protocol):
    names: tuple[str, ...]

    def transform(self, events: Sequence[Event]) -> npt.NDArray[np.float32]: ...


class KindRuntime(msgspec.Struct, frozen=True):
    """Everything needed to score one kind; swapped whole between micro-batches."""

    kind: EventKind
    features: FeatureSet
    model: ModelRef
    card: ModelCard
    decider: Decider
    # The detection rules run on this kind's events before features (EDR), or None.
    rules: RuleStage | None = None

    @classmethod
    def build(
        cls, kind: EventKind, features: FeatureSet, card: ModelCard, rules: RuleStage | None = None
    ) -> KindRuntime:
        if tuple(card.feature_names) != tuple(features.names):
            raise ModelError(
                f"model {card.name}:{card.version} expects features {len(card.feature_names)} "
                f"{card.feature_names[:3]}..., the scorer computes {len(features.names)} "
                f"{list(features.names[:3])}...: feature contract mismatch"
            )
        return cls(kind, features, ModelRef(card.name, card.version), card, Decider(card), rules)


class BatchScorer:
    def __init__(
        self,
        runtimes: dict[EventKind, KindRuntime],
        backend: InferenceBackend,
        *,
        alerts_prefix: str = "alerts.",
        dead_letter_topic: str = "events.dlq",
        max_record_bytes: int = 256 * 1024,
        max_dead_letter_bytes: int = MAX_DEAD_LETTER_BYTES,
    ) -> None:
        self.runtimes = dict(runtimes)
        self.backend = backend
        self.alerts_prefix = alerts_prefix
        self.dead_letter_topic = dead_letter_topic
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self.decoder = EventDecoder(max_record_bytes)
        # Per-event score records cost a Python object per event: only when someone reads them.
        self.collect_scores = True
        self.shadows: dict[EventKind, KindRuntime] = {}
        self._unscored: _Prepared | None = None

    def swap(self, runtime: KindRuntime) -> None:
        """Install a new model for a kind; takes effect at the next micro-batch."""
        self.runtimes = {**self.runtimes, runtime.kind: runtime}

    def set_shadow(self, kind: EventKind, runtime: KindRuntime | None) -> None:
        """Score ``kind`` with a second model too, from the next micro-batch on.

        A shadow shares the production feature contract (same names, same state), so its
        rows are the production rows: no second state update, no skew between the two.
        Shadow scores never raise alerts; a failing shadow never fails the batch.
        """
        shadows = dict(self.shadows)
        if runtime is None:
            shadows.pop(kind, None)
        else:
            if tuple(runtime.card.feature_names) != tuple(self.runtimes[kind].card.feature_names):
                raise ModelError(f"shadow {runtime.model} does not share the production feature contract")
            shadows[kind] = runtime
        self.shadows = shadows

    async def score(self, records: Sequence[InputRecord]) -> BatchOutcome:
        """Score one micro-batch. If inference fails, the error propagates and the caller
        may call again with the same ``records`` object: decoding and features (which
        update per-entity state) are then reused, not computed a second time.

        Any other exception (a record no check foresaw meeting a bug) must not stop the
        stream: the batch is scored again one record at a time, and the records that still
        raise become ``scoring_error`` dead letters.
        """
        try:
            return await self._score_batch(records)
        except ScorerError:
            raise
        except Exception as exc:
            if len(records) == 1:
                log.exception("scoring raised on %s", records[0].ref)
                return unscorable(records[0], exc, self.dead_letter_topic, self.max_dead_letter_bytes)
            log.exception("scoring raised on a batch of %d; scoring its records one by one", len(records))
            return merge_outcomes([await self.score([rec]) for rec in records])

    async def _score_batch(self, records: Sequence[InputRecord]) -> BatchOutcome:
        t0 = time.perf_counter()
        retry = self._unscored
        self._unscored = None
        pending: dict[EventKind, asyncio.Task[tuple[npt.NDArray[np.float32], str, float]]] = {}
        shadow_pending: dict[EventKind, asyncio.Task[npt.NDArray[np.float32]]] = {}
        features_s = 0.0
        if retry is not None and retry.records is records and retry.runtimes is self.runtimes:
            prepared = retry
            runtimes, shadows = prepared.runtimes, prepared.shadows
            for kind, (x, _) in prepared.matrices.items():
                self._launch(kind, x, runtimes, shadows, pending, shadow_pending)
            t1 = t2 = time.perf_counter()
        else:
            runtimes = self.runtimes  # one snapshot per batch: no batch straddles a model swap
            shadows = self.shadows
            prepared = self._decode(records, runtimes, shadows)
            t1 = time.perf_counter()
            try:
                # Each kind's inference starts as soon as its features are ready, so ONNX
                # Runtime (in a thread, without the GIL, for large batches) or Triton works
                # on one kind while the next kind's features are computed here.
                for kind, items in prepared.by_kind.items():
                    tf = time.perf_counter()
                    x, items = self._features(runtimes[kind], items, prepared)
                    features_s += time.perf_counter() - tf
                    if items:
                        prepared.matrices[kind] = (x, items)
                        self._launch(kind, x, runtimes, shadows, pending, shadow_pending)
                        await asyncio.sleep(0)  # let the task hand its request to the thread / Triton
            except BaseException:
                await _cancel(pending, shadow_pending)
                raise
            t2 = time.perf_counter()
        matrices, failures = prepared.matrices, prepared.failures
        kinds = list(matrices)
        shadow_kinds = list(shadow_pending)
        try:
            results, shadow_results = await asyncio.gather(
                asyncio.gather(*(pending[k] for k in kinds)),
                asyncio.gather(*(shadow_pending[k] for k in shadow_kinds), return_exceptions=True),
            )
        except BaseException:
            await _cancel(pending, shadow_pending)
            self._unscored = prepared
            raise
        t3 = time.perf_counter()
        shadow_batches: list[ShadowBatch] = []
        shadow_errors: list[str] = []
        for k, res in zip(shadow_kinds, shadow_results, strict=True):
            if isinstance(res, BaseException):
                shadow_errors.append(f"{shadows[k].model.name}:{shadows[k].model.version}: {res}")
                continue
            prod_scores = results[kinds.index(k)][0]
            shadow_batches.append(ShadowBatch(
                k, runtimes[k].model, shadows[k].model, [ev.uid for ev, _ in matrices[k][1]],
                prod_scores, res, runtimes[k].decider.threshold, shadows[k].decider.threshold,
            ))

        alerts: list[OutputRecord] = []
        scores: list[ScoredEvent] = []
        scored: dict[tuple[str, str], int] = defaultdict(int)
        alert_counts: dict[tuple[str, str], int] = defaultdict(int)
        for kind, (probs, backend_name, _) in zip(kinds, results, strict=True):
            rt = runtimes[kind]
            x, items = matrices[kind]
            scored[(kind.value, backend_name)] += len(items)
            decisions = rt.decider.decide(probs, x, _rule_alerts(rt.rules, items))
            alerted = {d.row for d in decisions}
            for d in decisions:
                alert_counts[(kind.value, d.severity)] += 1
                event, rec = items[d.row]
                finding = detection_finding(
                    kind=kind.value, event=event, decision=d, model_name=rt.model.name,
                    model_version=rt.model.version, threshold=rt.decider.threshold,
                    backend=backend_name, ref=rec.ref,
                    rules=rt.rules.rules_of(event) if rt.rules is not None and isinstance(event, EndpointEvent)
                    else (),
                    rule_pack=f"{rt.rules.name}:{rt.rules.version}" if rt.rules is not None else "",
                )
                key = rec.key if rec.key is not None else entity_key(event).encode()
                alerts.append(OutputRecord(self.alerts_prefix + kind.value, encode_finding(finding), key))
            if self.collect_scores:
                scores.extend(
                    ScoredEvent(kind, ev.uid, float(p), rt.model.name, rt.model.version, backend_name, i in alerted,
                                getattr(ev, "rule_hits", ()))
                    for i, ((ev, _), p) in enumerate(zip(items, probs.tolist(), strict=True))
                )
        t4 = time.perf_counter()
        return BatchOutcome(
            alerts=alerts,
            dead_letters=[dead_letter(f, self.dead_letter_topic, self.max_dead_letter_bytes) for f in failures],
            scores=scores,
            consumed=dict(prepared.consumed),
            scored=dict(scored),
            failures=failures,
            # Inference overlaps feature work: "inference" sums the calls (wall time of each,
            # wherever it ran), "inference_wait" is what the batch still waited after features.
            timings={"decode": t1 - t0, "rules": prepared.rules_s, "features": features_s - prepared.rules_s,
                     "inference": sum(r[2] for r in results), "inference_wait": t3 - t2, "decide": t4 - t3},
            alert_counts=dict(alert_counts),
            rule_hits=dict(prepared.rule_hits),
            shadows=shadow_batches,
            shadow_errors=shadow_errors,
        )

    def _decode(
        self, records: Sequence[InputRecord], runtimes: dict[EventKind, KindRuntime],
        shadows: dict[EventKind, KindRuntime],
    ) -> _Prepared:
        prepared = _Prepared(records, runtimes, shadows)
        failures, by_kind = prepared.failures, prepared.by_kind
        decode = self.decoder.decode
        per_kind: dict[EventKind | None, int] = defaultdict(int)
        for rec in records:
            kind = rec.kind
            per_kind[kind] += 1
            out = decode(kind if kind in runtimes else None, rec.value, rec.ref, rec.key)
            if isinstance(out, DecodeFailure):
                failures.append(out)
            else:
                by_kind[kind].append((out, rec))  # type: ignore[index]  # decoded: kind is set
        for kind, n in per_kind.items():
            prepared.consumed[kind.value if kind else "unknown"] += n
        return prepared

    @staticmethod
    def _features(
        runtime: KindRuntime, items: list[tuple[Event, InputRecord]], prepared: _Prepared
    ) -> tuple[npt.NDArray[np.float32], list[tuple[Event, InputRecord]]]:
        failures = prepared.failures
        if runtime.rules is not None:
            started = time.perf_counter()
            items = _apply_rules(runtime.rules, items, prepared)
            prepared.rules_s += time.perf_counter() - started
        try:
            x = runtime.features.transform([ev for ev, _ in items])
        except Exception:  # a record no check foresaw must not crash-loop the service
            x, items = _isolate(runtime, items, failures)
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            for i in np.flatnonzero(~finite).tolist():
                _, rec = items[i]
                failures.append(failure(rec, "non_finite_features", "a feature is NaN or infinite"))
            items = [it for it, ok in zip(items, finite.tolist(), strict=True) if ok]
            x = x[finite]
        return x, items

    def _launch(
        self, kind: EventKind, x: npt.NDArray[np.float32], runtimes: dict[EventKind, KindRuntime],
        shadows: dict[EventKind, KindRuntime],
        pending: dict[EventKind, asyncio.Task[tuple[npt.NDArray[np.float32], str, float]]],
        shadow_pending: dict[EventKind, asyncio.Task[npt.NDArray[np.float32]]],
    ) -> None:
        pending[kind] = asyncio.create_task(_infer(self.backend, runtimes[kind].model, x))
        if kind in shadows:
            shadow_pending[kind] = asyncio.create_task(self.backend.infer(shadows[kind].model, x))


class _Prepared:
    """A batch decoded and featurised, kept when its inference fails so a retry of the
    same records reuses it: features update per-entity state and must run once."""

    def __init__(
        self, records: Sequence[InputRecord], runtimes: dict[EventKind, KindRuntime],
        shadows: dict[EventKind, KindRuntime],
    ) -> None:
        self.records = records
        self.runtimes = runtimes
        self.shadows = shadows
        self.consumed: dict[str, int] = defaultdict(int)
        self.failures: list[DecodeFailure] = []
        self.by_kind: dict[EventKind, list[tuple[Event, InputRecord]]] = defaultdict(list)
        self.matrices: dict[EventKind, tuple[npt.NDArray[np.float32], list[tuple[Event, InputRecord]]]] = {}
        self.rules_s = 0.0
        self.rule_hits: dict[str, int] = defaultdict(int)  # rule level -> hits in this batch


def _apply_rules(
    stage: RuleStage, items: list[tuple[Event, InputRecord]], prepared: _Prepared
) -> list[tuple[Event, InputRecord]]:
    """Run the rules stage; the events a rule raised on become ``rule_error`` dead letters
    naming the rule, the others carry their hits on to features and decisions."""
    events = [ev for ev, _ in items if isinstance(ev, EndpointEvent)]
    if len(events) != len(items):
        raise TypeError("the rules stage takes endpoint events only")
    annotated, errors = stage.annotate(events)
    kept: list[tuple[Event, InputRecord]] = []
    for i, (event, (_, rec)) in enumerate(zip(annotated, items, strict=True)):
        error = errors.get(i)
        if error is not None:
            prepared.failures.append(failure(rec, "rule_error", f"rule {error.rule_id}: {error.message}"[:500]))
            continue
        for rule_id in event.rule_hits:
            meta = stage.by_id.get(rule_id)
            prepared.rule_hits[meta.level if meta is not None else "unknown"] += 1
        kept.append((event, rec))
    return kept


def _rule_alerts(stage: RuleStage | None, items: list[tuple[Event, InputRecord]]) -> dict[int, str]:
    """Rows whose rule hits raise an alert on their own, with the severity they earn."""
    if stage is None:
        return {}
    forced: dict[int, str] = {}
    by_id = stage.by_id
    for row, (event, _) in enumerate(items):
        hits = event.rule_hits if isinstance(event, EndpointEvent) else ()
        if hits:
            severity = rule_severity(by_id[i].level for i in hits if i in by_id)
            if severity is not None:
                forced[row] = severity
    return forced


async def _cancel(*groups: dict[EventKind, asyncio.Task[Any]]) -> None:
    tasks = [t for group in groups for t in group.values()]
    for task in tasks:
        task.cancel()
    # Retrieve what already finished, so no "exception was never retrieved" is logged.
    await asyncio.gather(*tasks, return_exceptions=True)


def _isolate(
    runtime: KindRuntime, items: list[tuple[Event, InputRecord]], failures: list[DecodeFailure]
) -> tuple[npt.NDArray[np.float32], list[tuple[Event, InputRecord]]]:
    """Features one event at a time after the batch raised: the events that still raise are
    dead-lettered with the error, the rest are scored. Stateful feature sets may have taken
    part of the failed batch into their state already; that skew is the price of not
    stopping the stream on one record."""
    log.exception("%s features raised on a batch of %d; isolating the record(s)", runtime.kind.value, len(items))
    rows: list[npt.NDArray[np.float32]] = []
    kept: list[tuple[Event, InputRecord]] = []
    for item in items:
        try:
            rows.append(runtime.features.transform([item[0]]))
        except Exception as exc:
            failures.append(failure(item[1], "feature_error", f"{type(exc).__name__}: {exc}"[:500]))
        else:
            kept.append(item)
    width = len(runtime.features.names)
    return (np.concatenate(rows) if rows else np.empty((0, width), np.float32)), kept


async def _infer(
    backend: InferenceBackend, model: ModelRef, x: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], str, float]:
    """Scores, the name of the backend that answered, and the call's wall time."""
    started = time.perf_counter()
    # A failover backend reports which of its backends answered; plain ones are themselves.
    infer_with_source = getattr(backend, "infer_with_source", None)
    if infer_with_source is not None:
        probs, name = await infer_with_source(model, x)
    else:
        probs, name = await backend.infer(model, x), backend.name
    return probs, name, time.perf_counter() - started


def input_record(
    kind: EventKind | None, value: bytes | None, key: bytes | None,
    topic: str, partition: int, offset: int, timestamp_ms: int = 0,
) -> InputRecord:
    return InputRecord(kind, value, key, SourceRef(topic, partition, offset, timestamp_ms))
