"""scorer.native._rules against its Python reference: the column readers of scorer.rules.fields,
grouped by value, the cached atoms' rows or-ed and the other values handed back; and the head
pairs of scorer.rules.heads. Generated batches with hostile values (non-ASCII, empty, huge,
None, a bool where an int is expected, a dict subclass with its own ``get``)."""

from __future__ import annotations

import functools
import operator
import random
from typing import Any

import msgspec
import pytest

import scorer.rules.bitsets as bitsets
from scorer.bench.loadgen import templates
from scorer.demo import bundled_capture
from scorer.events.structs import EndpointEvent, EventKind
from scorer.native import _rules
from scorer.rules.bitsets import Triggers, atom_ids, evaluate_tree, flat_tree, or_of
from scorer.rules.compiled_trees import compile_tree
from scorer.rules.fields import READ_FIELD, column_reader, native_read
from scorer.rules.heads import Heads
from tests.native.test_edr import WORDS
from tests.support.samples import decoded_edr

# One name per way of reading a column (and a few of each): fields only, attribute, field then
# attribute, an attribute made text, the event code.
NAMES = ["TargetImage", "GrantedAccess", "Channel", "User", "Image", "CommandLine", "ParentImage", "ProcessId",
         "Signed", "LogonType", "DestinationPort", "EventID"]


class _Fields(dict[str, str]):
    """A mapping whose ``get`` is its own: the C pass must call it, not read the dict."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, default) if key != "GrantedAccess" else "0x1fffff"


def _events(rnd: random.Random, n: int) -> list[EndpointEvent]:
    base = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 60)
    out = []
    for _ in range(n):
        ev = rnd.choice(base)
        fields: dict[str, str] = {k: rnd.choice(WORDS) if rnd.random() < 0.3 else v for k, v in ev.fields.items()}
        for name in ("TargetImage", "GrantedAccess", "Image", "User"):
            if rnd.random() < 0.4:
                fields[name] = rnd.choice(WORDS[:6])
        if rnd.random() < 0.1:
            fields = _Fields(fields)
        out.append(msgspec.structs.replace(
            ev, image=rnd.choice([*WORDS[:6], None, ""]), command_line=rnd.choice(WORDS), user=rnd.choice(WORDS[:3]),
            channel=rnd.choice(["Security", "Microsoft-Windows-Sysmon/Operational", ""]),
            process_id=rnd.choice([None, 0, 4, 2**40]), signed=rnd.choice([None, True, False]),
            logon_type=rnd.choice([None, 3, 10]), event_code=rnd.choice([1, 4688, 4624, -1]), fields=fields))
    return out


def _reference(events: list[EndpointEvent], name: str, rows: list[int], cache: dict[str, list[int]],
               missing: list[int], amask: dict[int, int]) -> dict[Any, int] | None:
    """What fold does, by the engine's own column reader."""
    groups: dict[Any, int] = {}
    for r, value in zip(rows, column_reader(name)(events, rows), strict=True):
        groups[value] = groups.get(value, 0) | 1 << r
    misses = {}
    for value, mask in groups.items():
        ids = missing if value is None else cache.get(value) if type(value) is str else None
        if ids is None:
            misses[value] = mask
        for aid in ids or ():
            amask[aid] = amask.get(aid, 0) | mask
    return misses or None


def _cache(rnd: random.Random, events: list[EndpointEvent], name: str) -> dict[str, list[int]]:
    values = {v for v in column_reader(name)(events, range(len(events))) if type(v) is str}
    return {v: rnd.sample(range(40), rnd.randrange(3)) for v in values if rnd.random() < 0.7}


@pytest.mark.parametrize("seed", range(12))
def test_fold_equals_the_column_readers(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.choice([1, 3, 17, 64, 65, 150])
    events = _events(rnd, n)
    fields = [ev.fields for ev in events]
    for name in NAMES:
        read = native_read(name)
        assert read is not None
        cache, missing = _cache(rnd, events, name), rnd.sample(range(40), rnd.randrange(3))
        for sel in (None, sorted(rnd.sample(range(n), rnd.randint(1, n)))):
            expected: dict[int, int] = {0: 1}
            want = _reference(events, name, list(range(n)) if sel is None else sel, cache, missing, expected)
            amask = {0: 1}
            assert _rules.fold(fields, events, sel, n, name, *read, cache, missing, amask) == want, name
            assert amask == expected, name


@pytest.mark.parametrize("seed", range(12))
def test_fold_many_equals_fold_field_by_field(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.choice([2, 17, 64, 130])
    events = _events(rnd, n)
    fields = [ev.fields for ev in events]
    present = set().union(*fields) if rnd.random() < 0.8 else None
    # The four-item reads (fold_many also takes five-item ones: tests/rules/test_native_passes.py).
    reads: dict[str, Any] = {name: (*read, _cache(rnd, events, name), rnd.sample(range(40), rnd.randrange(2)))
                            for name in NAMES if (read := native_read(name)) is not None and rnd.random() < 0.8}
    full = (1 << n) - 1
    # Steps as the engine makes them (a logsource's rows and its fields): names in several.
    plan = [(rnd.choice([full, rnd.getrandbits(n) | 1]), tuple(rnd.sample([*NAMES, "NotRead", "AbsentField"], 5)))
            for _ in range(rnd.randrange(1, 6))]
    todo: dict[str, int] = {}
    for mask, names in plan:
        for name in names:
            todo[name] = todo.get(name, 0) | mask
    expected: dict[int, int] = {}
    rest: list[tuple[str, int, dict[Any, int] | None]] = []
    for name, mask in todo.items():
        if name not in reads:
            rest.append((name, mask, None))
            continue
        _, how, cache, missing = reads[name]
        if how == READ_FIELD and present is not None and name not in present:
            for aid in missing:
                expected[aid] = expected.get(aid, 0) | mask
            continue
        rows = [r for r in range(n) if mask >> r & 1]
        misses = _reference(events, name, rows, cache, missing, expected)
        if misses is not None:
            rest.append((name, mask, misses))
    amask: dict[int, int] = {}
    assert _rules.fold_many(fields, events, n, present, reads, plan, amask) == rest
    assert amask == expected


@pytest.mark.parametrize("seed", range(12))
def test_fold_many_finds_the_carried_fields_as_the_set_of_them_says(seed: int) -> None:
    # present None: fold_many looks the plan's fields up in the events' own dicts (keys equal to
    # the names but other objects, hostile mappings among them); the same as the set of every key.
    rnd = random.Random(seed)
    n = rnd.choice([1, 2, 17, 64, 130])
    events = _events(rnd, n)
    for ev in rnd.sample(events, n // 3):  # values None and keys of other types, carried all the same
        ev.fields.update({"AbsentField": None, 7: "x"} if rnd.random() < 0.5 else {"Late": "v"})  # type: ignore[dict-item]
    fields = [ev.fields for ev in events]
    names = [*NAMES, "AbsentField", "Late", "NeverThere"]
    reads: dict[str, Any] = {
        name: (*(native_read(name) or (None, READ_FIELD)), _cache(rnd, events, name),
               rnd.sample(range(40), rnd.randrange(3)))
        for name in names if rnd.random() < 0.9}
    full = (1 << n) - 1
    plan = [(rnd.choice([full, rnd.getrandbits(n) | 1]), tuple("".join(name) for name in rnd.sample(names, 6)))
            for _ in range(rnd.randrange(1, 6))]
    by_set: dict[int, int] = {}
    want = _rules.fold_many(fields, events, n, set().union(*fields), reads, plan, by_set)
    amask: dict[int, int] = {}
    assert _rules.fold_many(fields, events, n, None, reads, plan, amask) == want
    assert amask == by_set


@pytest.mark.parametrize("seed", range(8))
def test_or_of_equals_the_python_or(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(50):
        amask = {rnd.randrange(300): rnd.getrandbits(rnd.choice([1, 17, 64, 200])) for _ in range(rnd.randrange(40))}
        atoms = frozenset(rnd.sample(range(300), rnd.randrange(80)))
        assert _rules.or_of(amask, atoms) == or_of(amask, atoms) == functools.reduce(
            operator.or_, (amask[a] for a in atoms if a in amask), 0)
    with pytest.raises(TypeError):
        _rules.or_of({1: 1}, [1])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _rules.or_of([1], frozenset({1}))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(8))
def test_fire_equals_the_engines_python_loop(seed: int) -> None:
    rnd = random.Random(seed)
    trees = [compile_tree(["and", rnd.randrange(30), ["not", rnd.randrange(30)]] if rnd.random() < 0.7
                          else ["or", *rnd.sample(range(30), 20)]) for _ in range(60)]
    rule_of, ls_of = [rnd.randrange(25) for _ in trees], [rnd.randrange(10) for _ in trees]
    for _ in range(20):
        amask = {a: rnd.getrandbits(70) for a in rnd.sample(range(30), 12)}
        ls_masks = [rnd.choice([0, rnd.getrandbits(70)]) for _ in range(10)]
        candidates = set(rnd.sample(range(60), rnd.randrange(40)))
        want: dict[int, int] = {}
        for vi in candidates:
            if ls_masks[ls_of[vi]] and (rows := trees[vi](amask.get, ls_masks[ls_of[vi]])):
                want[rule_of[vi]] = want.get(rule_of[vi], 0) | rows
        assert _rules.fire(candidates, rule_of, ls_of, trees, ls_masks, amask.get) == want


def _tree(rnd: random.Random, depth: int) -> Any:
    if depth > 5 or rnd.random() < 0.3:
        return rnd.choice([True, False]) if rnd.random() < 0.05 else rnd.randrange(40)
    op = rnd.choice(["and", "or", "not"])
    if op == "not":
        return ["not", _tree(rnd, depth + 1)]
    if op == "or" and rnd.random() < 0.3:  # a wide or of atoms
        return ["or", *rnd.sample(range(40), rnd.randrange(17, 40))]
    return [op, *(_tree(rnd, depth + 1) for _ in range(rnd.randrange(0, 4)))]


def _unused(get: Any, scope: int) -> int:
    raise AssertionError("the flat walk took this tree")


@pytest.mark.parametrize("seed", range(12))
def test_fire_flat_trees_equal_the_compiled_ones(seed: int) -> None:
    # The C walk of flat trees over row words (batches of 1 to 2,048 rows) against compile_tree's
    # functions, which it never calls but for a tree too deep for it.
    rnd = random.Random(seed)
    raw = [_tree(rnd, 0) for _ in range(80)]
    deep: Any = 3
    for _ in range(300):  # deeper than the C walk goes
        deep = ["not", deep]
    raw[0] = deep
    trees, flat = [compile_tree(t) for t in raw], [flat_tree(t) for t in raw]
    code = [trees[0], *[_unused] * (len(raw) - 1)]
    rule_of, ls_of = [rnd.randrange(30) for _ in raw], [rnd.randrange(6) for _ in raw]
    for _ in range(30):
        n = rnd.choice([1, 17, 64, 65, 130, 1000, 2048])
        amask = {a: rnd.getrandbits(n) for a in rnd.sample(range(40), rnd.randrange(30))}
        ls_masks = [rnd.choice([0, (1 << n) - 1, rnd.getrandbits(n), 1 << (n - 1)]) for _ in range(6)]
        candidates = set(rnd.sample(range(80), rnd.randrange(60)))
        want = _rules.fire(candidates, rule_of, ls_of, trees, ls_masks, amask.get)
        assert _rules.fire(candidates, rule_of, ls_of, code, ls_masks, amask.get, flat, n) == want
        for vi in candidates:
            scope = ls_masks[ls_of[vi]]
            assert trees[vi](amask.get, scope) == evaluate_tree(raw[vi], amask, scope)


def _flat_by_atom_lists(tree: Any) -> Any:
    """flat_tree as first written: each ``and`` sorted by its arguments' atom_ids lists."""
    if isinstance(tree, bool | int):
        return tree
    op, args = tree[0], tree[1:]
    if op == "or" and len(args) > bitsets._WIDE and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        return frozenset(args)
    if op == "and":
        args = sorted(args, key=lambda arg: len(atom_ids(arg)))
    return (bitsets._OPS[op], *(_flat_by_atom_lists(arg) for arg in args))


@pytest.mark.parametrize("seed", range(6))
def test_flat_trees_order_an_ands_arguments_by_atom_count(seed: int) -> None:
    # The counts made on the way up give the order the atom lists gave (fewest first, ties in
    # the tree's order), which decides how soon the C walk stops at an empty and.
    rnd = random.Random(seed)
    for _ in range(300):
        tree = _tree(rnd, 0)
        assert flat_tree(tree) == _flat_by_atom_lists(tree), tree


@pytest.mark.parametrize("n", [8, 200])
def test_fire_leaves_rows_that_are_no_plain_int_of_the_batch_to_the_compiled_tree(n: int) -> None:
    # An atom's rows wider than the batch, negative or no int, a scope wider than the batch: the
    # walk refuses that variant and its compiled tree says what the rows are (or raises).
    raw: list[Any] = [["or", 0, ["not", 1]], ["and", 2, 3], 4, ["or", *range(5, 30)]]
    trees, flat = [compile_tree(t) for t in raw], [flat_tree(t) for t in raw]
    calls: list[str] = []

    def logged(vi: int) -> Any:
        def call(get: Any, scope: int) -> int:
            calls.append(f"v{vi}")
            return trees[vi](get, scope)
        return call

    code = [logged(vi) for vi in range(len(raw))]
    full = (1 << n) - 1
    for odd in (1 << (64 * ((n + 63) // 64) + 1), -1, 1.5):
        amask: dict[int, Any] = {0: 3, 1: 5, 2: odd, 3: full, 4: 6, 7: odd}
        calls.clear()
        try:
            want = _rules.fire({0, 1, 2, 3}, [0, 1, 2, 3], [0, 0, 0, 0], trees, [full], amask.get)
        except TypeError:  # (a float's rows: the compiled tree raises, and so does the call)
            with pytest.raises(TypeError):
                _rules.fire({0, 1, 2, 3}, [0, 1, 2, 3], [0, 0, 0, 0], code, [full], amask.get, flat, n)
            continue
        assert _rules.fire({0, 1, 2, 3}, [0, 1, 2, 3], [0, 0, 0, 0], code, [full], amask.get, flat, n) == want
        assert sorted(calls) == ["v1", "v3"]  # the variants reading atom 2 or 7
    wide, past = {0: 1, 1: 0}, 1 << (64 * ((n + 63) // 64) + 5) | 1  # past the words of n rows
    want = _rules.fire({0}, [0], [0], trees, [past], wide.get)
    calls.clear()
    assert _rules.fire({0}, [0], [0], code, [past], wide.get, flat, n) == want
    assert calls == ["v0"]


def test_fire_flat_refuses_a_get_that_is_no_amask() -> None:
    none: dict[int, int] = {}
    with pytest.raises(TypeError):
        _rules.fire({0}, [0], [0], [compile_tree(1)], [1], lambda a, d: d, [flat_tree(1)], 1)
    with pytest.raises(TypeError):
        _rules.fire({0}, [0], [0], [compile_tree(1)], [1], none.get, (1,), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # flat trees without the batch's rows
        _rules.fire({0}, [0], [0], [compile_tree(1)], [1], none.get, [flat_tree(1)])
    with pytest.raises(ValueError):
        flat_tree(["xor", 1, 2])


def test_fire_refuses_what_is_not_the_packs() -> None:
    def raising(get: Any, scope: int) -> int:
        raise ZeroDivisionError("tree")

    none: dict[int, int] = {}

    with pytest.raises(IndexError):
        _rules.fire({5}, [0], [0], [raising], [1], none.get)
    with pytest.raises(IndexError):
        _rules.fire({0}, [0], [3], [raising], [1], none.get)
    with pytest.raises(ZeroDivisionError):
        _rules.fire({0}, [0], [0], [raising], [1], none.get)
    with pytest.raises(TypeError):
        _rules.fire({"0"},  # type: ignore[arg-type]
                    [0], [0], [raising], [1], none.get)
    assert _rules.fire({0}, [0], [0], [raising], [0], none.get) == {}  # no rows: the tree is not called
    assert _rules.amask() == {}


def test_the_batch_calls_refuse_wrong_arguments() -> None:
    # (their arguments are checked by hand, as PyArg_ParseTuple's "O!" would)
    amask: dict[int, int] = {}
    calls: list[tuple[Any, tuple[Any, ...]]] = [
        (_rules.fold_many, ([], [], 0, None, {}, [], amask)),
        (_rules.heads, ([], (), (), {}, amask, [])),
        (_rules.triggered, ({}, amask, set())),
        (_rules.fire, (set(), [], [], [], [], amask.get)),
        (_rules.events_of, ([], (EndpointEvent,))),
    ]
    for call, args in calls:
        call(*args)  # (the right ones pass)
        with pytest.raises(TypeError):
            call(*args[:-1])
        with pytest.raises(TypeError):  # (past every optional argument: fire takes two)
            call(*args, None, None, None)
        for i, arg in enumerate(args):
            if not callable(arg) and arg is not None and not isinstance(arg, int | frozenset):
                with pytest.raises(TypeError):
                    call(*args[:i], 3.5, *args[i + 1:])
    with pytest.raises(TypeError):
        _rules.fold_many([], [], "0", None, {}, [], amask)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        _rules.fold_many([], [], 2**70, None, {}, [], amask)


@pytest.mark.parametrize("seed", range(8))
def test_pairs_equal_the_python_grouping(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.choice([1, 17, 64, 65, 300])
    events = _events(rnd, n)
    heads = Heads(("Channel", "EventID"), {}, None, [])  # type: ignore[arg-type]
    bits = [1 << r for r in range(n)]
    assert _rules.pairs(events, heads.attrs, heads.type_tuples) == heads._rows(events, bits)
    # True == 1 would join the rows of event code 1: neither path groups such a batch.
    events[rnd.randrange(n)] = msgspec.structs.replace(events[0], event_code=True)
    assert _rules.pairs(events, heads.attrs, heads.type_tuples) is None
    assert heads._rows(events, bits) is None


def test_fold_refuses_what_the_readers_refuse() -> None:
    events = _events(random.Random(1), 3)
    fields = [ev.fields for ev in events]
    read = native_read("TargetImage")
    assert read is not None
    unhashable = [{"TargetImage": ["x"]}, {}, {}]
    with pytest.raises(TypeError, match="unhashable"):
        _rules.fold(unhashable, events, None, 3, "TargetImage", *read, {}, [], {})
    with pytest.raises(IndexError):
        _rules.fold(fields, events, [5], 3, "TargetImage", *read, {}, [], {})
    with pytest.raises(TypeError):
        _rules.fold(fields[:2], events, None, 3, "TargetImage", *read, {}, [], {})
    with pytest.raises(ValueError):
        _rules.fold(fields, events, None, 4, "TargetImage", *read, {}, [], {})
    with pytest.raises(TypeError):
        short: Any = {"TargetImage": (None, 0)}  # (a read is four items)
        _rules.fold_many(fields, events, 3, None, short, [(1, ("TargetImage",))], {})
    with pytest.raises(TypeError):
        listed: Any = [(1, ["TargetImage"])]  # (names are a tuple)
        _rules.fold_many(fields, events, 3, None, {}, listed, {})
    with pytest.raises(IndexError):  # rows past the batch
        _rules.fold_many(fields, events, 3, None, {"TargetImage": (*read, {}, [])}, [(8, ("TargetImage",))], {})
    bad_rows: tuple[tuple[int, Any], ...] = ((3, -1), (70, -1), (3, 1.0))
    for n, rows in bad_rows:  # rows as no bitset: short and long batches
        many: list[dict[str, str]] = [{}] * n
        with pytest.raises(OverflowError if isinstance(rows, int) else TypeError):
            _rules.fold_many(many, [events[0]] * n, n, None, {"TargetImage": (*read, {}, [])},
                             [(rows, ("TargetImage",))], {})


@pytest.mark.parametrize("seed", range(6))
def test_triggered_equals_the_python_loop(seed: int) -> None:
    rnd = random.Random(seed)
    trees: list[Any] = [["and", rnd.randrange(30), ["or", rnd.randrange(30), rnd.randrange(30)]] for _ in range(40)]
    trees += [["not", 3], True]  # (trees without trigger atoms: always looked at)
    triggers = Triggers(trees)
    for _ in range(20):
        amask = {a: rnd.choice([0, 1, 6, 2**70]) for a in rnd.sample(range(40), rnd.randrange(20))}
        for always in (True, False):
            expected = triggers.of(amask, always)
            assert triggers.of(amask, always, native=_rules) == expected
            assert expected or not any(amask.get(a) for a in triggers.by_atom)
