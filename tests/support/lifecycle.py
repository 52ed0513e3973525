"""A model repository with real ONNX models in the SIEM feature contract, on synthetic rows
(the lifecycle tests' helpers; tests/lifecycle/conftest.py makes ``repo`` a fixture).

Synthetic rows (no shared data needed): the contract is about names and widths, and
quality gates only need a model that is better or worse than another on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

from scorer.inference.repository import ModelVersion
from scorer.lifecycle.contract import contract_names
from scorer.lifecycle.golden import GoldenSet
from scorer.lifecycle.package import PackageRequest, package

KIND = "siem"
MODEL = "siem_classifier"


def synthetic_golden(n: int = 2000, seed: int = 0, features: str = "") -> GoldenSet:
    """Rows in feature set ``features``; the label depends on the first (v1) columns only,
    so v1 and v2 models learn the same thing from the same rows."""
    names = contract_names(KIND, features)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(names))).astype(np.float32)
    y = (x[:, :5].sum(axis=1) + rng.normal(scale=1.0, size=n) > 0).astype(np.int8)
    return GoldenSet(x, y, names, f"synthetic seed {seed}")


def fit(golden: GoldenSet, path: Path, *, shuffle: bool = False) -> Path:
    y = np.random.default_rng(1).permutation(golden.labels) if shuffle else golden.labels
    joblib.dump(LogisticRegression(max_iter=300).fit(golden.features, y), path)
    return path


@dataclass
class Repo:
    path: Path
    golden: GoldenSet
    production: ModelVersion
    tmp: Path

    def package(self, *, shuffle: bool = False, version: str = "", features: str = "v1") -> ModelVersion:
        model = fit(self.golden.select(contract_names(KIND, features)),
                    self.tmp / f"m{version or 'next'}{features}{'-shuffled' if shuffle else ''}.joblib",
                    shuffle=shuffle)
        return package(self.path, PackageRequest(KIND, model, MODEL, self.golden, self.production, version,
                                                 feature_set=features))


def make_repo(tmp_path: Path, golden: GoldenSet, features: str = "v1") -> Repo:
    """Version 1 in feature set ``features``, packaged from ``golden`` (which may hold more)."""
    path = tmp_path / "model_repository"
    model = fit(golden.select(contract_names(KIND, features)), tmp_path / "v1.joblib")
    first = package(path, PackageRequest(KIND, model, MODEL, golden, None, "1", alert_rate=0.05,
                                         feature_set=features))
    return Repo(path, golden, first, tmp_path)

