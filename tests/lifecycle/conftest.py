"""The lifecycle tests' fixtures; the helpers behind them are tests/support/lifecycle.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.lifecycle import Repo, make_repo, synthetic_golden


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path, synthetic_golden())
