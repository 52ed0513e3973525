"""EDR events decoded with their ``fields`` as a FieldMap (scorer.events.edrrows) against the
same records decoded one by one into EndpointEvent: the same canonical events, the same Sigma
rule hits and feature-set v3 matrices, native and Python blocks alike, on the realistic stream's
real background; objects the map refuses decided by msgspec as before."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import scorer.native
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.columnar import decode_rows, expand
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.edrrows import ENDPOINT_TYPES, EndpointRow, FieldMap, canonical
from scorer.events.structs import EndpointEvent, EventKind, SourceRef
from scorer.features import feature_set
from scorer.rules.annotate import RuleStage
from tests.support.native import use_native
from tests.support.paths import ROOT

DECODER = EventDecoder()
REF = SourceRef("events.edr", 0, 0)
needs_fieldmap = pytest.mark.skipif(FieldMap is None, reason="scorer.native._fieldmap is not built")


def _record(fields: Any, **extra: Any) -> bytes:
    return json.dumps({"uid": "e1", "ts": 1.5, "host": "WS1", "event_code": 1, "image": "C:\\x.exe", "fields": fields,
                       **extra}).encode()


def _decoded(values: list[bytes]) -> tuple[list[Any], list[Any]]:
    """(the columnar rows with views, the per-record events or failures)."""
    rows = decode_rows(EventKind.EDR, values, DECODER.max_record_bytes, views=True)
    return rows, [DECODER.decode(EventKind.EDR, v, REF) for v in values]


@needs_fieldmap
def test_rows_read_their_fields_from_a_fieldmap_and_expand_to_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    values = [_record({"CommandLine": "a \"b\" c:\\\\d", "Level": "4"}), _record({}),
              _record({"Ünïcode": "é"}),  # a key the map does not take: msgspec decodes the event
              _record({"a": "1"}, label="attack")]
    rows, events = _decoded(values)
    assert [type(r) for r in rows] == [EndpointRow, EndpointRow, EndpointEvent, EndpointRow]
    fields: Any = rows[0].fields
    assert type(fields) is FieldMap and fields.get("Level") == "4"
    assert rows[0].fields == {"CommandLine": "a \"b\" c:\\\\d", "Level": "4"}
    for row, event, value in zip(rows, events, values, strict=True):
        assert isinstance(row, EndpointEvent) and type(row) in ENDPOINT_TYPES
        assert canonical(row) == event and type(canonical(row)) is EndpointEvent
        assert expand(EventKind.EDR, row, value, REF) == event
        assert msgspec.json.encode(canonical(row)) == msgspec.json.encode(event)


@needs_fieldmap
@pytest.mark.parametrize("fields", [
    '{"a":"1","a":"2"}',            # a duplicate key: msgspec keeps the last
    '{"a":1}', '{"a":null}', '{"a":{"b":"c"}}', '{"a":["b"]}',  # not a string: the per-record path refuses
    '{"\\u0041":"x"}', '{"a":"\\ud800"}', '{"a":"\\u00e9\\ud83d\\ude00"}',
    '{ "a" : "b" , "c":"d" }',
])
def test_objects_the_map_refuses_are_decided_as_before(monkeypatch: pytest.MonkeyPatch, fields: str) -> None:
    use_native(monkeypatch, "1")
    value = b'{"uid":"e2","ts":1.5,"host":"WS1","event_code":1,"fields":' + fields.encode() + b"}"
    good = _record({"x": "y"})
    rows, expected = _decoded([good, value, good])
    plain = decode_rows(EventKind.EDR, [good, value, good], DECODER.max_record_bytes, views=False)
    one = expected[1]
    if isinstance(one, DecodeFailure):
        assert rows[1] is None and plain[1] is None
    else:
        assert rows[1] is not None and canonical(rows[1]) == one == plain[1]
    assert canonical(rows[0]) == expected[0] and canonical(rows[2]) == expected[2]


def test_without_the_native_map_rows_are_plain_events(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "0")
    rows, events = _decoded([_record({"a": "b"})])
    assert type(rows[0]) is EndpointEvent and rows == events


def test_canonical_decodes_raw_fields_of_a_row_not_indexed() -> None:
    row = msgspec.json.decode(_record({"k": "v\\u00e9"}), type=EndpointRow)
    assert canonical(row) == DECODER.decode(EventKind.EDR, _record({"k": "v\\u00e9"}), REF)


def _realistic_edr(events: int) -> list[bytes]:
    capture = templates(bundled_capture(), tuple(EventKind))
    tpl = realistic_templates(capture, data_dir(), per_kind=events)
    return [v for k, _, v in payloads(tpl, 3 * events) if k is EventKind.EDR]


@needs_fieldmap
@pytest.mark.data
def test_realistic_rule_hits_and_v3_matrices_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = RuleStage.load(ROOT / "rule_repository", "sigma_windows")
    use_native(monkeypatch, "1")
    values = _realistic_edr(3000)
    rows, events = _decoded(values)
    assert not any(isinstance(e, DecodeFailure) for e in events)
    assert sum(type(r) is EndpointRow for r in rows) > 0.95 * len(rows)
    assert [canonical(r) for r in rows] == events
    for native in ("1", "0"):  # the rows decoded once (FieldMaps); rules and features native, then Python
        use_native(monkeypatch, native)
        by_event, by_row = (feature_set("edr", "v3", rules=stage.by_id) for _ in range(2))
        for lo in range(0, len(values), 50):
            hit_events = stage.annotate_rows(events[lo:lo + 50])[0]
            hit_rows = stage.annotate_rows(rows[lo:lo + 50])[0]
            assert [e.rule_hits for e in hit_rows] == [e.rule_hits for e in hit_events], (native, lo)
            a, b = by_event.transform(hit_events), by_row.transform(hit_rows)
            assert a.tobytes() == b.tobytes(), (native, lo)
    assert scorer.native.built("_fieldmap")


@needs_fieldmap
def test_the_natives_read_a_fieldmap_as_its_dict() -> None:
    edr: Any = scorer.native.built_module("_edr")
    rules: Any = scorer.native.built_module("_rules")
    if edr is None or rules is None:
        pytest.skip("scorer.native._edr or _rules is not built")
    assert FieldMap is not None
    objects = [{"Image": "C:\\a.exe", "User": "x"}, {}, {"User": "", "Image": "b\u00e9"}, {"Other": "1", "User": "y"}]
    dicts: list[Any] = [dict(o) for o in objects]
    maps: list[Any] = [FieldMap(json.dumps(o).encode()) for o in objects]
    for name in ("Image", "User", "Missing"):
        assert edr.texts(None, maps, name) == edr.texts(None, dicts, name)
        assert edr.texts(["p", None, "", None], maps, name) == edr.texts(["p", None, "", None], dicts, name)
        assert edr.group(maps, None, name, 4) == edr.group(dicts, None, name, 4)
        assert edr.group(maps, [1, 2], name, 4) == edr.group(dicts, [1, 2], name, 4)
    events = [msgspec.json.decode(_record(o), type=EndpointEvent) for o in objects]
    names = ("Image", "User", "Other", "Missing")
    assert edr.present(events, ("image",), maps, names) == edr.present(events, ("image",), dicts, names)
    items = [(msgspec.json.decode(_record({}), type=EndpointRow), None), (events[0], None)]
    assert rules.events_of(items, ENDPOINT_TYPES) == [items[0][0], events[0]]
    assert rules.events_of(items, (EndpointEvent,)) is None
