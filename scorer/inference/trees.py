"""Tree-ensemble scoring as dense tensor gathers: the GPU path for the shipped models.

The shipped classifiers are ONNX ``TreeEnsembleClassifier`` graphs (binary, LOGISTIC).
This reads their node arrays into ``[trees, nodes]`` tables and walks every tree for every
row at once, one gather per level ("perfect traversal": leaves point to themselves), so
the same code runs on numpy (CPU, and CI) and on torch (CUDA on an H100). Only the
operations both libraries share are used: indexing, ``where`` and ``sum``.

Features are always finite (scorer.features guarantees it), so the missing-value
branches of the ONNX graph never apply and are not modelled.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclasses.dataclass(frozen=True)
class TreeTables:
    feature: npt.NDArray[np.int64]  # [T, N] feature index per node (0 at leaves)
    threshold: npt.NDArray[np.float32]  # [T, N]
    left: npt.NDArray[np.int64]  # [T, N] next node when x <= threshold (self at leaves)
    right: npt.NDArray[np.int64]  # [T, N]
    leaf_value: npt.NDArray[np.float32]  # [T, N] 0 at branches
    depth: int
    base: float


def load_tables(onnx_path: Path) -> TreeTables:
    import onnx

    model = onnx.load(str(onnx_path))
    (node,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    if a.get("post_transform", b"NONE") != b"LOGISTIC" or len(a.get("classlabels_int64s", [])) != 2:
        raise ValueError(f"{onnx_path}: only binary LOGISTIC tree ensembles are supported")
    tree_ids = np.asarray(a["nodes_treeids"], np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], np.int64)
    n_trees, n_nodes = int(tree_ids.max()) + 1, int(node_ids.max()) + 1
    leaf = np.asarray([m == b"LEAF" for m in a["nodes_modes"]])
    if not all(m in (b"LEAF", b"BRANCH_LEQ") for m in a["nodes_modes"]):
        raise ValueError(f"{onnx_path}: only BRANCH_LEQ splits are supported")

    def table(values: Any, dtype: Any, fill: Any) -> Any:
        out = np.full((n_trees, n_nodes), fill, dtype=dtype)
        out[tree_ids, node_ids] = values
        return out

    self_ids = node_ids
    left = table(np.where(leaf, self_ids, np.asarray(a["nodes_truenodeids"])), np.int64, 0)
    right = table(np.where(leaf, self_ids, np.asarray(a["nodes_falsenodeids"])), np.int64, 0)
    feature = table(np.where(leaf, 0, np.asarray(a["nodes_featureids"])), np.int64, 0)
    threshold = table(np.asarray(a["nodes_values"], np.float32), np.float32, 0.0)
    leaf_value = np.zeros((n_trees, n_nodes), np.float32)
    np.add.at(leaf_value, (np.asarray(a["class_treeids"]), np.asarray(a["class_nodeids"])),
              np.asarray(a["class_weights"], np.float32))
    return TreeTables(feature, threshold, left, right, leaf_value, _depth(left, right),
                      float(np.sum(a.get("base_values", [0.0]))))


def _depth(left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> int:
    """Longest root-to-leaf path over all trees: how many gathers a traversal needs."""
    deepest = 0
    for t in range(left.shape[0]):
        stack = [(0, 0)]
        while stack:
            node, d = stack.pop()
            if left[t, node] == node:  # leaf (points to itself)
                deepest = max(deepest, d)
            else:
                stack += [(int(left[t, node]), d + 1), (int(right[t, node]), d + 1)]
    return deepest


def predict(tables: Any, x: Any, xp: Any = np) -> Any:
    """P(malicious) per row of ``x`` [B, F]; ``tables`` hold arrays of the ``xp`` library.

    Index arrays are derived from ``x`` and the tables, never created from scratch, so they
    live on ``x``'s device (a requirement of CUDA-graph capture too).
    """
    idt = tables["left"].dtype
    trees = tables["trees"]  # [1, T]
    rows = (xp.cumsum(xp.ones_like(x[:, 0], dtype=idt), 0) - 1)[:, None]  # [B, 1]
    node = xp.zeros_like(x[:, :1], dtype=idt) + tables["zero_nodes"]  # [B, T]
    for _ in range(tables["depth"]):
        value = x[rows, tables["feature"][trees, node]]
        go_left = value <= tables["threshold"][trees, node]
        node = xp.where(go_left, tables["left"][trees, node], tables["right"][trees, node])
    margin = tables["leaf_value"][trees, node].sum(1) + tables["base"]
    return 1.0 / (1.0 + xp.exp(-margin))


def as_arrays(t: TreeTables, to: Any = None) -> dict[str, Any]:
    """The tables as a dict of arrays, converted by ``to`` (e.g. a torch.as_tensor partial)."""
    conv = to or (lambda a: a)
    n_trees = t.feature.shape[0]
    return {"feature": conv(t.feature), "threshold": conv(t.threshold), "left": conv(t.left),
            "right": conv(t.right), "leaf_value": conv(t.leaf_value), "depth": t.depth, "base": t.base,
            "trees": conv(np.arange(n_trees, dtype=np.int64)[None, :]),
            "zero_nodes": conv(np.zeros((1, n_trees), dtype=np.int64))}
