"""A model repository with real ONNX models in the SIEM feature contract, on synthetic rows.

Synthetic rows (no shared data needed): the contract is about names and widths, and
quality gates only need a model that is better or worse than another on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from scorer.inference.repository import ModelVersion
from scorer.lifecycle.contract import contract_names
from scorer.lifecycle.golden import GoldenSet
from scorer.lifecycle.package import PackageRequest, package

KIND = "siem"
MODEL = "siem_classifier"


def synthetic_golden(n: int = 2000, seed: int = 0) -> GoldenSet:
    names = contract_names(KIND)
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

    def package(self, *, shuffle: bool = False, version: str = "") -> ModelVersion:
        model = fit(self.golden, self.tmp / f"m{version or 'next'}{'-shuffled' if shuffle else ''}.joblib",
                    shuffle=shuffle)
        return package(self.path, PackageRequest(KIND, model, MODEL, self.golden, self.production, version))


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    golden = synthetic_golden()
    path = tmp_path / "model_repository"
    first = package(path, PackageRequest(KIND, fit(golden, tmp_path / "v1.joblib"), MODEL, golden,
                                         None, "1", alert_rate=0.05))
    return Repo(path, golden, first, tmp_path)
