"""The in-process engine ``vectorized``: a version's ONNX tree ensemble scored 16 rows a compare
(8 with AVX2), up to four such blocks a pass over the nodes, by :mod:`scorer.native._forest`,
with no C compiler, tl2cgen or library.

The engine reads the one ``TreeEnsembleClassifier`` of ``model.onnx`` (the bytes the
repository verified against SHA256SUMS) into QuickScorer's arrays: per tree its test nodes
(feature, threshold, the leaves they rule out when false) and up to 32 leaf values. The
compiled engine (:mod:`scorer.inference.compiled`) takes a branch per node and a row at a
time; here a tree costs the same compares for every row, vectorized over rows: see
docs/benchmarks.md section 39 for what that is worth on the shipped models.

ONNX Runtime stays the reference, as for the compiled engine: before the forest scores
anything its scores of the version's check rows must equal the ONNX session's (max |diff|
<= 1e-5, the same alert decisions at the version's threshold). A version the engine cannot
take raises :class:`EngineUnavailable` with the reason as a metric label: ``native`` (the
module is not built), ``cpu`` (neither AVX-512 nor AVX2), ``integrity`` (the model's bytes
are not those SHA256SUMS lists), ``not_trees`` (no single tree ensemble node),
``unsupported`` (what this engine does not score: a multi-class or non-logistic output,
mixed split modes, a tree of more than 32 leaves), ``mismatch`` (a check row scored
otherwise).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from scorer.errors import ModelError
from scorer.inference.base import FloatMatrix, FloatVector
from scorer.inference.compiled import TOLERANCE, EngineUnavailable, check_rows
from scorer.inference.compiled_build import agreement
from scorer.inference.ensemble import TreeNode, ensemble_trees
from scorer.inference.onnx_wire import WireError, node_attributes
from scorer.inference.repository import CHECKSUMS, MODEL_FILE, ModelVersion, listed_checksums

log = logging.getLogger(__name__)

LEAVES = 32  # scorer.native._forest.LEAVES: one bit a leaf in a 32-bit word a row
_MODES = {b"BRANCH_LEQ": 0, b"BRANCH_LT": 1}


class ForestArrays:
    """QuickScorer's arrays of one tree ensemble, in the layout ``_forest.Forest`` takes."""

    def __init__(self, trees: Sequence[dict[int, TreeNode]], mode: int) -> None:
        start, split, feature, threshold, mask = [0], [], [], [], []
        leaves = np.zeros((len(trees), LEAVES), np.float32)
        for t, nodes in enumerate(trees):
            tests, leaf_values = _walk(t, nodes)
            # Missing values to the false child first, then to the true child: one compare
            # predicate per run (the C kernels' split).
            tests.sort(key=lambda test: test[3])
            split.append(start[-1] + sum(1 for test in tests if not test[3]))
            for f, th, m, _ in tests:
                feature.append(f)
                threshold.append(th)
                mask.append(m)
            start.append(start[-1] + len(tests))
            leaves[t, :len(leaf_values)] = leaf_values
        self.start = np.asarray(start, np.int32)
        self.split = np.asarray(split, np.int32)
        self.feature = np.asarray(feature, np.int32)
        self.threshold = np.asarray(threshold, np.float32)
        self.mask = np.asarray(mask, np.uint32)
        self.leaves = leaves.ravel()
        self.mode = mode


def _walk(tree_id: int, nodes: dict[int, TreeNode]) -> tuple[list[tuple[int, float, int, bool]], list[float]]:
    """A tree's tests (feature, threshold, mask, missing to the true child) and its leaf
    values, leaves numbered left to right with the true child first."""
    children = {c for node in nodes.values() if not node.leaf for c in (node.left, node.right)}
    roots = [n for n in nodes if n not in children]
    if len(roots) != 1:
        raise EngineUnavailable("not_trees", f"tree {tree_id}: {len(roots)} roots")
    tests: list[tuple[int, float, int, bool]] = []
    values: list[float] = []

    def visit(node_id: int, depth: int) -> None:  # the deepest shipped tree is 20 levels
        node = nodes.get(node_id)
        if node is None or depth > 512:
            raise EngineUnavailable("not_trees", f"tree {tree_id}: node {node_id} is missing or in a cycle")
        if node.leaf:
            values.append(node.value)
            if len(values) > LEAVES:
                raise EngineUnavailable("unsupported", f"tree {tree_id} has more than {LEAVES} leaves")
            return
        first = len(values)
        visit(node.left, depth + 1)
        ruled_out = ((1 << len(values)) - 1) ^ ((1 << first) - 1)  # the true subtree's leaves
        tests.append((node.feature, node.threshold, ~ruled_out & 0xFFFFFFFF, node.missing_left))
        visit(node.right, depth + 1)

    visit(roots[0], 0)
    return tests, values


def forest_arrays(model: bytes) -> tuple[ForestArrays, float]:
    """The arrays and base value of the model's one binary, logistic TreeEnsembleClassifier."""
    try:
        found = node_attributes(model, "TreeEnsembleClassifier")
    except WireError as exc:
        raise EngineUnavailable("not_trees", f"model.onnx does not read as ONNX: {exc}") from None
    if len(found) != 1:
        raise EngineUnavailable("not_trees", f"expected one TreeEnsembleClassifier node, found {len(found)}")
    a = found[0]
    if a.get("post_transform", b"NONE") != b"LOGISTIC" or len(a.get("classlabels_int64s", [])) != 2 \
            or set(a.get("class_ids", [])) - {0}:
        raise EngineUnavailable("unsupported", "not a binary ensemble with one weight a leaf and a LOGISTIC output")
    modes = set(a["nodes_modes"]) - {b"LEAF"}
    if len(modes) > 1 or not modes <= set(_MODES):
        raise EngineUnavailable("unsupported", f"split modes {sorted(modes)}: one of {sorted(_MODES)} is scored")
    try:
        trees = ensemble_trees(a)
    except ModelError as exc:
        raise EngineUnavailable("not_trees", f"model.onnx: {exc}") from None
    base = a.get("base_values") or [0.0]
    return ForestArrays(trees, _MODES[modes.pop()] if modes else 0), float(base[0])


class VectorizedTrees:
    """One version's forest in ``_forest.Forest``, checked against its ONNX session."""

    __slots__ = ("forest", "kernel")

    def __init__(self, arrays: ForestArrays, base: float, n_features: int) -> None:
        try:
            import scorer.native._forest as _forest
        except ImportError as exc:
            raise EngineUnavailable("native", f"scorer.native._forest is not built: {exc}") from None
        forest = _forest.Forest(arrays.start, arrays.split, arrays.feature, arrays.threshold, arrays.mask,
                                     arrays.leaves, n_features, base, True, arrays.mode)
        self.forest, self.kernel = forest, str(_forest.kernels()[-1])
        if self.kernel == "scalar":  # every node of every tree a row: slower than the session
            raise EngineUnavailable("cpu", "the CPU has neither AVX-512 nor AVX2")

    def score(self, matrix: FloatMatrix, kernel: str = "auto") -> FloatVector:
        out: npt.NDArray[np.float32] = np.empty(matrix.shape[0], dtype=np.float32)
        if kernel == "auto":
            self.forest.score(matrix, out)  # no keyword: the C call parses no keywords
        else:
            self.forest.score(matrix, out, kernel=kernel)
        return out


def open_vectorized(version: ModelVersion, reference: Callable[[FloatMatrix], FloatVector], *,
                    verify: bool = True) -> VectorizedTrees:
    """``version``'s forest, once it scores the check rows as ``reference`` (the version's
    ONNX Runtime scores) does. The bytes of ``model.onnx`` read here are checked against
    SHA256SUMS again (``verify``): the file may have changed since the session read it."""
    n_features = len(version.card.feature_names)
    data = version.onnx_path.read_bytes()
    if verify and listed_checksums(version.path).get(MODEL_FILE) != hashlib.sha256(data).hexdigest():
        raise EngineUnavailable("integrity", f"{version.onnx_path}: sha256 does not match {CHECKSUMS}")
    arrays, base = forest_arrays(data)
    if arrays.feature.size and int(arrays.feature.max()) >= n_features:
        raise EngineUnavailable("mismatch", f"{version.onnx_path}: a node tests feature {int(arrays.feature.max())}, "
                                f"the card lists {n_features}")
    trees = VectorizedTrees(arrays, base, n_features)
    rows = check_rows(version, n_features)
    found = agreement(trees.score(rows), reference(rows), version.card.threshold, TOLERANCE)
    if not found.ok(TOLERANCE):
        raise EngineUnavailable("mismatch", f"{version.onnx_path}: the vectorized forest disagrees with ONNX Runtime "
                                f"on {found.rows} check rows: max |diff| {found.max_abs_diff:.3g}, "
                                f"{found.decisions_differ} decisions differ")
    log.info("%s:%s scored by the vectorized forest (%d trees, %s kernel)", version.name, version.version,
             len(arrays.split), trees.kernel)
    return trees


def vectorized_check(version: ModelVersion, reference: Callable[[FloatMatrix], FloatVector]) -> tuple[bool, str]:
    """``scorer models validate``'s verdict on the version under the service's default engine:
    (ok, detail). A version the engine does not take for a reason a deployment expects (not
    trees it scores, no AVX2 here) passes with what scores it instead; one whose forest scores
    the check rows otherwise than ``reference`` (ONNX Runtime) fails: the engine would refuse it."""
    try:
        trees = open_vectorized(version, reference)
    except EngineUnavailable as exc:
        if exc.reason in EngineUnavailable.EXPECTED:
            return True, f"not taken ({exc.reason}: {exc}); auto scores it with the compiled trees or ONNX Runtime"
        return False, f"{exc.reason}: {exc}"
    return True, f"{trees.forest.n_trees} trees, the {trees.kernel} kernel: the check rows scored as by ONNX Runtime"
