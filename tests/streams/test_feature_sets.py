"""Versioned feature contracts: each model gets the feature set its card names, v1 cards
keep v1, and a v2 model scores through the normal pipeline with profiles joined."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from scorer.config import InferenceSettings, Settings
from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.inference.repository import publish_version
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from scorer.service.build import build_runtimes, load_rules
from tests.support.models import build_tiny_model
from tests.support.paths import MODEL_REPOSITORY
from tests.support.samples import events

EDR = EventKind.EDR


def _publish(repo: Path, version: str, names: tuple[str, ...], feature_set_name: str) -> None:
    tiny = build_tiny_model("edr_classifier", version, n_features=len(names))
    card = msgspec.structs.replace(tiny.card, kind="edr", feature_names=list(names), feature_set=feature_set_name)
    publish_version(repo, card, tiny.onnx_bytes)


def _settings(repo: Path, version: str = "") -> Settings:
    inference = InferenceSettings(backend="onnxruntime", model_repository=repo,
                                  versions={"edr": version} if version else {})
    return Settings(kinds=(EDR,), inference=inference)


def test_shipped_models_keep_their_v1_features() -> None:
    settings = Settings(inference=InferenceSettings(model_repository=MODEL_REPOSITORY))
    runtimes = build_runtimes(settings, rules=load_rules(settings))  # (the EDR model reads rule hits)
    for kind, rt in runtimes.items():
        assert rt.features.names == feature_set(kind, rt.card.feature_set).names
        assert tuple(rt.card.feature_names) == rt.features.names


@pytest.mark.data
async def test_each_version_gets_the_feature_set_its_card_names(tmp_path: Path) -> None:
    v1, v2 = feature_set(EDR).names, feature_set(EDR, "v2").names
    _publish(tmp_path, "1", v1, "")
    _publish(tmp_path, "2", v2, "v2")
    assert build_runtimes(_settings(tmp_path, "1"))[EDR].features.names == v1
    runtime = build_runtimes(_settings(tmp_path, "2"))[EDR]
    assert runtime.features.names == v2
    # The v2 runtime scores real events end to end, the profile join inside the batch.
    scorer = BatchScorer({EDR: runtime}, OnnxRuntimeBackend(tmp_path))
    evs = events(EDR)[:500]
    records = [input_record(EDR, msgspec.json.encode(e), None, "events.edr", 0, i) for i, e in enumerate(evs)]
    outcome = await scorer.score(records)
    assert sum(outcome.scored.values()) == len(evs) and not outcome.failures


def test_a_card_whose_names_do_not_match_its_feature_set_is_refused(tmp_path: Path) -> None:
    _publish(tmp_path, "1", feature_set(EDR).names, "v2")  # claims v2, lists v1 names
    with pytest.raises(ModelError, match="feature contract mismatch"):
        build_runtimes(_settings(tmp_path))
    _publish(tmp_path, "2", feature_set(EDR).names, "v7")
    with pytest.raises(ValueError, match="unknown feature set"):
        build_runtimes(_settings(tmp_path, "2"))
