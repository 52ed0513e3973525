"""No train/serve skew: features from raw bytes through the service's decoder, in
micro-batches, equal the training features of the same events (replay -> capture_matrix).
"""

from __future__ import annotations

import itertools
import zipfile

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from scorer.captures import LabeledEvent, iter_capture
from scorer.events import EventDecoder, EventKind, SourceRef
from scorer.events.structs import Event
from scorer.features import capture_matrix, feature_set
from tests.support.paths import DATA_DIR

DATA = DATA_DIR
CAPTURES = {
    EventKind.NETFLOW: [DATA / "netflow/stratosphere-zeek/010-conn.log.labeled",
                        DATA / "netflow/cic-ids2017-improved/Portscan_2500.csv"],
    EventKind.EDR: [DATA / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip",
                    DATA / "edr/sigma-regression/rules/windows/process_creation"],
    EventKind.SIEM: [DATA / "siem/ait-ads/shaw_alerts.csv.gz"],
}
pytestmark = pytest.mark.data


def _events(kind: EventKind, limit: int = 3000) -> list[Event]:
    out: list[Event] = []
    for path in CAPTURES[kind]:
        items = itertools.islice(iter_capture(path), limit)
        out += [i.event for i in items if isinstance(i, LabeledEvent)]
    return out


def _serve(kind: EventKind, values: list[bytes], sizes: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """The service path: bytes -> EventDecoder -> one feature set over micro-batches."""
    decoder = EventDecoder()
    fs = feature_set(kind)
    rows, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= len(values):
            break
        batch = []
        for offset, value in enumerate(values[start:start + size], start=start):
            event = decoder.decode(kind, value, SourceRef(f"events.{kind}", 0, offset))
            assert not hasattr(event, "reason"), event
            batch.append(event)
        rows.append(fs.transform(batch))
        start += size
    return np.concatenate(rows)


@pytest.mark.parametrize("kind", list(EventKind))
def test_serving_features_equal_training_features(kind: EventKind) -> None:
    events = _events(kind)
    train, order = capture_matrix(kind, events)
    # Producers publish the canonical event as JSON; the consumer gets it in time order.
    values = [msgspec.json.encode(events[i]) for i in order.tolist()]
    served = _serve(kind, values, sizes=(1, 7, 256, 33))
    assert served.dtype == np.float32 and served.shape == train.shape
    np.testing.assert_array_equal(served, train)
    assert np.isfinite(served).all()


def test_raw_otrf_lines_give_training_features() -> None:
    """A raw OTRF JSON line on the topic (not the canonical form) gives the same row."""
    path = CAPTURES[EventKind.EDR][0]
    with zipfile.ZipFile(path) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".json") and "MACOSX" not in n)
        lines = [ln for ln in zf.read(member).splitlines() if ln.strip()][:2000]
    events = [i.event for i in itertools.islice(iter_capture(path), 2000)
              if isinstance(i, LabeledEvent)]
    train, order = capture_matrix(EventKind.EDR, events)
    served = _serve(EventKind.EDR, [lines[i] for i in order.tolist()], sizes=(64,))
    np.testing.assert_array_equal(served, train)


def test_raw_ait_rows_give_training_features() -> None:
    """AIT rows sent as JSON objects of their CSV columns decode to the same features."""
    import csv
    import gzip

    path = CAPTURES[EventKind.SIEM][0]
    with gzip.open(path, "rt") as fh:
        rows = list(itertools.islice(csv.DictReader(fh), 3000))
    events = [i.event for i in itertools.islice(iter_capture(path), 3000)
              if isinstance(i, LabeledEvent)]
    train, order = capture_matrix(EventKind.SIEM, events)
    served = _serve(EventKind.SIEM, [msgspec.json.encode(rows[i]) for i in order.tolist()],
                    sizes=(100, 5))
    np.testing.assert_array_equal(served, train)


@pytest.mark.parametrize("kind", list(EventKind))
def test_rows_are_finite_on_hostile_values(kind: EventKind) -> None:
    raw = {
        EventKind.NETFLOW: {"ts": 1e18, "src_ip": "a", "dst_ip": "b", "duration": 1e300,
                            "src_bytes": 2**61, "dst_pkts": 0, "dst_port": 99999},
        EventKind.EDR: {"ts": 0, "host": "h", "event_code": -1, "command_line": "x" * 8000,
                        "logon_type": 2**40},
        EventKind.SIEM: {"ts": -1e12, "rule_name": "", "severity": 2**40},
    }[kind]
    event = EventDecoder().decode(kind, msgspec.json.encode(raw), SourceRef("t", 0, 0))
    x = feature_set(kind).transform([event, event])  # type: ignore[list-item]
    assert x.shape == (2, len(feature_set(kind).names)) and np.isfinite(x).all()
    assert feature_set(kind).transform([]).shape == (0, len(feature_set(kind).names))
