"""Real events of each kind for the profile tests (a slice of one capture, time-ordered)."""

from __future__ import annotations

import functools
import itertools
import os
from pathlib import Path

import pytest

from replay import LabeledEvent, iter_capture
from scorer.events.structs import Event, EventKind

DATA = Path(os.environ.get("SCORER_DATA_DIR", Path(__file__).parents[3] / "shared" / "data"))
CAPTURES = {
    EventKind.NETFLOW: DATA / "netflow/stratosphere-zeek/010-conn.log.labeled",
    EventKind.EDR: DATA / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip",
    EventKind.SIEM: DATA / "siem/ait-ads/shaw_alerts.csv.gz",
}


@functools.cache
def events(kind: EventKind, limit: int = 3000) -> tuple[Event, ...]:
    path = CAPTURES[kind]
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SCORER_DATA_DIR)")
    items = itertools.islice(iter_capture(path), limit)
    out = [i.event for i in items if isinstance(i, LabeledEvent)]
    return tuple(sorted(out, key=lambda e: e.ts))
