"""Hostile input against every decoder: EventDecoder for each kind (and records of no
kind), each source-form adapter, and a whole BatchScorer micro-batch.

Properties: the decoder never raises, never hangs, and turns every record into exactly one
event or DecodeFailure (with the original bytes); an event it lets through goes through
features, inference and the alert encoder without raising; a batch accounts for every
record (consumed = scored + dead-lettered). Inputs: random bytes, arbitrary JSON (NaN and
Infinity tokens, huge numbers, enormous strings, invalid UTF-8), schema drift of real events
of each kind, byte-level damage of real records, and nesting up to 1,000,000 levels.

Run longer: SCORER_FUZZ_EXAMPLES=50000 pytest -s tests/fuzz/test_decoders.py
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scorer.errors import RecordError
from scorer.events import edr, netflow, siem
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import STRUCT_OF_KIND, Event, EventKind, SourceRef
from scorer.features import feature_set
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from scorer.service.build import build_runtimes, load_rules
from tests.support import ocsf_schema
from tests.support.faults import usable_kinds
from tests.support.paths import MODEL_REPOSITORY
from tests.support.samples import SAMPLES
from tests.support.strategies import (
    EXAMPLES,
    FUZZ,
    JSON_VALUES,
    TEXT,
    Tries,
    drifted,
    dumps,
    hostile_record,
    mutated_bytes,
)

KINDS = st.sampled_from(list(EventKind))
DECODER = EventDecoder()
REF = SourceRef("fuzz", 0, 0)
FEATURES = {k: feature_set(k) for k in EventKind}
# What EventDecoder turns into a DecodeFailure; an adapter raising anything else is a bug.
ADAPTER_ERRORS = (RecordError, TypeError, ValueError, AttributeError, OverflowError)
ADAPTERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "netflow.from_zeek": netflow.from_zeek, "netflow.from_cicflowmeter": netflow.from_cicflowmeter,
    "netflow.from_mapping": netflow.from_mapping, "edr.from_otrf": edr.from_otrf,
    "edr.from_event_xml": edr.from_event_xml, "edr.from_mapping": edr.from_mapping,
    "siem.from_ait": siem.from_ait, "siem.from_wazuh": siem.from_wazuh,
    "siem.from_suricata": siem.from_suricata, "siem.from_mapping": siem.from_mapping,
}
RAW_UNSAFE = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")
TRIES = Tries("decoders")
_print_counts = TRIES.printed()


def _check(kind: EventKind | None, value: bytes | None, name: str, decoder: EventDecoder = DECODER) -> None:
    with TRIES.one(name):
        out = decoder.decode(kind, value, REF)
    if isinstance(out, DecodeFailure):
        assert out.reason and isinstance(out.message, str) and out.value == value
        return
    assert kind is not None and isinstance(out, STRUCT_OF_KIND[kind])
    assert math.isfinite(out.ts) and out.uid
    # Whatever the decoder lets through, the rest of the batch must take without raising.
    x = FEATURES[kind].transform([out])
    assert x.shape == (1, len(FEATURES[kind].names))
    msgspec.json.encode(out)


@FUZZ
@given(kind=st.none() | KINDS, value=st.none() | st.binary(max_size=4096))
def test_random_bytes(kind: EventKind | None, value: bytes | None) -> None:
    _check(kind, value, "random bytes")


@FUZZ
@given(kind=KINDS, value=JSON_VALUES.map(dumps))
def test_arbitrary_json(kind: EventKind, value: bytes) -> None:
    _check(kind, value, "arbitrary JSON")


@pytest.mark.data
@FUZZ
@given(data=st.data())
def test_schema_drift_of_real_events(data: st.DataObject) -> None:
    kind = data.draw(KINDS)
    _check(kind, dumps(data.draw(drifted(kind))), f"schema drift {kind.value}")


@pytest.mark.data
@FUZZ
@given(data=st.data())
def test_damaged_real_records(data: st.DataObject) -> None:
    kind = data.draw(KINDS)
    sample = SAMPLES[kind]()
    value = sample[data.draw(st.integers(0, len(sample) - 1))][2]
    _check(kind, data.draw(mutated_bytes(value)), f"damaged bytes {kind.value}")


@pytest.mark.parametrize("depth", [1_000, 100_000, 1_000_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'{"Event":{"System":'])
def test_deep_nesting(opener: bytes, depth: int) -> None:
    # A 16 MB limit so the deepest documents reach the parser instead of the size check.
    big = EventDecoder(max_record_bytes=1 << 24)
    closer = b"]" if opener == b"[" else b"}"
    for value in (opener * depth, opener * depth + b"1" + closer * depth):
        for kind in EventKind:
            _check(kind, value, "deep nesting", big)


@pytest.mark.data
@FUZZ
@given(name=st.sampled_from(sorted(ADAPTERS)), data=st.data())
def test_adapters_raise_only_record_errors(name: str, data: st.DataObject) -> None:
    kind = EventKind(name.split(".")[0])
    raw = data.draw(st.one_of(st.dictionaries(TEXT, JSON_VALUES, max_size=8), drifted(kind)))
    with TRIES.one(f"adapter {name}"):
        try:
            event = ADAPTERS[name](raw)
        except ADAPTER_ERRORS:
            return
    assert isinstance(event, STRUCT_OF_KIND[kind])


@functools.cache
def _scorer() -> BatchScorer:
    from scorer.config import Settings

    settings_ = Settings(kinds=usable_kinds(), inference={"model_repository": MODEL_REPOSITORY})  # type: ignore[arg-type]
    runtimes, backend = build_runtimes(settings_, rules=load_rules(settings_)), OnnxRuntimeBackend(MODEL_REPOSITORY)
    for runtime in runtimes.values():
        backend.load(runtime.model)  # here, not inside the first input's hang guard
    return BatchScorer(runtimes, backend)


@pytest.mark.data
@settings(FUZZ, max_examples=max(50, EXAMPLES // 10))
@given(batch=st.lists(hostile_record(), min_size=1, max_size=40))
def test_batch_accounts_for_every_record(batch: list[tuple[EventKind | None, bytes | None]]) -> None:
    records = [input_record(k, v, None, "fuzz", 0, i) for i, (k, v) in enumerate(batch)]
    scorer = _scorer()  # built and its models loaded once, outside the hang guard
    with TRIES.one("whole micro-batch", 30):
        outcome = asyncio.run(scorer.score(records))
    assert sum(outcome.consumed.values()) == len(records)
    assert sum(outcome.scored.values()) + len(outcome.failures) == len(records)
    assert len(outcome.dead_letters) == len(outcome.failures)
    for alert in outcome.alerts:
        assert not RAW_UNSAFE.search(alert.value)
        msgspec.json.decode(alert.value)
    if outcome.alerts:  # a hostile event still makes a finding the OCSF schema accepts
        ocsf_schema.assert_valid(a.value for a in outcome.alerts)
