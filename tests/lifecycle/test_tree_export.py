"""scorer.lifecycle.tree_export: the Treelite checkpoint nvForest serves equals the ONNX model.

Checked on CPU with Treelite's own reference predictor (GTIL), on the bundled capture's real
feature rows as the service computes them: scores within 1e-5 of ONNX Runtime and the same
alert decision at the card's threshold for every row. The shipped checkpoints are the ones
the exporter makes from the committed model.onnx, and SHA256SUMS covers them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from scorer.config import Settings
from scorer.demo import bundled_capture, capture_records
from scorer.errors import ModelError
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind
from scorer.inference.repository import load_version, verify_checksums, write_checksums
from scorer.lifecycle import tree_export
from scorer.service.build import build_runtimes, load_rules
from tests.support.paths import MODEL_REPOSITORY


def _real_rows(kind: EventKind) -> npt.NDArray[np.float32]:
    dec = EventDecoder()
    events = [dec.decode(kind, r.value, r.ref) for r in capture_records(bundled_capture()) if r.kind == kind]
    settings = Settings(inference=Settings().inference.model_copy(update={"model_repository": MODEL_REPOSITORY}))
    features = build_runtimes(settings, rules=load_rules(settings))[kind].features  # EDR v3 reads rule hits
    return np.asarray(features.transform(events), np.float32)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(EventKind))
def test_exported_trees_equal_onnxruntime_on_real_rows(kind: EventKind, tmp_path: Path) -> None:
    version = load_version(MODEL_REPOSITORY, f"{kind}_classifier")
    shutil.copy(version.onnx_path, tmp_path / "model.onnx")
    tree_export.export(tmp_path)
    x = _real_rows(kind)
    agreement = tree_export.compare(tmp_path, x, version.card.threshold)
    assert agreement.rows == len(x) > 1000
    assert agreement.max_abs_diff <= tree_export.TOLERANCE and agreement.decisions_differ == 0, agreement.text()
    assert agreement.ok
    # Rows at the card's cut-off itself still fall on the same side: scores near the threshold.
    near = x[np.argsort(np.abs(tree_export.predict(tree_export.load(tmp_path / "model.tl"), x)
                               - version.card.threshold))[:50]]
    assert tree_export.compare(tmp_path, near, version.card.threshold).decisions_differ == 0


@pytest.mark.parametrize("kind", list(EventKind))
def test_shipped_checkpoint_is_the_export_of_the_shipped_onnx(kind: EventKind, tmp_path: Path) -> None:
    version = load_version(MODEL_REPOSITORY, f"{kind}_classifier")
    verify_checksums(version.path)
    listed = (version.path / "SHA256SUMS").read_text()
    assert f"  {tree_export.ARTEFACT}\n" in listed
    shutil.copy(version.onnx_path, tmp_path / "model.onnx")
    made = tree_export.load(tree_export.export(tmp_path))
    shipped = tree_export.load(version.path / tree_export.ARTEFACT)
    # Same trees, whatever Treelite release wrote the file: equal structure, equal scores.
    assert (shipped.num_tree, shipped.num_feature) == (made.num_tree, made.num_feature)
    x = _real_rows(kind)
    assert np.array_equal(tree_export.predict(shipped, x), tree_export.predict(made, x))


def test_export_lists_the_checkpoint_and_tampering_is_caught(tmp_path: Path) -> None:
    shutil.copy(MODEL_REPOSITORY / "siem_classifier" / "1" / "model.onnx", tmp_path / "model.onnx")
    tree_export.export(tmp_path)
    verify_checksums(tmp_path)
    # A re-export lists only its own file: a card changed since publishing stays caught.
    (tmp_path / "card.json").write_text("{}")
    write_checksums(tmp_path)
    (tmp_path / "card.json").write_text('{"edited": true}')
    tree_export.export(tmp_path)
    with pytest.raises(ModelError, match=r"card\.json"):
        verify_checksums(tmp_path)
    (tmp_path / "card.json").write_text("{}")
    verify_checksums(tmp_path)
    (tmp_path / tree_export.ARTEFACT).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="sha256"):
        verify_checksums(tmp_path)
    with pytest.raises(ModelError, match="not a Treelite checkpoint"):
        tree_export.load(tmp_path / tree_export.ARTEFACT)


def test_a_model_without_a_tree_ensemble_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    linear = to_onnx(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), x[:1])
    with pytest.raises(ModelError, match="TreeEnsembleClassifier"):
        tree_export.from_onnx(linear.SerializeToString())
    with pytest.raises(ModelError, match="no model to export"):
        tree_export.export(tmp_path)


def test_a_split_other_than_leq_is_refused() -> None:
    model = onnx.load(str(MODEL_REPOSITORY / "netflow_classifier" / "1" / "model.onnx"))
    node = model.graph.node[0]
    modes = next(a for a in node.attribute if a.name == "nodes_modes")
    modes.strings[0] = b"BRANCH_LT"
    with pytest.raises(ModelError, match="BRANCH_LEQ"):
        tree_export.from_onnx(model.SerializeToString())


class _Fixed:
    """A stand-in Treelite model for :func:`tree_export.agreement`'s decision rule only."""


def test_rows_within_rounding_of_the_threshold_may_fall_either_side(monkeypatch: pytest.MonkeyPatch) -> None:
    onnx_scores = np.array([0.5, 0.5, 0.9, 0.1], np.float32)  # two rows tied on the threshold
    trees = np.array([0.5 - 1e-7, 0.5, 0.9, 0.1], np.float32)  # one tie rounded below it
    monkeypatch.setattr(tree_export, "predict", lambda model, x: trees)
    x = np.zeros((4, 2), np.float32)
    assert tree_export.agreement(_Fixed(), onnx_scores, x, 0.5).decisions_differ == 0
    flipped = np.array([0.5, 0.5, 0.4, 0.1], np.float32)  # a clear alert lost: not rounding
    monkeypatch.setattr(tree_export, "predict", lambda model, x: flipped)
    found = tree_export.agreement(_Fixed(), onnx_scores, x, 0.5)
    assert found.decisions_differ == 1 and not found.ok
