"""Golden sets: a labelled sample of serving features kept with a model version.

``golden.npz`` (features FP32 [n, k], labels 0/1, the feature names, where it came from)
is written into the version directory by ``scorer models package``, so it is covered by
SHA256SUMS like the model. ``validate`` scores the candidate and the production version on
the same golden set; when neither version carries one (the shipped version 1 models), it
is built from the shared data through the kind's training reader (models/<kind>.py), i.e.
the serving feature code over the real captures (:func:`from_data`).

A golden set may hold more columns than a model reads: a v2 (profile) golden set holds the
v1 columns of the same events too, so a v2 candidate and a v1 production are compared on
the same rows (:meth:`GoldenSet.select`).

Caveat, stated in every verdict: a golden set drawn from the data a model was trained on
flatters that model; a fresh capture (``--golden``) is the fairer judge.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scorer.errors import ModelError
from scorer.lifecycle.contract import contract_names, feature_set_name
from scorer.lifecycle.quality import cap_per_key
from scorer.plugins import training_data

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

    def select(self, names: Sequence[str]) -> GoldenSet:
        """The columns ``names``, in that order (what a model of that contract reads)."""
        if tuple(names) == self.feature_names:
            return self
        index = {n: i for i, n in enumerate(self.feature_names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ModelError(f"golden set ({self.origin}) lacks {len(missing)} of the model's "
                             f"{len(names)} features (first: {missing[:3]})")
        columns = np.ascontiguousarray(self.features[:, [index[n] for n in names]])
        return GoldenSet(columns, self.labels, tuple(names), self.origin)

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


def from_data(kind: str, features: str = "", *, per_stratum: int = PER_STRATUM, seed: int = SEED) -> GoldenSet:
    """A stratified sample of the kind's labelled training data (cached matrices), in
    feature set ``features``, read by the installed training readers (models/, through the
    ``scorer.training_data`` entry point: see :mod:`scorer.plugins`)."""
    read = training_data()
    if read is None:
        raise ModelError(f"no training data reader is installed to build a {kind} golden set: pass --golden")
    try:
        ds = read(kind, features)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot build a {kind} golden set from the shared data: {exc}") from None
    idx = np.flatnonzero(cap_per_key(strata(ds.group, ds.y), per_stratum, seed))
    origin = (f"shared data via models/{kind}.py, feature set {feature_set_name(features)}, "
              f"{per_stratum} rows per (group, label), seed {seed}")
    return GoldenSet(np.asarray(ds.X[idx], np.float32), np.asarray(ds.y[idx], np.int8),
                     contract_names(kind, features), origin)


def strata(group: npt.NDArray[Any], labels: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Per row, the rank of the string ``f"{group}|{label}"`` among those of all rows.

    The sample draws its rows stratum by stratum in that order, so the ranks keep the golden
    set what it was when the strata were those strings; they are named once per distinct
    (group, label) pair, not once per row (2M rows: seconds of string concatenation).
    """
    groups, g = _codes(group.astype(str, copy=False))
    values = np.unique(labels)
    code = g * len(values) + np.searchsorted(values, labels)
    present = np.flatnonzero(np.bincount(code, minlength=len(groups) * len(values)))
    names = np.char.add(np.char.add(groups[present // len(values)], "|"), values[present % len(values)].astype(str))
    rank = np.zeros(len(groups) * len(values), np.intp)
    rank[present] = np.unique(names, return_inverse=True)[1]
    ranks: npt.NDArray[np.intp] = rank[code]
    return ranks


def _codes(column: npt.NDArray[np.str_]) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.intp]]:
    """``np.unique(column, return_inverse=True)``, sorting one string per run of equal values
    (rows come capture by capture: a few hundred runs, not millions of strings)."""
    starts = np.flatnonzero(np.concatenate([[True], column[1:] != column[:-1]]))
    values, of_run = np.unique(column[starts], return_inverse=True)
    return values, np.repeat(of_run, np.diff(np.append(starts, len(column))))


def resolve(kind: str, *version_dirs: Path | None, explicit: Path | None = None,
            feature_sets: Sequence[str] = ("",)) -> GoldenSet:
    """``explicit``, else the first of ``version_dirs`` that carries one holding every column
    of ``feature_sets`` (those of the models to be scored on it), else the shared data in the
    widest of them. Columns are matched by name: a column means what its name means in the
    contract, so a golden set recorded for another contract is never read by position.
    """
    needed = {n for fs in feature_sets for n in contract_names(kind, fs)}
    if explicit is not None:
        if not explicit.is_file():
            raise ModelError(f"{explicit}: no such golden set")
        golden = load(explicit)
        if not needed <= set(golden.feature_names):
            missing = sorted(needed - set(golden.feature_names))
            raise ModelError(f"{explicit}: golden set lacks {len(missing)} columns of the {kind} "
                             f"{'/'.join(map(feature_set_name, feature_sets))} contract (first: {missing[:3]})")
        return golden
    for path in (d / GOLDEN_FILE for d in version_dirs if d is not None):
        if path.is_file() and needed <= set((golden := load(path)).feature_names):
            return golden
    widest = max(feature_sets, key=lambda fs: len(contract_names(kind, fs)))
    if not needed <= set(contract_names(kind, widest)):
        raise ModelError(f"no {kind} feature set holds every column of "
                         f"{', '.join(map(feature_set_name, feature_sets))}: pass --golden")
    return from_data(kind, widest)
