"""package and validate on real ONNX models (scikit-learn -> skl2onnx), synthetic rows."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from scorer.config import LifecycleSettings, Settings
from scorer.errors import ModelError
from scorer.inference.repository import load_version, publish_version
from scorer.inference.triton_config import input_width as triton_width
from scorer.lifecycle.contract import contract_names, onnx_problems, version_problems
from scorer.lifecycle.golden import GOLDEN_FILE, load, resolve
from scorer.lifecycle.ops import Context, pin_versions
from scorer.lifecycle.package import PackageRequest, onnx_from_file, package
from scorer.lifecycle.validate import Margins, paired_ratio, validate
from tests.support.lifecycle import KIND, MODEL, Repo, synthetic_golden
from tests.support.models import build_tiny_model


def test_package_writes_a_complete_verified_version(repo: Repo) -> None:
    v2 = repo.package()
    assert v2.version == "2"
    files = {p.name for p in v2.path.iterdir()}
    assert {"model.onnx", "card.json", "MODEL_CARD.md", GOLDEN_FILE, "SHA256SUMS"} <= files
    listed = {line.split("  ")[1] for line in (v2.path / "SHA256SUMS").read_text().splitlines()}
    assert listed == files - {"SHA256SUMS"}
    loaded = load_version(repo.path, MODEL, "2")  # checksums verified
    assert loaded.card.feature_names == list(contract_names(KIND)) and loaded.card.kind == KIND
    assert len(loaded.card.explain_weights) == len(contract_names(KIND))
    assert set(loaded.card.severity_cutoffs) == {"Low", "Medium", "High", "Critical"}
    config = (repo.path / MODEL / "config.pbtxt").read_text()
    assert "dynamic_batching" in config and "KIND_GPU" in config and triton_width(repo.path / MODEL) == 88
    assert "KIND_CPU" in (repo.path / MODEL / "configs" / "cpu.pbtxt").read_text()
    assert not version_problems(loaded, KIND)
    assert load(v2.path / GOLDEN_FILE).feature_names == contract_names(KIND)


def test_default_threshold_keeps_the_production_alert_rate(repo: Repo) -> None:
    v2 = repo.package()
    rate = v2.card.metrics["golden_alert_rate_benign"]
    assert rate == pytest.approx(0.05, abs=0.01)  # v1 was packaged at 5% of benign rows


def test_package_refuses_existing_versions_and_foreign_files(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="immutable"):
        repo.package(version="1")
    bogus = tmp_path / "model.txt"
    bogus.write_text("no")
    with pytest.raises(ModelError, match=r"expected \.onnx"):
        onnx_from_file(bogus, 88, repo.golden.features)


def test_package_refuses_an_onnx_of_the_wrong_width(repo: Repo, tmp_path: Path) -> None:
    tiny = build_tiny_model("x", "1", n_features=87)
    path = tmp_path / "narrow.onnx"
    path.write_bytes(tiny.onnx_bytes)
    with pytest.raises(ModelError, match=r"input shape \[None, 87\], expected \[batch, 88\]"):
        package(repo.path, PackageRequest(KIND, path, MODEL, repo.golden, repo.production))


def test_validate_passes_an_equal_model_and_fails_a_shuffled_one(repo: Repo) -> None:
    good, bad = repo.package(), repo.package(shuffle=True)
    ok = validate(repo.path, MODEL, good.version, KIND, repo.golden, production="1")
    assert ok.passed, ok.text()
    assert [c.name for c in ok.checks] == ["integrity", "contract", "feature_set", "roc_auc", "recall",
                                           "alert_volume", "gpu_artefact", "compiled_trees", "vectorized_trees",
                                           "latency"]
    verdict = validate(repo.path, MODEL, bad.version, KIND, repo.golden, production="1")
    assert not verdict.passed
    failed = {c.name for c in verdict.checks if not c.ok}
    assert {"roc_auc", "recall"} <= failed
    assert verdict.metrics["candidate_roc_auc"] < 0.6 < 0.9 < verdict.metrics["production_roc_auc"]
    assert "FAIL: siem_classifier version 3" in verdict.text()


def test_validate_latency_budget(repo: Repo) -> None:
    v2 = repo.package()
    verdict = validate(repo.path, MODEL, v2.version, KIND, repo.golden, production="1",
                       margins=Margins(latency_us_per_event=1e-6, batch=256, runs=3))
    (budget,) = [c for c in verdict.checks if c.name == "latency_budget"]
    assert not budget.ok and "budget" in budget.detail and not verdict.passed


def test_validate_refuses_tampered_and_wrong_width_without_a_golden_set(repo: Repo) -> None:
    v2 = repo.package()
    with (v2.path / "model.onnx").open("ab") as fh:
        fh.write(b"\0")

    def no_golden(feature_sets: tuple[str, ...]) -> None:
        raise AssertionError("a refused version needs no golden set")

    verdict = validate(repo.path, MODEL, "2", KIND, no_golden, production="1")  # type: ignore[arg-type]
    assert not verdict.passed and verdict.checks[0].name == "integrity"
    assert "does not match recorded" in verdict.checks[0].detail
    tiny = build_tiny_model(MODEL, "3", n_features=87)
    card = msgspec.structs.replace(tiny.card, kind=KIND, feature_names=list(contract_names(KIND)))
    publish_version(repo.path, card, tiny.onnx_bytes)
    verdict = validate(repo.path, MODEL, "3", KIND, no_golden, production="1")  # type: ignore[arg-type]
    assert [c.ok for c in verdict.checks] == [True, False]
    assert "expected [batch, 88]" in verdict.checks[1].detail


def test_contract_problems_name_what_is_wrong() -> None:
    wide = build_tiny_model("x", "1", n_features=88).onnx_bytes
    assert onnx_problems(wide, 88) == []
    assert onnx_problems(b"not onnx", 88)[0].startswith("onnxruntime cannot load")
    assert "expected [batch, 12]" in onnx_problems(wide, 12)[0]


def test_golden_sets_round_trip_and_resolve(repo: Repo, tmp_path: Path) -> None:
    v2 = repo.package()
    golden = resolve(KIND, None, v2.path)
    np.testing.assert_array_equal(golden.features, repo.golden.features)
    path = tmp_path / "g.npz"
    path.write_bytes(synthetic_golden(10, seed=3).to_bytes())
    assert len(resolve(KIND, v2.path, explicit=path).labels) == 10
    with pytest.raises(ModelError, match="lacks 28 columns of the netflow v1 contract"):
        resolve("netflow", explicit=path)
    assert json.loads((v2.path / "card.json").read_text())["metrics"]["golden_roc_auc"] > 0.9


def test_pinning_names_the_versions_in_use_and_keeps_the_rest(repo: Repo) -> None:
    repo.package()
    before = (repo.path / MODEL / "config.pbtxt").read_text()
    assert "num_versions: 2" in before
    assert pin_versions(Context(Settings(), LifecycleSettings(), repo.path), KIND, {"2", "1", None}) == [1, 2]
    for name in ("config.pbtxt", "configs/cpu.pbtxt"):
        after = (repo.path / MODEL / name).read_text()
        assert "specific" in after and "versions: 1" in after and "versions: 2" in after
        assert "latest" not in after and "dims: 88" in after and "max_queue_delay_microseconds: 200" in after
    assert "KIND_GPU" in (repo.path / MODEL / "config.pbtxt").read_text()


def test_the_latency_ratio_pairs_runs_so_drift_in_the_machine_cancels() -> None:
    # The machine slowed 4x for the last runs; the candidate's runs met more of it by chance.
    candidate, production = [1.0, 1.0, 4.0, 4.0, 4.0], [1.0, 1.0, 1.0, 4.0, 4.0]
    assert paired_ratio(candidate, production) == 1.0
    assert float(np.median(candidate)) / float(np.median(production)) == 4.0  # what a ratio of medians says
    assert paired_ratio([2.0, 2.2, 1.8], [1.0, 1.0, 1.0]) == 2.0
