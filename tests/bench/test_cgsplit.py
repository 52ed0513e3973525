"""scorer.bench.cgsplit: a cachegrind count split by component of the scoring loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.bench.cgsplit import component, counts, native_functions, per_event, table

# The shape of a ``cachegrind --cache-sim=no`` output: file, function, then "line count" rows.
_OUT = """desc: I1 cache: 32768 B
cmd: python -P stages_ab.py --child x
events: Ir
fl=/tmp/build/scorer/native/_rules.c
fn=fold_many
10 100
11 20
fn=fold_rows
12 5
fl=???
fn=json_decode_dict
0 40
fn=predict
0 300
fn=???
0 7
fl=/tmp/python-build.1/Python-3.11.7/Python/ceval.c
fn=_PyEval_EvalFrameDefault
900 1000
fl=./string/../sysdeps/x86_64/multiarch/memset-vec-unaligned-erms.S
fn=__memset_avx2_unaligned_erms
1 9
fl=???
fn=PyArray_NewFromDescr_int
0 3
"""


def test_native_functions_are_found_in_the_sources() -> None:
    own = native_functions()
    # One function of each module the scoring loop calls per batch.
    assert own["fold_many"] == "_rules"
    assert own["run"] == "_edr"
    assert own["Stats_rows"] == "_native"
    assert own["trees_score"] == "_trees"


def test_a_file_is_read_by_component(tmp_path: Path) -> None:
    path = tmp_path / "cachegrind.out"
    path.write_text(_OUT)
    got = counts(path, {"fold_many": "_rules", "fold_rows": "_rules"})
    assert got == {"native _rules": 125, "msgspec": 40, "compiled trees": 300, "unsymbolised": 7,
                   "CPython": 1000, "libc": 9, "other": 3}


def test_components_by_file_and_name() -> None:
    assert component("???", "scan", {"scan": "_native"}) == "native _native"
    assert component("???", "Struct_vectorcall", {}) == "msgspec"
    assert component("/usr/lib/libpython3.11.so", "PyDict_New", {}) == "CPython"
    assert component("???", "???", {}) == "unsymbolised"


def test_per_event_is_the_difference_of_the_runs_largest_first() -> None:
    split = per_event({"CPython": 5000, "msgspec": 900, "libc": 10}, {"CPython": 1000, "msgspec": 100, "other": 4}, 100)
    assert list(split) == ["CPython", "msgspec", "libc", "other", "total"]
    assert split == {"CPython": 40.0, "msgspec": 8.0, "libc": 0.1, "other": -0.04, "total": pytest.approx(48.06)}
    with pytest.raises(ValueError):
        per_event({}, {}, 0)


def test_table_puts_sides_side_by_side() -> None:
    text = table({"before": {"CPython": 40.0, "total": 40.0},
                  "after": {"CPython": 30.0, "msgspec": 2.0, "total": 32.0}})
    assert text.splitlines() == [
        "| component | before | after |",
        "|---|---:|---:|",
        "| CPython | 40 | 30 |",
        "| msgspec | 0 | 2 |",
        "| total | 40 | 32 |",
    ]
