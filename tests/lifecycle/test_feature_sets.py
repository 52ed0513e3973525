"""Versioned feature contracts through package and validate: v1 and v2 (profile) models."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from scorer.errors import ModelError
from scorer.features import feature_set
from scorer.inference.repository import load_version
from scorer.inference.triton_config import input_width as triton_width
from scorer.lifecycle.contract import card_problems, contract_names, version_problems
from scorer.lifecycle.golden import GOLDEN_FILE, load, resolve
from scorer.lifecycle.validate import Margins, validate
from tests.support.lifecycle import KIND, MODEL, Repo, make_repo, synthetic_golden

V1, V2 = contract_names(KIND, "v1"), contract_names(KIND, "v2")
# Latency has its own tests (test_offline_cli): three runs of sub-microsecond timings are noise.
FAST = Margins(batch=256, runs=3, latency_us_per_event=1e6, latency_ratio=1e6)


@pytest.fixture
def mixed(tmp_path: Path) -> Repo:
    """Production 1 is v1; the golden set holds the v2 columns of the same rows."""
    return make_repo(tmp_path, synthetic_golden(features="v2"))


def test_contract_is_the_one_the_card_declares() -> None:
    assert V2[:len(V1)] == V1 and len(V2) > len(V1)
    assert tuple(feature_set(KIND, "v2").names) == V2
    assert contract_names(KIND) == contract_names(KIND, "v1") == V1
    with pytest.raises(ModelError, match="unknown feature set 'v9'"):
        contract_names(KIND, "v9")


@pytest.mark.parametrize("features", ["v1", "v2"])
def test_package_writes_the_feature_set_into_the_card(mixed: Repo, features: str) -> None:
    mv = mixed.package(features=features)
    card = load_version(mixed.path, MODEL, mv.version).card
    assert card.feature_set == features
    assert tuple(card.feature_names) == contract_names(KIND, features)
    assert version_problems(mv, KIND) == []
    assert load(mv.path / GOLDEN_FILE).feature_names == contract_names(KIND, features)
    assert f"feature set {features}" in (mv.path / "MODEL_CARD.md").read_text()


def test_a_v2_card_is_checked_against_v2_not_v1(mixed: Repo) -> None:
    card = mixed.package(features="v2").card
    assert card_problems(card, KIND) == []
    as_v1 = msgspec.structs.replace(card, feature_set="")  # the same columns, declared v1
    (problem,) = card_problems(as_v1, KIND)
    assert f"the {KIND} v1 contract has {len(V1)}" in problem
    (problem,) = card_problems(msgspec.structs.replace(card, feature_set="v7"), KIND)
    assert "feature set 'v7'" in problem


def test_a_v2_model_does_not_rewrite_the_v1_triton_config(mixed: Repo) -> None:
    config = mixed.path / MODEL / "config.pbtxt"
    before = config.read_text()
    assert triton_width(mixed.path / MODEL) == len(V1)
    mixed.package(features="v2")
    assert config.read_text() == before, "Triton would no longer load the v1 production"


def test_validate_v2_against_v1_production_compares_on_the_same_rows(mixed: Repo) -> None:
    v2 = mixed.package(features="v2")
    verdict = validate(mixed.path, MODEL, v2.version, KIND, mixed.golden, production="1", margins=FAST)
    checks = {c.name: c for c in verdict.checks}
    assert checks["contract"].ok and f"{KIND} v2 feature contract ({len(V2)} features)" in checks["contract"].detail
    assert not checks["feature_set"].ok and not verdict.passed
    assert "expects feature set v2" in checks["feature_set"].detail and "compute v1" in checks["feature_set"].detail
    # production scored on the v1 columns of the same golden rows: both learned the same signal
    assert checks["roc_auc"].ok and verdict.metrics["production_roc_auc"] > 0.9


def test_validate_v2_against_v2_production_passes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, synthetic_golden(features="v2"), features="v2")
    v2 = repo.package(features="v2")
    verdict = validate(repo.path, MODEL, v2.version, KIND, repo.golden, production="1", margins=FAST)
    assert verdict.passed, verdict.text()


def test_golden_sets_are_resolved_for_every_feature_set_scored(mixed: Repo) -> None:
    v1_only = mixed.package(features="v1").path  # its golden.npz holds the v1 columns only
    assert resolve(KIND, v1_only).feature_names == V1
    explicit = mixed.tmp / "v1.npz"
    explicit.write_bytes(load(v1_only / GOLDEN_FILE).to_bytes())
    with pytest.raises(ModelError, match=f"lacks {len(V2) - len(V1)} columns of the {KIND} v2/v1 contract"):
        resolve(KIND, explicit=explicit, feature_sets=("v2", "v1"))
    v2 = mixed.package(features="v2").path
    assert resolve(KIND, v1_only, v2, feature_sets=("v2", "v1")).feature_names == V2, "skips the v1-only set"
