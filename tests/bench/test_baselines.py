"""The per-event baselines score with what the scorer scores with: the feature set the card
names (EDR v3 reads rule hits) and the rule pack before it; their scores are the scorer's."""

from __future__ import annotations

import asyncio

import msgspec

from scorer.bench.baselines import PerEventScorer
from scorer.bench.loadgen import payloads, templates
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.pipeline.source import input_record
from scorer.service.build import build_scorer
from tests.support.paths import MODEL_REPOSITORY


def test_baseline_scores_equal_the_scorers_for_every_kind() -> None:
    items = list(payloads(templates(bundled_capture(), tuple(EventKind)), 60))
    baseline = PerEventScorer(MODEL_REPOSITORY, {f"events.{k.value}": k for k in EventKind})
    per_event = [msgspec.json.decode(baseline.score(f"events.{k.value}", 0, i, v)) for i, (k, _, v) in enumerate(items)]
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime",  # type: ignore[arg-type]
                                              "model_repository": MODEL_REPOSITORY}))
    records = [input_record(k, v, key, f"events.{k.value}", 0, i) for i, (k, key, v) in enumerate(items)]
    batch = {s.uid: s.score for s in asyncio.run(scorer.score(records)).scores}
    assert {k for k, _, _ in items} == set(EventKind)
    for out in per_event:
        assert "error" not in out, out
        assert abs(out["score"] - batch[out["uid"]]) < 1e-5, out
