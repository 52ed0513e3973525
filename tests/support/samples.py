"""Small, real samples of each kind from ../shared/data (:data:`DATA_DIR`).

Every read of the data folder by a test goes through :func:`require_data`: it refuses a
test without the ``data`` marker, and skips (``SCORER_STRICT_SKIPS=1``: fails) when the
file is not there.

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

from scorer.bench.loadgen import payloads
from scorer.bench.realistic import Template
from scorer.captures import iter_capture
from scorer.captures.base import LabeledEvent
from scorer.events.columnar import decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EndpointEvent, Event, EventKind, entity_key
from tests.support import markers
from tests.support.paths import DATA_DIR

Sample = list[tuple[str, bytes, bytes]]  # (uid, key, value)


def require_data(path: Path) -> Path:
    """``path`` (under the data folder), once the running test may read it and it exists."""
    markers.require("data", f"{path} read")
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SCORER_DATA_DIR)")
    return path


def _events(path: Path, n: int, *, malicious: bool | None = None) -> list[LabeledEvent]:
    items = (it for it in iter_capture(require_data(path)) if isinstance(it, LabeledEvent))
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
    zips = sorted(require_data(root / "otrf-security-datasets" / "windows").rglob("*.zip"))
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


# One capture per kind for the profile tests: a slice, in event-time order.
CAPTURES = {
    EventKind.NETFLOW: DATA_DIR / "netflow/stratosphere-zeek/010-conn.log.labeled",
    EventKind.EDR: DATA_DIR / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip",
    EventKind.SIEM: DATA_DIR / "siem/ait-ads/shaw_alerts.csv.gz",
}


@functools.cache
def events(kind: EventKind, limit: int = 3000) -> tuple[Event, ...]:
    """The first ``limit`` records of ``kind``'s capture, as events sorted by time."""
    items = itertools.islice(iter_capture(require_data(CAPTURES[kind])), limit)
    out = [i.event for i in items if isinstance(i, LabeledEvent)]
    return tuple(sorted(out, key=lambda e: e.ts))


def decoded_edr(tpl: list[Template], events: int) -> list[EndpointEvent]:
    """The EDR events of the first ``events`` payloads of the stream ``tpl`` (scorer.bench's
    loadgen), decoded as the pipeline's decode stage decodes a batch (every one decodes)."""
    values = [v for kind, _, v in payloads(tpl, events) if kind is EventKind.EDR]
    rows = decode_rows(EventKind.EDR, values, EventDecoder().max_record_bytes, views=True)
    out = [r for r in rows if isinstance(r, EndpointEvent)]
    assert len(out) == len(values)
    return out
