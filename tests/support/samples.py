"""Small, real samples of each kind from ../shared/data for integration tests.

Values are what a SOC pipeline would publish: canonical JSON for flows and SIEM alerts, and
the raw source forms for EDR (OTRF flat JSON lines and Event XML rendered as JSON), so the
adapters are exercised on the real path too.
"""

from __future__ import annotations

import functools
import itertools
import json
import zipfile
from pathlib import Path

import msgspec
import pytest

from replay.readers import iter_capture
from replay.readers.base import LabeledEvent
from scorer.events.structs import EventKind, entity_key
from tests.support.paths import DATA_DIR

Sample = list[tuple[str, bytes, bytes]]  # (uid, key, value)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SCORER_DATA_DIR)")
    return path


def _events(path: Path, n: int, *, malicious: bool | None = None) -> list[LabeledEvent]:
    items = (it for it in iter_capture(_require(path)) if isinstance(it, LabeledEvent))
    if malicious is not None:
        items = (it for it in items if it.malicious is malicious)
    return list(itertools.islice(items, n))


def _canonical(items: list[LabeledEvent]) -> Sample:
    enc = msgspec.json.Encoder()
    return [(it.event.uid, entity_key(it.event).encode(), enc.encode(it.event)) for it in items]


@functools.cache
def netflow_sample() -> Sample:
    cic = DATA_DIR / "netflow" / "cic-ids2017-improved"
    zeek = DATA_DIR / "netflow" / "stratosphere-zeek" / "008-conn.log.labeled"
    items = _events(cic / "Portscan_2500.csv", 60) + _events(cic / "BENIGN_2500.csv", 60)
    items += _events(zeek, 60, malicious=True) + _events(zeek, 60, malicious=False)
    return _canonical(items)


@functools.cache
def siem_sample() -> Sample:
    ait = DATA_DIR / "siem" / "ait-ads" / "wardbeck_alerts.csv.gz"
    return _canonical(_events(ait, 80, malicious=True) + _events(ait, 120, malicious=False))


@functools.cache
def edr_sample() -> Sample:
    """Raw OTRF lines from one atomic capture and raw Sigma regression Event-XML documents."""
    out: Sample = []
    root = DATA_DIR / "edr"
    zips = sorted(_require(root / "otrf-security-datasets" / "windows").rglob("*.zip"))
    with zipfile.ZipFile(zips[0]) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".json"))
        with zf.open(member) as fh:
            for i, line in enumerate(itertools.islice(fh, 150)):
                raw = json.loads(line)
                uid = f"otrf:{zips[0].stem}:{i}"
                raw["uid"] = uid
                out.append((uid, str(raw.get("Hostname", "")).encode(), json.dumps(raw).encode()))
    docs = sorted((root / "sigma-regression").rglob("*.json"))[:60]
    decoder = json.JSONDecoder()
    for path in docs:
        text = path.read_text()
        doc, _ = decoder.raw_decode(text.lstrip())
        uid = f"sigma:{path.parent.name}"
        host = doc["Event"]["System"].get("Computer", "")
        doc["uid"] = uid
        out.append((uid, str(host).encode(), json.dumps(doc).encode()))
    return out


SAMPLES = {EventKind.NETFLOW: netflow_sample, EventKind.EDR: edr_sample, EventKind.SIEM: siem_sample}
