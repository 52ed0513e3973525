"""package from every accepted input: a plain .onnx file, LightGBM and XGBoost classifiers.

The boosters go through onnxmltools' converters registered with skl2onnx; what the scorer
will serve (ONNX Runtime on the packaged model.onnx) must give the native model's
probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from scorer.inference.repository import load_version
from scorer.lifecycle.contract import version_problems
from scorer.lifecycle.converters import register_gbm_converters
from scorer.lifecycle.package import PackageRequest, package
from scorer.lifecycle.validate import scores
from tests.support.lifecycle import KIND, MODEL, Repo

BOOSTERS: dict[str, Callable[[], Any]] = {
    "lightgbm": lambda: LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, random_state=0),
    "xgboost": lambda: XGBClassifier(n_estimators=40, max_depth=4, random_state=0),
}


def test_both_boosters_are_registered() -> None:
    assert register_gbm_converters() == ("lightgbm.LGBMClassifier", "xgboost.XGBClassifier")


@pytest.mark.parametrize("learner", sorted(BOOSTERS))
def test_packaged_booster_scores_like_the_native_model(repo: Repo, learner: str) -> None:
    x, y = repo.golden.features, repo.golden.labels
    model = BOOSTERS[learner]().fit(x, y)
    path = repo.tmp / f"{learner}.joblib"
    joblib.dump(model, path)
    mv = package(repo.path, PackageRequest(KIND, path, MODEL, repo.golden, repo.production))
    mv = load_version(repo.path, MODEL, mv.version)  # checksums verified
    assert mv.card.learner == type(model).__name__ and version_problems(mv, KIND) == []
    native = model.predict_proba(x)[:, 1]
    served = scores(mv.onnx_path, x)
    assert served.dtype == np.float32 and served.shape == native.shape
    np.testing.assert_allclose(served, native, atol=1e-5)
    assert len(np.unique(np.round(served, 3))) > 50, "probabilities, not labels"


def test_package_a_plain_onnx_file(repo: Repo, tmp_path: Path) -> None:
    from scorer.lifecycle.export import onnx_bytes

    model = LogisticRegression(max_iter=300).fit(repo.golden.features, repo.golden.labels)
    path = tmp_path / "exported.onnx"
    path.write_bytes(onnx_bytes(model, repo.golden.features.shape[1]))
    mv = package(repo.path, PackageRequest(KIND, path, MODEL, repo.golden, repo.production))
    assert mv.card.learner == "ONNX" and mv.onnx_path.read_bytes() == path.read_bytes()
    assert version_problems(load_version(repo.path, MODEL, mv.version), KIND) == []
    np.testing.assert_allclose(scores(mv.onnx_path, repo.golden.features),
                               model.predict_proba(repo.golden.features)[:, 1], atol=1e-5)
