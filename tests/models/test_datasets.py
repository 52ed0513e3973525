"""Dataset builder: the rules stage runs before features, and its pack is in the cache key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pytest

from models.datasets import build
from models.edr import HISTORY, labeller
from scorer.captures import LabeledEvent
from scorer.events.structs import EventKind
from scorer.features import feature_set
from scorer.profiles.join import NoProfiles
from tests.support.paths import DATA_DIR

CAPTURE = DATA_DIR / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip"
SIGMA = sorted((DATA_DIR / "edr/sigma-regression/rules/windows/process_creation").rglob("*.json"))[:5]


@dataclass(frozen=True)
class Meta:
    id: str
    level: str = "critical"
    kind: str = "detection"
    tactics: tuple[str, ...] = ("discovery",)


def fire_on_process_creation(path: Path, items: list[LabeledEvent]) -> list[LabeledEvent]:
    return [msgspec.structs.replace(i, event=msgspec.structs.replace(i.event, rule_hits=("r",)))
            if getattr(i.event, "event_code", None) in (1, 4688) else i for i in items]


@pytest.mark.data
def test_rules_stage_feeds_v3_and_keys_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path))
    files = [CAPTURE, *SIGMA]
    kw = dict(version="v3", history=HISTORY, rules={"r": Meta("r")}, prepare=fire_on_process_creation)
    ds = build(EventKind.EDR, files, labeller, salt="pack-a", **kw)  # type: ignore[arg-type]
    names = feature_set("edr", "v3", NoProfiles()).names
    critical = ds.X[:, names.index("rule_critical")]
    creation = ds.X[:, names.index("ev_proc_create")] > 0
    assert (critical[creation] == 1).all() and (critical[~creation] == 0).all() and creation.any()
    assert set(ds.source.tolist()) == {"otrf", "sigma"} and len(list(tmp_path.glob("*.npz"))) == 1
    again = build(EventKind.EDR, files, labeller, salt="pack-a", **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.X, ds.X)  # from the cache
    assert len(list(tmp_path.glob("*.npz"))) == 1
    build(EventKind.EDR, files, labeller, salt="pack-b", **kw)  # type: ignore[arg-type]
    assert len(list(tmp_path.glob("*.npz"))) == 2  # another pack, another matrix
