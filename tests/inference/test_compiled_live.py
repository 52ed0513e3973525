"""The compiled and vectorized engines on the real path: ``scorer run`` wiring over a real
broker, the same records scored with ONNX Runtime, the compiled trees and the vectorized forest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.support.kafka import KafkaBroker
from tests.support.pipeline import kcat_consume, produce, running_scorer, scorer_settings, wait_for
from tests.support.samples import SAMPLES

pytestmark = pytest.mark.data


def _engines(registry: CollectorRegistry) -> dict[str, str]:
    """model -> engine, as /metrics says (``scorer_inference_engine``)."""
    return {s.labels["model"]: s.labels["engine"] for m in registry.collect() if m.name == "scorer_inference_engine"
            for s in m.samples if s.value == 1}


async def _scores(kafka: KafkaBroker, engine: str, records: dict[str, list[tuple[bytes, bytes]]],
                  tmp_cache: str) -> tuple[dict[str, float], dict[str, str]]:
    settings = scorer_settings(kafka.bootstrap, in_process_engine=engine, compiled_cache=tmp_cache)
    for kind, recs in records.items():
        await produce(kafka.bootstrap, getattr(settings.topics, kind), recs)
    total = sum(len(r) for r in records.values())
    async with running_scorer(settings) as (_, metrics):
        assert await wait_for(lambda: sum(metrics.accounting.scored.values()) >= total, 90)
        engines = _engines(metrics.registry)
    assert settings.topics.scores is not None
    out = {}
    for rec in kcat_consume(kafka.bootstrap, settings.topics.scores):
        body = json.loads(rec["payload"])
        out[body["uid"]] = body["score"]
    assert len(out) == total
    return out, engines


async def test_compiled_and_vectorized_trees_score_a_live_stream_as_onnx_runtime_does(
    kafka: KafkaBroker, tmp_path: Path,
) -> None:
    records = {kind.value: [(k, v) for _, k, v in sample()[:40]] for kind, sample in SAMPLES.items()}
    reference, by_ort = await _scores(kafka, "onnxruntime", records, str(tmp_path))
    assert set(by_ort.values()) == {"onnxruntime"} and len(by_ort) == 3
    for engine in ("compiled", "vectorized"):
        scores, by_engine = await _scores(kafka, engine, records, str(tmp_path))
        assert set(by_engine.values()) == {engine} and by_engine.keys() == by_ort.keys()
        assert scores.keys() == reference.keys()
        worst = max(abs(scores[uid] - reference[uid]) for uid in reference)
        assert worst <= 1e-5, (engine, worst)
