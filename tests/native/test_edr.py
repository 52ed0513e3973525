"""The native EDR passes (scorer/native/_edr.c) give the Python reference's results, bit for
bit: ``factorize`` and the rule engine's value -> rows grouping on generated hostile values
(non-ASCII, Sigma's case variants, empty and huge texts, None, equal keys of different types),
and the EDR v3 matrices and every rule hit on the bundled capture and (marker ``data``) the
realistic stream, with ``SCORER_NATIVE=0`` against ``1``. Without the built module these skip
(CI: SCORER_STRICT_SKIPS turns that into a failure)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scorer.native
from scorer.bench.loadgen import templates
from scorer.bench.realistic import realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.structs import EndpointEvent, EventKind
from scorer.features import edr, feature_set, texts
from scorer.rules import RuleEngine
from scorer.rules.field_pass import SMALL_ROWS
from tests.rules.helpers import SHIPPED
from tests.support.native import use_native
from tests.support.samples import decoded_edr

_edr: Any = scorer.native.built_module("_edr")
pytestmark = pytest.mark.skipif(_edr is None, reason="scorer.native._edr is not built")
NAN = float("nan")
# Texts a detection engineer's rules compare, in the case variants Sigma folds (ASCII only: a
# Sigma value matches case-insensitively) and variants it does not (non-ASCII case pairs).
WORDS = ["C:\\Windows\\System32\\cmd.exe", "c:\\windows\\system32\\CMD.EXE", "powershell.exe -enc SQBFAFgA",
         "POWERSHELL.EXE -ENC sqbfafga", "\\\\.\\pipe\\PSEXESVC", "İstanbul", "istanbul", "ß", "SS", "Ωmega",
         "ωMEGA", "lsass.exe", "LSASS.EXE", "", " ", "\x00", "\ud800", "x" * 70_000, "é" * 5_000]
VALUES = st.one_of(st.sampled_from(WORDS), st.text(max_size=40), st.none(), st.integers(-3, 3), st.booleans(),
                   st.just(1.0), st.just(NAN), st.tuples(st.sampled_from(WORDS)))


def _native(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    use_native(monkeypatch, "1" if on else "0")


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=300))
def test_factorize_equals_the_reference(rows: list[Any]) -> None:
    codes = np.full(len(rows), -7, dtype=np.intp)
    distinct = _edr.factorize(rows, codes)
    ref_distinct, ref_codes = texts.factorize_reference(rows)
    # The same objects (the first seen of equal keys: 1, 1.0 and True are one key), the same codes.
    assert len(distinct) == len(ref_distinct) and all(a is b for a, b in zip(distinct, ref_distinct, strict=True))
    assert codes.tolist() == ref_codes.tolist()


class _Defaulting(dict[str, str]):
    """A mapping whose ``get`` is its own (the native code must call it, not the dict's)."""

    def get(self, key: str, default: Any = None) -> Any:
        return "from-get" if key == "Image" else super().get(key, default)


FIELDS = st.one_of(st.dictionaries(st.sampled_from(["Image", "SourceImage", "x"]), st.sampled_from(WORDS),
                                   max_size=3),
                   st.builds(_Defaulting, st.dictionaries(st.sampled_from(["Image", "x"]), st.sampled_from(WORDS))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(VALUES, FIELDS), max_size=120), st.sampled_from(["Image", "SourceImage", "y"]))
def test_first_texts_equal_the_reference(rows: list[tuple[Any, dict[str, str]]], name: str) -> None:
    primary, fields = [p for p, _ in rows], [f for _, f in rows]
    native = _edr.texts
    for args in ((primary, fields, name), (None, fields, name), (primary, None, "")):
        assert native(*args) == texts.first_texts_reference(*args)


def test_factorize_refuses_a_wrong_buffer() -> None:
    with pytest.raises(ValueError):
        _edr.factorize(["a", "b"], np.empty(1, dtype=np.intp))
    with pytest.raises(ValueError):
        _edr.factorize(["a"], np.empty(1, dtype=np.float64))
    with pytest.raises(TypeError):
        _edr.factorize([["unhashable"]], np.empty(1, dtype=np.intp))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 200), st.lists(VALUES, min_size=1, max_size=200), st.randoms(use_true_random=False))
def test_masks_equal_both_python_paths(n: int, pool: list[Any], rnd: random.Random) -> None:
    engine = RuleEngine([], [], [])
    engine._bits = [1 << r for r in range(n)]
    sel = sorted(rnd.sample(range(n), rnd.randint(1, n)))
    col = [rnd.choice(pool) for _ in sel]
    wanted = {v: None for v in rnd.sample(pool, rnd.randint(0, len(pool)))}
    rows = sum(1 << r for r in sel)
    native = _edr.masks(None if len(sel) == n else sel, col, wanted, n)
    engine._native, engine._arrays = None, {}
    reference = engine._masks(sel, col, wanted, rows, n)
    assert native == reference
    if len(sel) <= SMALL_ROWS:  # the numpy path too, on the same rows
        padded = sel + list(range(sel[-1] + 1, sel[-1] + 1 + SMALL_ROWS))
        big_n = max(n, padded[-1] + 1)
        engine._bits = [1 << r for r in range(big_n)]
        col2 = col + [pool[0]] * SMALL_ROWS
        rows2 = sum(1 << r for r in padded)
        assert _edr.masks(padded, col2, wanted, big_n) == engine._masks(
            padded, col2, wanted, rows2, big_n)


def test_masks_refuse_bad_rows() -> None:
    with pytest.raises(IndexError):
        _edr.masks([5], ["a"], {"a": 1}, 3)
    with pytest.raises(ValueError):
        _edr.masks([0, 1], ["a"], {"a": 1}, 3)


def test_native_1_without_the_build_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(scorer.native._BUILT, "_edr", None)
    use_native(monkeypatch, "1")
    with pytest.raises(ImportError, match=r"scorer\.native\._edr is not built"):
        scorer.native.module("_edr")
    use_native(monkeypatch, "0")
    assert scorer.native.module("_edr") is None
    use_native(monkeypatch, "auto")
    assert scorer.native.module("_edr") is None


def test_the_variable_is_read_at_import_and_on_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "auto")
    monkeypatch.setenv(scorer.native.ENV, "0")
    assert scorer.native.module("_edr") is _edr  # not read again at every call
    scorer.native.refresh()
    assert scorer.native.module("_edr") is None and scorer.native.module() is None



def _hostile(rows: list[EndpointEvent], seed: int) -> list[EndpointEvent]:
    """Decoded events with their texts swapped for hostile ones (fields the rules read)."""
    rnd = random.Random(seed)
    out = []
    for ev in rows[:600]:
        fields = {k: rnd.choice(WORDS) if rnd.random() < 0.3 else v for k, v in ev.fields.items()}
        fields[rnd.choice(("TargetImage", "GrantedAccess", "CallTrace", "ScriptBlockText"))] = rnd.choice(WORDS)
        out.append(msgspec.structs.replace(
            ev, image=rnd.choice(WORDS) or None, command_line=rnd.choice(WORDS), parent_image=rnd.choice(WORDS),
            target_filename=rnd.choice(WORDS), fields=fields))
    return out


def _same_everywhere(monkeypatch: pytest.MonkeyPatch, batches: list[list[EndpointEvent]]) -> int:
    """Rule hits, failures and v3 matrices of every batch, Python against native; hits seen."""
    engines, sets = [], []
    for on in (False, True):
        _native(monkeypatch, on)
        engines.append(RuleEngine.load(SHIPPED))
        sets.append(feature_set(EventKind.EDR, "v3", None, engines[-1].rules))
    fired = 0
    for batch in batches:
        results = []
        for on, engine, fs in zip((False, True), engines, sets, strict=True):
            _native(monkeypatch, on)
            hits = engine.evaluate(batch)
            ids = [tuple(engine.rules[j].id for j in h) for h in hits.hits]
            annotated = [msgspec.structs.replace(e, rule_hits=i) for e, i in zip(batch, ids, strict=True)]
            results.append((hits.hits, hits.errors, fs.transform(annotated).tobytes()))
        assert results[0] == results[1]
        fired += sum(1 for h in results[1][0] if h)
    return fired


def test_capture_is_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    events = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 9000)
    batches = [events[lo:lo + 683] for lo in range(0, len(events), 683)] + [events[:7], events[:1]]
    assert _same_everywhere(monkeypatch, batches) > 100


def test_hostile_values_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 3000)
    batches = [_hostile(rows, seed) for seed in range(3)]
    _same_everywhere(monkeypatch, batches + [b[:SMALL_ROWS] for b in batches])


@pytest.mark.data
def test_realistic_stream_is_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    events = decoded_edr(realistic_templates(capture, data_dir(), per_kind=3000), 9000)
    _same_everywhere(monkeypatch, [events[lo:lo + 683] for lo in range(0, len(events), 683)])


ROW_VALUES = st.one_of(st.floats(allow_nan=True), st.integers(-(2**70), 2**70), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.integers(0, 6), st.integers(0, 3), st.data())
def test_fill_equals_numpy(n: int, width: int, column: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 8)) if n else 0
    rows = [data.draw(st.one_of(st.tuples(*[ROW_VALUES] * width), st.lists(ROW_VALUES, min_size=width,
                                                                             max_size=width))) for _ in range(k)]
    inverse = np.array(data.draw(st.lists(st.integers(0, max(k - 1, 0)), min_size=n, max_size=n)), dtype=np.intp)
    out = np.full((n, column + width + 1), -1.5)
    _edr.fill(out, column, width, inverse, rows)
    expected = np.full_like(out, -1.5)
    expected[:, column:column + width] = np.array(rows, dtype=np.float64).reshape(k, width)[inverse]
    assert out.tobytes() == expected.tobytes()
    if k == n:  # without inverse: row i is rows[i]
        out2 = np.full_like(out, -1.5)
        _edr.fill(out2, column, width, None, rows)
        expected[:, column:column + width] = np.array(rows, dtype=np.float64).reshape(k, width)
        assert out2.tobytes() == expected.tobytes()


def test_fill_refuses_what_does_not_fit() -> None:
    out = np.zeros((2, 3))
    with pytest.raises(ValueError):
        _edr.fill(out, 2, 2, None, [(1.0, 2.0), (3.0, 4.0)])  # past the last column
    with pytest.raises(ValueError):
        _edr.fill(out, 0, 2, None, [(1.0, 2.0)])  # one row short
    with pytest.raises(ValueError):
        _edr.fill(out, 0, 2, None, [(1.0,), (2.0, 3.0)])  # a row too short
    with pytest.raises(IndexError):
        _edr.fill(out, 0, 1, np.array([0, 3], dtype=np.intp), [(1.0,)])
    with pytest.raises(ValueError):
        _edr.fill(out, 0, 1, np.array([0], dtype=np.intp), [(1.0,)])  # one code per row
    with pytest.raises(ValueError):
        _edr.fill(np.zeros((2, 3), dtype=np.float32), 0, 1, None, [(1.0,), (2.0,)])
    with pytest.raises(ValueError):
        _edr.fill(np.zeros((2, 3))[:, ::2], 0, 1, None, [(1.0,), (2.0,)])  # not contiguous
    with pytest.raises(TypeError):
        _edr.fill(out, 0, 1, None, [("x",), (2.0,)])


@settings(max_examples=300, deadline=None)
@given(st.lists(FIELDS, min_size=1, max_size=150), st.sampled_from(["Image", "SourceImage", "y"]), st.randoms(
    use_true_random=False))
def test_group_equals_the_column_and_its_masks(fields: list[dict[str, str]], name: str, rnd: random.Random) -> None:
    n = len(fields)
    for sel in (None, sorted(rnd.sample(range(n), rnd.randint(1, n)))):
        rows = range(n) if sel is None else sel
        expected: dict[Any, int] = {}
        for r in rows:  # the engine's reference: fields[r].get(name), grouped by value
            v = fields[r].get(name)
            expected[v] = expected.get(v, 0) | 1 << r
        assert _edr.group(fields, sel, name, n) == expected


def test_group_refuses_what_set_refuses() -> None:
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        _edr.group([{"a": ["x"]}], None, "a", 1)
    with pytest.raises(IndexError):
        _edr.group([{}], [1], "a", 1)
    with pytest.raises(ValueError):
        _edr.group([{}, {}], None, "a", 1)


def _needle_counts(groups: list[tuple[str, ...]], texts_: list[str]) -> list[tuple[float, ...]]:
    return [tuple(float(sum(1 for s in g if s in t)) for g in groups) for t in texts_]


NEEDLE_TEXT = st.text(alphabet="abc-\\. xé\u0130\U0001f600", max_size=30)
SHIPPED_GROUPS = [tuple(g) for g in edr.TOKENS.values()] + [edr.USER_WRITABLE, edr.SYSTEM_DIRS, edr.REG_KEYS]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="abc-\\. x", min_size=1, max_size=5), max_size=6).map(tuple), max_size=5),
       st.lists(NEEDLE_TEXT, max_size=20))
def test_count_needles_equals_python(groups: list[tuple[str, ...]], texts_: list[str]) -> None:
    # Overlapping needles, one inside another, a needle twice, the same needle in two groups.
    assert _edr.count_needles(_edr.compile_needles(groups), texts_) == _needle_counts(groups, texts_)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(NEEDLE_TEXT, st.sampled_from(WORDS), st.sampled_from(
    [n for g in SHIPPED_GROUPS for n in g]).map(lambda n: f"x{n.upper()}{n}é")), max_size=20))
def test_count_needles_on_the_shipped_needles(texts_: list[str]) -> None:
    lowered = [t.lower() for t in texts_]
    assert _edr.count_needles(_edr.compile_needles(SHIPPED_GROUPS), lowered) == _needle_counts(SHIPPED_GROUPS, lowered)


def test_needles_outside_ascii_use_python(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        _edr.compile_needles([("é",)])
    with pytest.raises(ValueError):
        _edr.compile_needles([("",)])
    needles = texts.Needles(("é", "a"), ("b",))
    _native(monkeypatch, True)
    assert needles.counts(["éa", "b", ""]) == [(2.0, 0.0), (0.0, 1.0), (0.0, 0.0)]
