"""The tensor traversal of the shipped tree ensembles equals ONNX Runtime (CPU, numpy).

The same ``predict`` runs with torch on CUDA (bench/gpu_trees.py on the H100); this is
its CPU test, on every shipped model.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from scorer.config import Settings
from scorer.demo import bundled_capture, capture_records
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind
from scorer.inference.repository import load_version
from scorer.inference.trees import as_arrays, load_tables, predict
from scorer.service.build import build_runtimes, load_rules
from tests.support.paths import MODEL_REPOSITORY


@pytest.mark.parametrize("kind", list(EventKind))
def test_traversal_equals_onnxruntime_on_real_features(kind: EventKind) -> None:
    version = load_version(MODEL_REPOSITORY, f"{kind.value}_classifier")
    dec = EventDecoder()
    events = [e for r in capture_records(bundled_capture()) if r.kind == kind
              for e in [dec.decode(kind, r.value, r.ref)]]
    # The feature set the shipped model's card asks for, as the service builds it.
    settings = Settings(inference=Settings().inference.model_copy(update={"model_repository": MODEL_REPOSITORY}))
    features = build_runtimes(settings, rules=load_rules(settings))[kind].features  # (EDR v3 reads rule hits)
    x = features.transform(events)  # type: ignore[arg-type]
    session = ort.InferenceSession(str(version.onnx_path))
    expected = session.run(["probabilities"], {"features": x})[0][:, 1]
    got = predict(as_arrays(load_tables(version.onnx_path)), x)
    assert got.shape == expected.shape and len(got) > 1000
    assert float(np.abs(got - expected).max()) < 5e-6
