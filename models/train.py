"""``python -m models.train netflow|edr|siem|all [--repo model_repository] [--version 1] [--features v1]``.

Builds each classifier from the shared data (``$SCORER_DATA_DIR``), evaluates it on group
splits, exports ONNX and publishes the version with its card. Deterministic: fixed seeds,
sorted inputs, no early stopping.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from pathlib import Path

from scorer.features import FEATURE_SETS

from .datasets import REPO_ROOT, Dataset
from .spec import Spec, run

KINDS = ("netflow", "edr", "siem")


def spec_of(kind: str) -> Spec:
    spec: Spec = importlib.import_module(f".{kind}", __package__).SPEC
    return spec


def training_rows(kind: str, features: str) -> Dataset:
    """The ``scorer.training_data`` entry point: ``kind``'s labelled rows in feature set
    ``features``, which ``scorer models package|validate`` draw golden sets from."""
    return spec_of(kind).dataset(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__)
    parser.add_argument("kind", choices=[*KINDS, "all"])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT / "model_repository")
    parser.add_argument("--version", default="1")
    parser.add_argument("--features", default="v1", choices=FEATURE_SETS,
                        help="feature set to train on (v2: with entity profiles); recorded in the card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for kind in KINDS if args.kind == "all" else (args.kind,):
        start = time.perf_counter()
        result = run(spec_of(kind), args.repo, args.version, args.features)
        print(f"\n## {kind} ({time.perf_counter() - start:.0f} s)\n\n{result.markdown}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
