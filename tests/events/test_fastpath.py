"""The canonical fast path never disagrees with the generic path (JSON -> dict -> adapter)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer.demo import bundled_capture, capture_records
from scorer.errors import RecordError
from scorer.events.decode import decode_mapping
from scorer.events.fastpath import decode_canonical
from scorer.events.structs import EventKind


def generic(kind: EventKind, value: bytes) -> object:
    try:
        raw = json.loads(value)
        return decode_mapping(kind, raw) if isinstance(raw, dict) else None
    except (RecordError, ValueError, TypeError, AttributeError, OverflowError):
        return None


def test_bundled_capture_takes_the_fast_path_with_identical_events() -> None:
    n = 0
    for rec in capture_records(bundled_capture()):
        assert rec.kind is not None and rec.value is not None
        fast = decode_canonical(rec.kind, rec.value)
        assert fast is not None, rec.value[:200]
        assert fast == generic(rec.kind, rec.value)
        n += 1
    assert n > 5000


FLOW: dict[str, Any] = {"ts": 1.5, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 443, "proto": "tcp",
                        "service": "ssl", "src_bytes": 10, "extra": {"Flow IAT Mean": 1.0}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted({*FLOW, "duration", "history", "conn_state", "label", "uid"})),
       value=json_values | st.sampled_from(["-", "", "TCP", "NaN", "(empty)", 2**63, -(2**62) - 1, 1e308]))
def test_mutated_flows_agree(field: str, value: Any) -> None:
    value_bytes = msgspec.json.encode({**FLOW, field: value})
    fast = decode_canonical(EventKind.NETFLOW, value_bytes)
    if fast is not None:  # whenever the fast path accepts, it must produce what the adapter does
        assert fast == generic(EventKind.NETFLOW, value_bytes)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([EventKind.EDR, EventKind.SIEM]), doc=st.dictionaries(
    st.sampled_from(["ts", "host", "event_code", "rule_name", "severity", "process_id", "fields", "uid", "image"]),
    json_values, max_size=6))
def test_endpoint_and_siem_agree(kind: EventKind, doc: dict[str, Any]) -> None:
    value = msgspec.json.encode(doc)
    fast = decode_canonical(kind, value)
    if fast is not None:
        assert fast == generic(kind, value)
