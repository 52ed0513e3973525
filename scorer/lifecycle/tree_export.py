"""The GPU artefact of a model version: its ONNX tree ensemble as a Treelite checkpoint.

nvForest (the forest-inference engine that runs the shipped models on a GPU host, see
docs/gpu-serving.md) loads Treelite checkpoints, not ONNX. This module rebuilds the one
``TreeEnsembleClassifier`` node of ``model.onnx`` node for node with Treelite's model
builder and writes ``model.tl`` beside it, listed in the version's SHA256SUMS, so the GPU
serves exactly the trees the CPU does (same float32 thresholds, same ``<=`` test, same
leaf weights, same base score and sigmoid).

Converting the ONNX file rather than the estimator means every path that produces a
version (the shipped models, ``scorer models package`` of scikit-learn, LightGBM or XGBoost
files) yields the artefact the same way. Equality is checked on CPU with Treelite's own
reference predictor (GTIL): :func:`compare` against ONNX Runtime on real rows.

Needs ``onnx`` and ``treelite`` (the ``train`` extra), imported on use.

    python -m scorer.lifecycle.tree_export model_repository/netflow_classifier/1 ...
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.errors import ModelError
from scorer.inference.ensemble import ensemble_trees
from scorer.inference.repository import CHECKSUMS, MODEL_FILE, sha256_file, write_checksums

ARTEFACT = "model.tl"  # Treelite checkpoint (nvforest.load_model(..., model_type="treelite_checkpoint"))
# Tolerance of GPU/CPU scores against ONNX Runtime's: float32 sums of up to ~1,000 leaves
# in another order differ in the last bits, never by this much.
TOLERANCE = 1e-5


def from_onnx(onnx_model: bytes | Path) -> Any:
    """The ONNX model's tree ensemble as a ``treelite.Model`` (binary, sigmoid output)."""
    import onnx
    import treelite.model_builder as tmb

    model = onnx.load_from_string(onnx_model) if isinstance(onnx_model, bytes) else onnx.load(str(onnx_model))
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(nodes) != 1:
        raise ModelError(f"expected one TreeEnsembleClassifier node, found {len(nodes)}")
    a = {x.name: onnx.helper.get_attribute_value(x) for x in nodes[0].attribute}
    if a.get("post_transform", b"NONE") != b"LOGISTIC" or len(a.get("classlabels_int64s", [])) != 2:
        raise ModelError("only binary tree ensembles with a LOGISTIC output are exported")
    if set(a.get("class_ids", [])) - {0}:
        raise ModelError("expected one weight per leaf (class_ids all 0): a binary margin")
    modes = a["nodes_modes"]
    if not set(modes) <= {b"LEAF", b"BRANCH_LEQ"}:
        raise ModelError(f"only BRANCH_LEQ splits are exported, not {sorted(set(modes) - {b'LEAF', b'BRANCH_LEQ'})}")
    n_features = int(model.graph.input[0].type.tensor_type.shape.dim[1].dim_value)
    trees = ensemble_trees(a)
    builder: Any = tmb.ModelBuilder(  # treelite is untyped
        threshold_type="float32", leaf_output_type="float32",
        metadata=tmb.Metadata(num_feature=n_features, task_type="kBinaryClf", average_tree_output=False,
                              num_target=1, num_class=[1], leaf_vector_shape=(1, 1)),
        tree_annotation=tmb.TreeAnnotation(num_tree=len(trees), target_id=[0] * len(trees),
                                           class_id=[0] * len(trees)),
        postprocessor=tmb.PostProcessorFunc(name="sigmoid"),
        base_scores=[float(np.float32(sum(a.get("base_values", [0.0]))))],
    )
    for tree in trees:
        builder.start_tree()
        for key, node in sorted(tree.items()):
            builder.start_node(key)
            if node.leaf:
                builder.leaf(node.value)
            else:
                builder.numerical_test(node.feature, node.threshold, default_left=node.missing_left,
                                       opname="<=", left_child_key=node.left, right_child_key=node.right)
            builder.end_node()
        builder.end_tree()
    return builder.commit()


def export(version_dir: Path) -> Path:
    """Write ``model.tl`` from the version's ``model.onnx`` and list it in SHA256SUMS.

    Only the checkpoint's line is added or replaced: the other files keep the digests they
    were published with, so an export never vouches for a file changed since."""
    onnx_path = version_dir / MODEL_FILE
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: no model to export")
    out = version_dir / ARTEFACT
    out.write_bytes(bytes(from_onnx(onnx_path).serialize_bytes()))
    sums = version_dir / CHECKSUMS
    if not sums.is_file():
        write_checksums(version_dir)
        return out
    lines = {line.partition("  ")[2]: line for line in sums.read_text().splitlines() if line.strip()}
    lines[ARTEFACT] = f"{sha256_file(out)}  {ARTEFACT}"
    sums.write_text("".join(f"{lines[name]}\n" for name in sorted(lines)))
    return out


def load(path: Path) -> Any:
    import treelite

    try:
        return treelite.Model.deserialize(str(path))
    except treelite.TreeliteError as exc:
        raise ModelError(f"{path}: not a Treelite checkpoint: {exc}") from None


def predict(model: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """P(malicious) per row by Treelite's reference CPU predictor (GTIL)."""
    import treelite.gtil

    out = treelite.gtil.predict(model, np.ascontiguousarray(x, dtype=np.float32), nthread=1)
    return np.asarray(out, dtype=np.float32).reshape(len(x))


@dataclass(frozen=True)
class Agreement:
    rows: int
    max_abs_diff: float
    decisions_differ: int  # rows alerting on one side of the threshold only (beyond rounding of it)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= TOLERANCE and self.decisions_differ == 0

    def text(self) -> str:
        return (f"{ARTEFACT} vs ONNX Runtime on {self.rows} rows: max |diff| {self.max_abs_diff:.2e} "
                f"(tolerance {TOLERANCE:.0e}), {self.decisions_differ} alert decisions differ")


def agreement(model: Any, onnx_scores: npt.NDArray[np.float32], x: npt.NDArray[np.float32],
              threshold: float) -> Agreement:
    """A Treelite model's scores against ONNX Runtime's on ``x``, and decisions at ``threshold``."""
    tree_scores = predict(model, x)
    onnx_scores = np.asarray(onnx_scores, np.float32)
    diff = float(np.max(np.abs(tree_scores - onnx_scores))) if len(x) else 0.0
    # A row whose score is within float rounding of the threshold may fall on either side in
    # any engine (summation order alone moves it by ~1e-7; a threshold chosen as a quantile
    # of golden scores sits exactly on tied rows), so only decisions away from it must agree.
    clear = np.abs(onnx_scores.astype(np.float64) - threshold) > TOLERANCE
    differ = int(np.count_nonzero(((tree_scores >= threshold) != (onnx_scores >= threshold)) & clear))
    return Agreement(len(x), diff, differ)


def compare(version_dir: Path, x: npt.NDArray[np.float32], threshold: float) -> Agreement:
    """The version's checkpoint against its ONNX model scored by ONNX Runtime."""
    from scorer.lifecycle.validate import scores  # ORT, as validate scores the golden set

    return agreement(load(version_dir / ARTEFACT), scores(version_dir / MODEL_FILE, x), x, threshold)


def artefact_for(onnx_model: bytes, x: npt.NDArray[np.float32], onnx_scores: npt.NDArray[np.float32],
                 threshold: float) -> bytes | None:
    """The checkpoint to publish with a new version, checked on ``x`` (its golden rows);
    None for a model that is no binary tree ensemble (it is served on CPUs only)."""
    try:
        model = from_onnx(onnx_model)
    except ModelError:
        return None
    found = agreement(model, onnx_scores, x, threshold)
    if not found.ok:  # a conversion bug must not reach a GPU host
        raise ModelError(f"GPU artefact does not reproduce the model: {found.text()}")
    return bytes(model.serialize_bytes())


def gpu_check(version_dir: Path, x: npt.NDArray[np.float32], onnx_scores: npt.NDArray[np.float32],
              threshold: float) -> tuple[str, bool, str]:
    """``validate``'s check of a version's GPU artefact on its golden rows: (name, ok, detail).
    A tree ensemble must carry a checkpoint that reproduces it; other models have none."""
    path = version_dir / ARTEFACT
    if not path.is_file():
        try:
            from_onnx(version_dir / MODEL_FILE)
        except ModelError:
            return GPU_CHECK, True, f"no {ARTEFACT}: not a binary tree ensemble, served by ONNX Runtime only"
        return GPU_CHECK, False, f"no {ARTEFACT} for this tree ensemble (python -m scorer.lifecycle.tree_export)"
    try:
        found = agreement(load(path), onnx_scores, x, threshold)
    except ModelError as exc:
        return GPU_CHECK, False, str(exc)
    return GPU_CHECK, found.ok, found.text()


GPU_CHECK = "gpu_artefact"


def main(argv: list[str] | None = None) -> None:
    for arg in argv if argv is not None else sys.argv[1:]:
        print(export(Path(arg)))


if __name__ == "__main__":
    main()
