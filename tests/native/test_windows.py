"""The native entity windows (scorer/native/_native.c) give the Python reference's matrices,
byte for byte: on the bundled capture, on the realistic stream's real background (marker
data), at bounds small enough that every eviction rule runs (entities, flows or alerts per
window, rules per host), and on generated hostile sequences (out-of-order, equal and NaN
times, one key, many keys). Without the built module these skip (CI: SCORER_STRICT_SKIPS
turns that into a failure, so a machine that installs the package must have built it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import Template, realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.columnar import decode_rows
from scorer.events.decode import EventDecoder
from scorer.events.structs import EventKind, FlowRecord, SiemAlert
from scorer.features import netflow, siem
from scorer.features.entity_state import EntityState
from scorer.features.netflow import NetflowFeatures
from scorer.features.siem import SiemFeatures
from tests.support.native import use_native

pytestmark = pytest.mark.skipif(not scorer.native.built(), reason="scorer.native._native is not built")
STATEFUL = (NetflowFeatures, SiemFeatures)


def _pair(monkeypatch: pytest.MonkeyPatch, cls: type[NetflowFeatures] | type[SiemFeatures],
          max_entities: int) -> tuple[NetflowFeatures | SiemFeatures, NetflowFeatures | SiemFeatures]:
    """(Python reference, native) feature sets of one kind, chosen by SCORER_NATIVE."""
    use_native(monkeypatch, "0")
    reference = cls(max_entities=max_entities)
    use_native(monkeypatch, "1")
    native = cls(max_entities=max_entities)
    assert isinstance(reference.state, EntityState) and not isinstance(native.state, EntityState)
    return reference, native


def _same_matrices(monkeypatch: pytest.MonkeyPatch, cls: type[NetflowFeatures] | type[SiemFeatures],
                   rows: list[object], batch: int, max_entities: int) -> None:
    reference, native = _pair(monkeypatch, cls, max_entities)
    for lo in range(0, len(rows), batch):
        with monkeypatch.context() as python:  # the stateless columns' reference too
            use_native(python, "0")
            a = reference.transform(rows[lo:lo + batch])  # type: ignore[arg-type]
        b = native.transform(rows[lo:lo + batch])  # type: ignore[arg-type]
        assert a.tobytes() == b.tobytes(), (cls.__name__, lo)
    assert len(reference.state) == len(native.state)


def _stream(tpl: list[Template], events: int) -> dict[EventKind, list[object]]:
    """Each kind's rows as the scorer decodes them (flows as views), in stream order."""
    values: dict[EventKind, list[bytes]] = {k: [] for k in EventKind}
    for kind, _, value in payloads(tpl, events):
        values[kind].append(value)
    out: dict[EventKind, list[object]] = {}
    for kind in (EventKind.NETFLOW, EventKind.SIEM):
        rows = decode_rows(kind, values[kind], EventDecoder().max_record_bytes, views=True)
        assert None not in rows
        out[kind] = rows
    return out


def _bounds(monkeypatch: pytest.MonkeyPatch, small: bool) -> None:
    """Per-window bounds small enough to be hit by these streams (both sides read them)."""
    if small:
        monkeypatch.setattr(netflow, "MAX_WINDOW_FLOWS", 5)
        monkeypatch.setattr(siem, "MAX_WINDOW_ALERTS", 6)
        monkeypatch.setattr(siem, "MAX_RULES_PER_HOST", 3)


@pytest.mark.parametrize(("small", "max_entities"), [(False, 100_000), (True, 4)])
def test_bundled_capture_matrices_are_identical(monkeypatch: pytest.MonkeyPatch, small: bool,
                                                max_entities: int) -> None:
    _bounds(monkeypatch, small)
    stream = _stream(templates(bundled_capture(), tuple(EventKind)), 9000)
    for cls in STATEFUL:
        _same_matrices(monkeypatch, cls, stream[cls.kind], 700, max_entities)


@pytest.mark.data
@pytest.mark.parametrize(("small", "max_entities"), [(False, 100_000), (True, 4)])
def test_realistic_stream_matrices_are_identical(monkeypatch: pytest.MonkeyPatch, small: bool,
                                                 max_entities: int) -> None:
    _bounds(monkeypatch, small)
    capture = templates(bundled_capture(), tuple(EventKind))
    stream = _stream(realistic_templates(capture, data_dir(), per_kind=3000), 9000)
    for cls in STATEFUL:
        _same_matrices(monkeypatch, cls, stream[cls.kind], 700, max_entities)


_TIMES = st.one_of(st.floats(0.0, 300.0), st.sampled_from([0.0, 60.0, 120.0, math.nan, -1e300, 1e300]))


def _flows(draw: st.DrawFn) -> list[object]:
    n = draw(st.integers(1, 60))
    return [FlowRecord(ts=draw(_TIMES), src_ip=draw(st.sampled_from("abcd")), dst_ip=draw(st.sampled_from("wxyz")),
                       dst_port=draw(st.sampled_from([0, 22, 80, 443, 2**40]))) for _ in range(n)]


def _alerts(draw: st.DrawFn) -> list[object]:
    n = draw(st.integers(1, 60))
    return [SiemAlert(ts=draw(_TIMES), rule_name=draw(st.sampled_from(["r1", "r2", "r3", "r4", "r5"])),
                      rule_id=draw(st.sampled_from([None, "1", "2"])), host=draw(st.sampled_from([None, "h1", "H1"])),
                      src_ip=draw(st.sampled_from([None, "10.0.0.1"]))) for _ in range(n)]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), batch=st.integers(1, 17), max_entities=st.integers(1, 3))
def test_hostile_sequences_give_the_same_rows(data: st.DataObject, batch: int, max_entities: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _bounds(monkeypatch, True)
        _same_matrices(monkeypatch, NetflowFeatures, data.draw(st.composite(_flows)()), batch, max_entities)
        _same_matrices(monkeypatch, SiemFeatures, data.draw(st.composite(_alerts)()), batch, max_entities)


def test_the_environment_chooses_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "0")
    assert isinstance(SiemFeatures().state, EntityState) and scorer.native.module() is None
    use_native(monkeypatch, "auto")
    assert not isinstance(SiemFeatures().state, EntityState)
    monkeypatch.setitem(scorer.native._BUILT, "_native", None)  # as in a source tree without the build
    use_native(monkeypatch, "auto")  # chosen again from what is built now
    assert isinstance(SiemFeatures().state, EntityState)
    use_native(monkeypatch, "1")
    with pytest.raises(ImportError):
        SiemFeatures()


def test_clear_and_bad_arguments() -> None:
    windows = scorer.native.built_module().Windows(0, 10, 60.0, 8)  # type: ignore[union-attr]
    out = np.empty((2, 2))
    windows.rows(["a", "b"], [1.0, 2.0], [80, 443], ["x", "y"], out)
    assert out.tolist() == [[1.0, 1.0], [1.0, 1.0]] and len(windows) == 2
    windows.clear()
    assert len(windows) == 0
    with pytest.raises(ValueError, match="float64"):
        windows.rows(["a"], [1.0], [80], ["x"], np.empty((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="lengths"):
        windows.rows(["a"], [1.0, 2.0], [80], ["x"], out)
    with pytest.raises(TypeError):
        windows.rows([["unhashable"]], [1.0], [80], ["x"], np.empty((1, 2)))
    with pytest.raises(ValueError):
        scorer.native.built_module().Windows(0, 0, 60.0, 8)  # type: ignore[union-attr]


def test_rows_into_a_matrixs_columns() -> None:
    """With a column, the rows go to a matrix's columns from there on (a feature set's sheet), the
    other columns untouched; the same values as a block of their own."""
    native = scorer.native.built_module()
    assert native is not None
    alone, into = native.Windows(1, 10, 60.0, 8, 4, 86_400.0), native.Windows(1, 10, 60.0, 8, 4, 86_400.0)
    keys, ts, rules = ["h1", "h2", "h1"], [1.0, 2.0, 3.0], ["r1", "r1", "r2"]
    block, sheet = np.empty((3, 6)), np.full((3, 10), 7.0)
    alone.rows(keys, ts, rules, None, block)
    into.rows(keys, ts, rules, None, sheet, 3)
    assert sheet[:, 3:9].tobytes() == block.tobytes()
    assert (sheet[:, :3] == 7.0).all() and (sheet[:, 9:] == 7.0).all()
    for bad in (np.empty((3, 8)), np.empty((2, 10)), np.empty(30), np.empty((3, 10), np.float32)):
        with pytest.raises(ValueError, match="float64"):
            into.rows(keys, ts, rules, None, bad, 3)
    assert len(into) == 2  # refused before any window was touched
