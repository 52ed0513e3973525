"""scorer.native's ``flow_features`` (a FlowRow batch's netflow features in one pass) gives the
Python reference's matrices, byte for byte, on generated flow records as the columnar decode
reads them: protocols in any case, absent fields, zero counts, fractional and tiny durations,
the RST/FIN statistics, source windows at small bounds; and refuses (False: nothing written, no
window touched) the batches the reference decides: Zeek records, events that are not FlowRows."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.events.columnar import decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind, FlowRecord, SourceRef
from scorer.features import netflow
from scorer.features.netflow import NetflowFeatures
from tests.native.test_windows import _bounds, _same_matrices

_NATIVE: Any = scorer.native.built_module()
pytestmark = pytest.mark.skipif(_NATIVE is None, reason="scorer.native._native is not built")
DECODER = EventDecoder()
_PROTOS = ["tcp", "TCP", "Udp", "udp", "icmp", "ICMP6", "icmp6", "other", "gre", "tcpx", "ic", None]
_FLAGS = ("FIN Flag Count", "RST Flag Count", "Fwd RST Flags", "Bwd RST Flags")


def _record(draw: st.DrawFn, i: int, zeek: bool) -> dict[str, Any]:
    """A flow record, its fields in FlowRecord's order (as the decode's scanner reads them)."""
    maybe = st.one_of(st.none(), st.integers(0, 2**40), st.sampled_from([0, 1, 53, 80, 443, 1023, 1024, 49152]))
    rec: dict[str, Any] = {"uid": f"u{i}", "ts": draw(st.sampled_from([0.0, 1.5, 30.0, 61.0, 200.0, 1e9])),
                           "source": "zeek" if zeek else "cicflowmeter", "src_ip": draw(st.sampled_from("abc"))}
    values = {"src_port": draw(maybe), "dst_ip": draw(st.sampled_from("wxyz")), "dst_port": draw(maybe),
              "proto": draw(st.sampled_from(_PROTOS)),
              "duration": draw(st.one_of(st.none(), st.sampled_from([0.0, 5e-4, 1e-3, 0.25, 7.0, 1e12]))),
              "src_bytes": draw(maybe), "dst_bytes": draw(maybe), "src_pkts": draw(maybe), "dst_pkts": draw(maybe)}
    if zeek:
        values["conn_state"] = draw(st.sampled_from(["SF", "REJ", "S0", "RSTO", None]))
        values["history"] = draw(st.sampled_from(["ShADadFf", "ShR", "S", None]))
    rec.update({k: v for k, v in values.items() if v is not None or k == "conn_state"})
    rec["extra"] = {name: draw(st.sampled_from([0.0, 1.0, 0.5, 3.0])) for name in _FLAGS
                    if draw(st.booleans())}
    return rec


def _rows(records: list[dict[str, Any]]) -> list[object]:
    """The decode's rows (FlowRows; the records its scanner leaves to the per-record path as
    FlowRecords, as the pipeline hands them on)."""
    values = [json.dumps(r, separators=(",", ":")).encode() for r in records]
    rows = decode_rows(EventKind.NETFLOW, values, DECODER.max_record_bytes, views=True)
    return [r if r is not None else DECODER.decode(EventKind.NETFLOW, v, SourceRef("t", 0, i))
            for i, (r, v) in enumerate(zip(rows, values, strict=True))]


@st.composite
def _stream(draw: st.DrawFn) -> list[object]:
    zeek = draw(st.sampled_from([0.0, 0.0, 0.1]))  # most batches: CICFlowMeter only (the native pass)
    return _rows([_record(draw, i, draw(st.floats(0, 1)) < zeek) for i in range(draw(st.integers(1, 60)))])


@settings(max_examples=150, deadline=None)
@given(rows=_stream(), batch=st.integers(1, 23), max_entities=st.sampled_from([1, 3, 100]),
       small=st.booleans())
def test_generated_flows_give_the_reference_matrices(rows: list[object], batch: int, max_entities: int,
                                                     small: bool) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _bounds(monkeypatch, small)
        with np.errstate(all="ignore"):
            _same_matrices(monkeypatch, NetflowFeatures, rows, batch, max_entities)


def _call(features: NetflowFeatures, rows: list[Any]) -> Any:
    out, logged = np.zeros((28, len(rows))), np.zeros((11, len(rows)))
    return _NATIVE.flow_features(features.state, rows, out, logged, netflow._WEB_PORTS, netflow._SERVICE_PORTS)


def test_the_pass_takes_cicflowmeter_rows_and_refuses_the_rest() -> None:
    cic = _rows([{"uid": "a", "ts": 1.0, "src_ip": "s", "dst_ip": "d", "proto": "udp", "extra": {}}])
    zeek = _rows([{"uid": "b", "ts": 1.0, "src_ip": "s", "dst_ip": "d", "history": "ShAF"}])
    assert type(cic[0]).__name__ == "FlowRow" and type(zeek[0]).__name__ == "FlowRow"
    features = NetflowFeatures()
    record = FlowRecord(ts=1.0, src_ip="s", dst_ip="d")
    for refused in (zeek, cic + zeek, [record], [*cic, record]):
        assert _call(features, refused) is False
        assert len(features.state) == 0  # no window touched
    assert _call(features, cic) is True and len(features.state) == 1


def test_bad_buffers_and_windows_are_refused() -> None:
    cic = _rows([{"uid": "a", "ts": 1.0, "src_ip": "s", "dst_ip": "d", "extra": {}}])
    features = NetflowFeatures()
    ports = (netflow._WEB_PORTS, netflow._SERVICE_PORTS)
    with pytest.raises(ValueError):
        _NATIVE.flow_features(features.state, cic, np.zeros((27, 1)), np.zeros((11, 1)), *ports)
    with pytest.raises(ValueError):
        _NATIVE.flow_features(features.state, cic, np.zeros((28, 1)), np.zeros((11, 1), np.float32), *ports)
    with pytest.raises(TypeError):
        _NATIVE.flow_features(features.state, cic, np.zeros((28, 1)), np.zeros((11, 1)), (80,), ())
    siem_windows = _NATIVE.Windows(1, 10, 60.0, 10, 10, 86400.0)
    assert _NATIVE.flow_features(siem_windows, cic, np.zeros((28, 1)), np.zeros((11, 1)), *ports) is False
