"""The ``scorer-profiles`` runner of ``scorer bench``: the scorer with entity profiles.

``python -m scorer.bench.profiles`` runs the profile worker (``python -m streams``) as a
child process and ``scorer run`` in this one, both configured by the same ``SCORER_*``
environment, with ``SCORER_PROFILES__SOURCE=topic``: the view follows the profile topics
and the join runs in every batch. That needs models trained on feature set v2, and none is
shipped (docs/profiles.md), so :func:`profile_repository` publishes, next to each shipped
model, a version whose card names feature set v2 and whose graph slices the v1 columns off
the v2 input before the same trees: the two runners then differ by the view and the join
alone, not by the model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec

from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.inference.repository import MODEL_FILE, ModelCard, list_versions, load_version, publish_version
from scorer.profiles.join import NoProfiles

V1_COLUMNS = "features_v1"


def profile_repository(source: Path, target: Path, models: dict[EventKind, str]) -> Path:
    """A copy of ``source`` whose newest version of each model takes the v2 features."""
    shutil.copytree(source, target)
    for kind, name in models.items():
        v1 = load_version(target, name)
        names = feature_set(kind, "v2", NoProfiles()).names
        extra = len(names) - len(v1.card.feature_names)
        card: ModelCard = msgspec.structs.replace(
            v1.card, version=str(int(list_versions(target, name)[-1]) + 1), feature_set="v2", feature_names=list(names),
            explain_weights=[*v1.card.explain_weights, *[0.0] * extra] if v1.card.explain_weights else [],
            explain_center=[*v1.card.explain_center, *[0.0] * extra] if v1.card.explain_center else [],
            explain_scale=[*v1.card.explain_scale, *[1.0] * extra] if v1.card.explain_scale else [],
            description=f"benchmark only: {name} v{v1.version} behind feature set v2 (profile columns unused)")
        publish_version(target, card, _sliced((v1.path / MODEL_FILE).read_bytes(), len(names)))
    return target


def _sliced(model_bytes: bytes, width: int) -> bytes:
    """The model with a ``width``-column input whose first columns feed the original graph."""
    import onnx  # only to build the benchmark's models: the runner itself never loads it
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    source = graph.input[0]
    dims = source.type.tensor_type.shape.dim
    n_v1 = dims[1].dim_value
    for node in graph.node:
        node.input[:] = [V1_COLUMNS if i == source.name else i for i in node.input]
    graph.initializer.extend([helper.make_tensor(f"slice_{n}", TensorProto.INT64, [1], [v])
                              for n, v in (("starts", 0), ("ends", n_v1), ("axes", 1))])
    graph.node.insert(0, helper.make_node("Slice", [source.name, "slice_starts", "slice_ends", "slice_axes"],
                                          [V1_COLUMNS]))
    dims[1].dim_value = width
    onnx.checker.check_model(model)
    out: bytes = model.SerializeToString()
    return out


def main() -> int:
    from scorer.cli import main as scorer_main

    worker = subprocess.Popen([sys.executable, "-m", "streams", "--metrics-port", "0"], env=os.environ)
    try:
        return scorer_main(["run"])
    finally:
        worker.terminate()  # finishes its batch in flight, like the scorer
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


if __name__ == "__main__":
    raise SystemExit(main())
