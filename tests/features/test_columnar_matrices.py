"""Feature matrices of a micro-batch decoded by column equal, byte for byte, the ones of the
same records decoded one by one, for every kind, on the bundled capture and on the realistic
stream's real background (CIC-IDS2017, OTRF, AIT-ADS), in micro-batches as the scorer sees them."""

from __future__ import annotations

import pytest

from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import Template, realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.columnar import decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind, SourceRef
from scorer.features import feature_set

DECODER = EventDecoder()


def _compare(tpl: list[Template], events: int, batch: int) -> dict[EventKind, int]:
    values: dict[EventKind, list[bytes]] = {k: [] for k in EventKind}
    for kind, _, value in payloads(tpl, events):
        values[kind].append(value)
    for kind, vals in values.items():
        per_record = [DECODER.decode(kind, v, SourceRef("t", 0, i)) for i, v in enumerate(vals)]
        rows = decode_rows(kind, vals, DECODER.max_record_bytes, views=True)
        assert None not in rows  # canonical records of the capture: none needs the per-record path
        by_event, by_row = feature_set(kind), feature_set(kind)  # stateful: one each, fed alike
        for lo in range(0, len(vals), batch):
            a = by_event.transform(per_record[lo:lo + batch])  # type: ignore[arg-type]
            b = by_row.transform(rows[lo:lo + batch])  # type: ignore[arg-type]  # views, read like events
            assert a.tobytes() == b.tobytes(), (kind, lo)
    return {k: len(v) for k, v in values.items()}


def test_bundled_capture_matrices_are_identical() -> None:
    counts = _compare(templates(bundled_capture(), tuple(EventKind)), 9000, 700)
    assert min(counts.values()) > 2500


@pytest.mark.data
def test_realistic_stream_matrices_are_identical() -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    counts = _compare(realistic_templates(capture, data_dir(), per_kind=3000), 9000, 700)
    assert min(counts.values()) == 3000
