"""Where the repository, its model repository and the real data are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_REPOSITORY = ROOT / "model_repository"
DATA_DIR = Path(os.environ.get("SCORER_DATA_DIR", ROOT.parent / "shared" / "data"))
RULE_REPOSITORY = ROOT / "rule_repository"
