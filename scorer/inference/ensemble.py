"""An ONNX ``TreeEnsembleClassifier``'s parallel node arrays regrouped per tree: what both the
vectorized engine (:mod:`scorer.inference.vectorized`) and the GPU artefact's export
(:mod:`scorer.lifecycle.tree_export`) build their trees from. ``attributes`` is the node's
attributes by name, each a list (``onnx.helper.get_attribute_value``'s or
:func:`scorer.inference.onnx_wire.node_attributes`').
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scorer.errors import ModelError


@dataclass
class TreeNode:
    leaf: bool
    feature: int = 0
    threshold: float = 0.0
    left: int = 0  # the true child (x <= threshold)
    right: int = 0
    missing_left: bool = False  # missing values go to the true child
    value: float = 0.0  # a leaf's weight


def ensemble_trees(attributes: dict[str, Any]) -> list[dict[int, TreeNode]]:
    """The trees in tree-id order, each its nodes by node id; :class:`ModelError` where the
    arrays do not make trees (a tree id without nodes, a weight on no node)."""
    a = attributes
    n_trees = int(max(a["nodes_treeids"])) + 1
    trees: list[dict[int, TreeNode]] = [{} for _ in range(n_trees)]
    missing = a.get("nodes_missing_value_tracks_true") or [0] * len(a["nodes_modes"])
    # Thresholds and weights stay float32 as stored: ORT compares the float32 input with them.
    thresholds, weights = (np.asarray(a.get(k, ()), np.float32).astype(np.float64).tolist()
                           for k in ("nodes_values", "class_weights"))
    for i, (t, nid, mode) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"], a["nodes_modes"], strict=True)):
        if mode == b"LEAF":
            trees[t][nid] = TreeNode(leaf=True)
        else:
            trees[t][nid] = TreeNode(False, int(a["nodes_featureids"][i]), thresholds[i],
                                     int(a["nodes_truenodeids"][i]), int(a["nodes_falsenodeids"][i]),
                                     bool(missing[i]))
    for t, nid, w in zip(a["class_treeids"], a["class_nodeids"], weights, strict=True):
        node = trees[t].get(nid) if 0 <= t < n_trees else None
        if node is None:
            raise ModelError(f"a class weight names node {nid} of tree {t}, which has none")
        node.value += w
    if any(not tree for tree in trees):
        raise ModelError("a tree id has no nodes")
    return trees
