"""Golden sets: a labelled sample of serving features kept with a model version.

``golden.npz`` (features FP32 [n, k], labels 0/1, the feature names, where it came from)
is written into the version directory by ``scorer models package``, so it is covered by
SHA256SUMS like the model. ``validate`` scores the candidate and the production version on
the same golden set; when neither version carries one (the shipped version 1 models), it
is built from the shared data through the kind's training reader (models/<kind>.py), i.e.
the serving feature code over the real captures.

Caveat, stated in every verdict: a golden set drawn from the data a model was trained on
flatters that model; a fresh capture (``--golden``) is the fairer judge.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.errors import ModelError
from scorer.lifecycle.contract import contract_names

GOLDEN_FILE = "golden.npz"
SEED = 20240611
PER_STRATUM = 1000  # rows per (group, label): every scenario/capture counts, none drowns the rest


@dataclass(frozen=True)
class GoldenSet:
    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int8]
    feature_names: tuple[str, ...]
    origin: str

    def __post_init__(self) -> None:
        if self.features.shape != (len(self.labels), len(self.feature_names)):
            raise ModelError(f"golden set {self.origin}: features {self.features.shape} do not match "
                             f"{len(self.labels)} labels x {len(self.feature_names)} names")

    @property
    def positives(self) -> int:
        return int(self.labels.sum())

    def describe(self) -> str:
        return f"{len(self.labels)} rows ({self.positives} malicious) from {self.origin}"

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, features=self.features, labels=self.labels,
                            feature_names=np.array(self.feature_names), origin=np.array(self.origin))
        return buf.getvalue()


def load(path: Path) -> GoldenSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            return GoldenSet(
                np.asarray(z["features"], np.float32), np.asarray(z["labels"], np.int8),
                tuple(str(n) for n in z["feature_names"].tolist()), str(z["origin"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{path}: not a golden set ({exc})") from None


def from_data(kind: str, *, per_stratum: int = PER_STRATUM, seed: int = SEED) -> GoldenSet:
    """A stratified sample of the kind's labelled training data (cached matrices)."""
    # Imported by name: the training code is an optional part of the distribution (needs
    # scikit-learn and the shared data), and is not held to the service's mypy --strict.
    train: Any = importlib.import_module("models.train")
    try:
        ds = train.spec_of(kind).dataset()
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot build a {kind} golden set from the shared data: {exc}") from None
    evaluate: Any = importlib.import_module("models.evaluate")
    strata = np.char.add(np.char.add(ds.group.astype(str), "|"), ds.y.astype(str))
    idx = np.flatnonzero(evaluate.cap_per_key(strata, per_stratum, seed))
    origin = f"shared data via models/{kind}.py, {per_stratum} rows per (group, label), seed {seed}"
    return GoldenSet(np.asarray(ds.X[idx], np.float32), np.asarray(ds.y[idx], np.int8),
                     contract_names(kind), origin)


def resolve(kind: str, *version_dirs: Path | None, explicit: Path | None = None) -> GoldenSet:
    """``explicit``, else the first of ``version_dirs`` that carries one, else the shared data.

    A golden set whose feature names are not the kind's contract is refused: its columns
    would mean something else to the model than they did when it was recorded.
    """
    candidates = [explicit] if explicit else [d / GOLDEN_FILE for d in version_dirs if d is not None]
    for path in candidates:
        if path is not None and path.is_file():
            golden = load(path)
            if golden.feature_names != contract_names(kind):
                raise ModelError(f"{path}: golden set features are not the current {kind} feature contract")
            return golden
    if explicit:
        raise ModelError(f"{explicit}: no such golden set")
    return from_data(kind)
