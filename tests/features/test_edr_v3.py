"""Feature set v3 (EDR): the contract, and no train/serve skew with the rules stage.

Serving: raw bytes -> EventDecoder (which drops any ``rule_hits`` from the wire) -> the
rules stage -> one v3 feature set over micro-batches. Training: the capture's events with
their hits set by the same rules -> ``capture_matrix(version="v3")``. The two must be
equal. The rules are a synthetic pack (always) and the shipped Sigma pack when it and
``scorer.rules`` are present.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pytest

from scorer.captures import LabeledEvent, iter_capture
from scorer.events import EventDecoder, EventKind, SourceRef
from scorer.events.structs import EndpointEvent
from scorer.features import FEATURE_SETS, capture_matrix, feature_set
from scorer.features.edr_v3 import BLOCK_NAMES, INDICATORS
from scorer.profiles.join import NoProfiles
from tests.support.paths import DATA_DIR, ROOT

CAPTURES = [DATA_DIR / "edr/otrf-security-datasets/windows/credential_access/host/empire_shell_rubeus_asktgt_ptt.zip",
            DATA_DIR / "edr/otrf-security-datasets/windows/lateral_movement/host/empire_psexec_dcerpc_tcp_svcctl.zip",
            DATA_DIR / "edr/sigma-regression/rules/windows/process_creation"]
Annotate = Callable[[Sequence[EndpointEvent]], list[EndpointEvent]]


@dataclass(frozen=True)
class Meta:
    id: str
    level: str
    kind: str
    tactics: tuple[str, ...]


SYNTHETIC = (Meta("ps", "medium", "detection", ("execution",)), Meta("lsass", "high", "detection",
             ("credential_access",)), Meta("logon", "informational", "hunting", ("lateral_movement",)))


def synthetic(events: Sequence[EndpointEvent]) -> list[EndpointEvent]:
    out = []
    for e in events:
        hits = tuple(r for r, hit in (("ps", "powershell" in (e.image or "").lower()),
                                      ("lsass", "lsass" in (e.fields.get("TargetImage") or "").lower()),
                                      ("logon", e.event_code == 4624)) if hit)
        out.append(msgspec.structs.replace(e, rule_hits=hits))
    return out


def sigma_pack() -> tuple[Annotate, Any]:
    pack = ROOT / "rule_repository" / "sigma_windows" / "2"
    stage = pytest.importorskip("scorer.rules.annotate")
    if not pack.is_dir():
        pytest.skip("no shipped rule pack")
    engine = stage.RuleEngine.load(pack)

    def annotate(events: Sequence[EndpointEvent]) -> list[EndpointEvent]:
        out, errors = stage.annotate(engine, events)
        assert not errors
        return list(out)

    return annotate, engine.rules


def _events(limit: int = 2500) -> list[EndpointEvent]:
    out: list[EndpointEvent] = []
    for path in CAPTURES:
        out += [i.event for i in itertools.islice(iter_capture(path), limit)
                if isinstance(i, LabeledEvent) and isinstance(i.event, EndpointEvent)]
    return out


pytestmark = pytest.mark.data


@pytest.mark.parametrize("pack", ["synthetic", "sigma"])
def test_serving_features_equal_training_features(pack: str) -> None:
    annotate, meta = (synthetic, SYNTHETIC) if pack == "synthetic" else sigma_pack()
    events = annotate(_events())
    assert any(e.rule_hits for e in events)
    train, order = capture_matrix(EventKind.EDR, events, version="v3", rules=meta)
    decoder = EventDecoder()
    fs = feature_set(EventKind.EDR, "v3", rules=meta)
    values = [msgspec.json.encode(events[i]) for i in order.tolist()]  # rule_hits go on the wire too
    rows, start = [], 0
    for size in itertools.cycle((1, 7, 256, 33)):
        if start >= len(values):
            break
        batch = []
        for offset, value in enumerate(values[start:start + size], start=start):
            event = decoder.decode(EventKind.EDR, value, SourceRef("events.edr", 0, offset))
            assert isinstance(event, EndpointEvent) and event.rule_hits == ()  # never from the wire
            batch.append(event)
        rows.append(fs.transform(annotate(batch)))
        start += size
    served = np.concatenate(rows)
    assert served.dtype == np.float32 and served.shape == train.shape
    np.testing.assert_array_equal(served, train)
    blocks = served[:, -len(BLOCK_NAMES):]
    assert np.isfinite(served).all() and (blocks != 0).any(axis=0).sum() > 20


def test_contract() -> None:
    assert FEATURE_SETS == ("v1", "v2", "v3")
    v1, v2 = feature_set("edr").names, feature_set("edr", "v2", NoProfiles()).names
    v3 = feature_set("edr", "v3", NoProfiles(), rules=SYNTHETIC).names
    assert len(v1) == 92 and v2[:len(v1)] == v1 and v3 == v1 + BLOCK_NAMES
    assert feature_set("edr", "v3", NoProfiles()).names == v3  # names do not depend on the pack
    assert len(set(v3)) == len(v3) and set(INDICATORS) <= set(BLOCK_NAMES)
    for kind in ("netflow", "siem"):  # no v3 blocks yet: their v3 is their v2
        assert feature_set(kind, "v3", NoProfiles()).names == feature_set(kind, "v2", NoProfiles()).names


def test_hostile_values_stay_finite() -> None:
    raw = {"ts": 0, "host": "h", "event_code": 4769, "command_line": "x" * 8000 + "=" * 50,
           "fields": {"TicketOptions": "0x" + "f" * 400, "TicketEncryptionType": "\x00", "Status": "nan",
                      "GrantedAccess": "-1", "TaskContent": "<command>" * 1000, "Properties": "\u00ff" * 9}}
    event = EventDecoder().decode(EventKind.EDR, msgspec.json.encode(raw), SourceRef("t", 0, 0))
    fs = feature_set("edr", "v3", NoProfiles())
    x = fs.transform([event, event])  # type: ignore[list-item]
    assert x.shape == (2, len(fs.names)) and np.isfinite(x).all()
    assert fs.transform([]).shape == (0, len(fs.names))
