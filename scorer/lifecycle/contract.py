"""Does a model fit its kind? Tensor contract, feature contract and a trial run.

Shared by ``package`` (refuse to publish), ``validate`` (report) and the running scorer
(refuse to serve): one definition of "fits", so a model that validates is one the service
accepts. Each check returns problems as sentences; an empty list means it fits.

The feature contract is the one the card declares (``ModelCard.feature_set``, empty = v1):
a v2 model is checked against v1 + profile columns, not against v1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.features import FEATURE_SETS, feature_set
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.repository import ModelCard, ModelVersion

TRIAL_ROWS = 4
DEFAULT_FEATURE_SET = "v1"


def feature_set_name(declared: str) -> str:
    """A card's feature set by name: empty is v1 (the cards written before versions)."""
    return declared or DEFAULT_FEATURE_SET


@cache  # the names are code, fixed for the life of the process; v2 builds a profile source
def contract_names(kind: str, features: str = "") -> tuple[str, ...]:
    """The columns feature set ``features`` computes for ``kind``, in order."""
    if feature_set_name(features) not in FEATURE_SETS:
        raise ModelError(f"unknown feature set {features!r} (known: {', '.join(FEATURE_SETS)})")
    return tuple(feature_set(EventKind(kind), features).names)


def feature_set_mismatch(kind: str, card: ModelCard, computed: Sequence[str]) -> str | None:
    """Why a scorer that computes ``computed`` for ``kind`` cannot switch to ``card``'s
    model, or None when it can. A switch keeps the live feature set (its entity state and
    profile source carry over, and a shadow scores production's rows), so it never changes
    the feature set; scorers started on the other one can serve the model."""
    if tuple(card.feature_names) == tuple(computed):
        return None
    live = next((fs for fs in FEATURE_SETS if contract_names(kind, fs) == tuple(computed)), "another feature set")
    return (f"{card.name}:{card.version} expects feature set {feature_set_name(card.feature_set)} "
            f"({len(card.feature_names)} features), the scorers compute {live} ({len(computed)}) for {kind}; "
            "a switch keeps the live feature set: serve it from scorers started on "
            f"{feature_set_name(card.feature_set)} (SCORER_INFERENCE__VERSIONS) instead")


def card_problems(card: ModelCard, kind: str) -> list[str]:
    problems = []
    if card.kind != kind:
        problems.append(f"card says kind {card.kind!r}, expected {kind!r}")
    fs = feature_set_name(card.feature_set)
    if fs not in FEATURE_SETS:
        problems.append(f"card names feature set {fs!r}; this scorer knows {', '.join(FEATURE_SETS)}")
    elif tuple(card.feature_names) != (names := contract_names(kind, fs)):
        missing = [n for n in names if n not in card.feature_names][:3]
        extra = [n for n in card.feature_names if n not in names][:3]
        problems.append(
            f"card lists {len(card.feature_names)} features, the {kind} {fs} contract has {len(names)} "
            f"(missing {missing}, unexpected {extra}, or another order)"
        )
    if not 0.0 < card.threshold <= 1.0:
        problems.append(f"threshold {card.threshold} is not a probability in (0, 1]")
    return problems


def onnx_problems(model: bytes | Path, n_features: int) -> list[str]:
    """Input ``features`` FP32 [batch, n], output ``probabilities`` [batch, 2], and a trial
    run on zeros that gives finite probabilities."""
    try:
        source = model if isinstance(model, bytes) else str(model)
        session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        return [f"onnxruntime cannot load the model: {exc}"]
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    problems = []
    if list(inputs) != [INPUT_NAME]:
        problems.append(f"inputs are {list(inputs)}, expected exactly [{INPUT_NAME!r}]")
    else:
        tensor = inputs[INPUT_NAME]
        if tensor.type != "tensor(float)":
            problems.append(f"input {INPUT_NAME!r} is {tensor.type}, expected tensor(float) (FP32)")
        width = tensor.shape[1] if len(tensor.shape) == 2 else None
        if len(tensor.shape) != 2 or (isinstance(width, int) and width != n_features):
            problems.append(f"input shape {tensor.shape}, expected [batch, {n_features}]")
    if OUTPUT_NAME not in outputs:
        problems.append(f"outputs are {list(outputs)}, none named {OUTPUT_NAME!r}")
    elif len(shape := outputs[OUTPUT_NAME].shape) != 2 or (isinstance(shape[1], int) and shape[1] != 2):
        problems.append(f"output {OUTPUT_NAME!r} has shape {shape}, expected [batch, 2]")
    if problems:
        return problems
    try:
        (probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.zeros((TRIAL_ROWS, n_features), np.float32)})
    except Exception as exc:  # onnxruntime's exceptions are untyped
        return [f"trial run on {TRIAL_ROWS}x{n_features} zeros failed: {exc}"]
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (TRIAL_ROWS, 2):
        return [f"trial run gave shape {probs.shape}, expected ({TRIAL_ROWS}, 2)"]
    if not (np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1):
        return [f"trial run gave values in [{probs.min():.3g}, {probs.max():.3g}], not probabilities"]
    return []


def version_problems(version: ModelVersion, kind: str) -> list[str]:
    """Everything that keeps a published (checksum-verified) version from serving ``kind``."""
    problems = card_problems(version.card, kind)
    return problems + onnx_problems(version.onnx_path, len(version.card.feature_names))


# How a model card names the rule pack whose hits it was trained on (``trained_on``, written
# by models/edr_rules.py): "rule_repository/sigma_windows/1 (2853 rules, sha256 <hex>)".
_TRAINED_PACK = re.compile(r"(?:^|/)(?P<pack>[^/\s]+)/(?P<version>[^/\s]+) \((?P<rules>\d+) rules, "
                           r"sha256 (?P<sha256>[0-9a-f]{64})\)$")


class TrainedPack(NamedTuple):
    pack: str
    version: str
    sha256: str  # scorer.lifecycle.rulepacks.pack_checksum of the pack's directory


def trained_rule_pack(card: ModelCard) -> TrainedPack | None:
    """The rule pack a model read rule hits from in training, as its card names it; None for
    a model that reads none (feature sets v1 and v2)."""
    for entry in card.trained_on:
        m = _TRAINED_PACK.search(entry)
        if m:
            return TrainedPack(m["pack"], m["version"], m["sha256"])
    return None
