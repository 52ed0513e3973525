"""Where the repository, its model repository and the real data are."""

from __future__ import annotations

from pathlib import Path

from scorer.config import data_dir

ROOT = Path(__file__).resolve().parents[2]
MODEL_REPOSITORY = ROOT / "model_repository"
DATA_DIR = data_dir()  # ../shared/data, or $SCORER_DATA_DIR: read only by tests marked ``data``
RULE_REPOSITORY = ROOT / "rule_repository"
