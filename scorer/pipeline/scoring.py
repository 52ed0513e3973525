"""One micro-batch through the steps: decode -> rules -> features -> inference -> decide.

``BatchScorer`` knows nothing of Kafka: the Kafka loop (:mod:`scorer.pipeline.loop`), the
embedded demo and the benchmarks all drive it the same way. Every input record ends as
exactly one of "scored" or "dead-lettered" in the returned :class:`BatchOutcome`. Each step
is a module of this package, named after it; this one only runs them in order and times them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from scorer.errors import ModelError, ScorerError
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind
from scorer.inference.base import InferenceBackend
from scorer.pipeline.batch import Batch, KindRuntime, Runtimes
from scorer.pipeline.deadletter import MAX_DEAD_LETTER_BYTES, dead_letter
from scorer.pipeline.decide import compare_shadows, decide
from scorer.pipeline.decode import decode
from scorer.pipeline.features import compute_features
from scorer.pipeline.inference import Inference
from scorer.pipeline.outcome import BatchOutcome, merge_outcomes, unscorable
from scorer.pipeline.records import InputRecord
from scorer.pipeline.rules import apply_rules, shadow_input, shadow_rules
from scorer.pipeline.turns import serve_io

log = logging.getLogger(__name__)


class BatchScorer:
    def __init__(
        self,
        runtimes: Runtimes,
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
        self.shadows: Runtimes = {}
        self._unscored: Batch | None = None  # the batch whose inference failed last

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
        inference = Inference(self.backend)
        batch, self._unscored = self._unscored, None
        if batch is not None and batch.retry_of(records, self.runtimes):
            batch.restart()
            for kind, (x, _) in batch.matrices.items():
                inference.launch(kind, x, batch.runtimes[kind], batch.shadows.get(kind), shadow_input(batch, kind))
        else:
            t0 = time.perf_counter()
            batch = decode(self.decoder, records, self.runtimes, self.shadows)
            batch.timings["decode"] = time.perf_counter() - t0
            await serve_io()  # an ack or a fetch response waits one step, not the whole batch
            await self._featurise(batch, inference)
        t_wait = time.perf_counter()
        try:
            results, shadow_results = await inference.results()
        except BaseException:
            self._unscored = batch  # the caller may retry: features must not run twice
            raise
        t_decide = time.perf_counter()
        decided = decide(batch, results, self.alerts_prefix, self.collect_scores)
        shadows, shadow_errors = compare_shadows(batch, results, shadow_results) if shadow_results else ([], [])
        timings = batch.timings
        # Inference overlaps feature work: "inference" sums the calls (wall time of each,
        # wherever it ran), "inference_wait" is what the batch still waited after features.
        seconds = 0.0
        for r in results.values():
            seconds += r.seconds
        timings["inference"] = seconds
        timings["inference_wait"] = t_decide - t_wait
        timings["decide"] = time.perf_counter() - t_decide
        failures = batch.failures
        # Positional, in BatchOutcome's field order: keywords cost a name match each, every batch.
        return BatchOutcome(
            decided.alerts,
            [dead_letter(f, self.dead_letter_topic, self.max_dead_letter_bytes) for f in failures] if failures else [],
            decided.scores, dict(batch.consumed), dict(decided.scored), failures, timings,
            dict(decided.alert_counts), shadows, shadow_errors, dict(batch.rule_hits), batch,
        )

    async def _featurise(self, batch: Batch, inference: Inference) -> None:
        """Rules and features kind by kind, each kind's inference launched as soon as its
        matrix is ready (it runs while the next kind's features are computed)."""
        rules_s = features_s = 0.0
        try:
            for kind, items in batch.by_kind.items():
                runtime = batch.runtimes[kind]
                t0 = time.perf_counter()
                if runtime.rules is not None:
                    items = apply_rules(runtime.rules, items, batch)
                t1 = time.perf_counter()
                x, items = compute_features(runtime, items, batch)
                rules_s += t1 - t0
                features_s += time.perf_counter() - t1
                if items:
                    batch.matrices[kind] = (x, items)
                    if batch.shadows:
                        inference.launch(kind, x, runtime, batch.shadows.get(kind), shadow_rules(batch, kind, x, items))
                    else:  # no shadow model, so no candidate rule pack to run
                        inference.launch(kind, x, runtime, None)
                    await serve_io()  # the task hands its request to the thread / Triton; acks are read
        except BaseException:
            await inference.cancel()
            raise
        batch.timings["rules"], batch.timings["features"] = rules_s, features_s
