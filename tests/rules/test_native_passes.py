"""The rule engine's C passes (scorer.native._rules) give the rows its Python path gives: random
packs with fieldref atoms (a field equal to another, ignoring case) beside plain atoms on the same
fields, whatever way each side is read (fields only, an attribute, a field then an attribute, a
header attribute made text, the event code), on events with hostile values, in batches of many
sizes."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from scorer.events.structs import EndpointEvent
from scorer.rules import RuleEngine
from scorer.rules.model import Atom, RuleMeta, Tree
from tests.rules.helpers import SYSMON, security, sysmon
from tests.support.native import use_native

SIZES = [1, 2, 7, 17, 50, 64, 65, 130]
HEAD = [Atom("Channel", "eq", SYSMON.lower()), Atom("Channel", "eq", "security"), Atom("EventID", "eq", "1"),
        Atom("EventID", "eq", "4688")]
# Fieldrefs between names read every way (the second name is read as scorer.rules.fields.getter reads it).
REFS = [("Image", "ParentImage"), ("SubjectUserName", "TargetUserName"), ("User", "ParentUser"),
        ("TargetFilename", "Image"), ("NewProcessName", "ParentProcessName"), ("CommandLine", "Computer"),
        ("ParentUser", "User"), ("GrantedAccess", "EventID"), ("Image", "Signed"), ("TargetImage", "LogonType")]
PLAIN = [Atom("Image", "endswith", "\\cmd.exe"), Atom("Image", "null", ""), Atom("User", "eq", "system"),
         Atom("SubjectUserName", "contains", "adm"), Atom("CommandLine", "contains", "-enc"),
         Atom("TargetFilename", "exists", ""), Atom("ParentUser", "null", "")]
ATOMS = HEAD + [Atom(a, "fieldref", b) for a, b in REFS] + PLAIN
VALUES = ["C:\\Windows\\cmd.exe", "c:\\windows\\CMD.EXE", "SYSTEM", "system", "adm1", "ADM1", "", "x -enc y",
          "ws1", "WS1", "İ", "i̇", "true", "3", "1"]


def _meta(number: int) -> RuleMeta:
    return RuleMeta(id=f"r{number}", title=f"rule {number}", level="high", status="test", author="", date="",
                    file=f"r{number}.yml", tags=(), tactics=(), techniques=(), kind="detection",
                    logsource="windows/test")


def _tree(rnd: random.Random, atoms: range, depth: int) -> Tree:
    if depth == 0 or rnd.random() < 0.4:
        return rnd.choice(atoms)
    op = rnd.choice(["and", "or", "or", "not"])
    if op == "not":
        return ["not", _tree(rnd, atoms, depth - 1)]
    return [op, *(_tree(rnd, atoms, depth - 1) for _ in range(rnd.randrange(1, 4)))]


def _events(rnd: random.Random, n: int) -> list[EndpointEvent]:
    names = sorted({name for pair in REFS for name in pair} - {"EventID", "Signed", "LogonType", "Computer"})
    out = []
    for _ in range(n):
        data = {name: rnd.choice(VALUES) for name in names if rnd.random() < 0.5}
        code = rnd.choice([1, 4688])
        ev = sysmon(code, **data) if rnd.random() < 0.6 else security(code, **data)
        ev = msgspec.structs.replace(ev, image=rnd.choice([None, "", *VALUES[:3]]), user=rnd.choice([None, *VALUES]),
                                     host=rnd.choice(VALUES), signed=rnd.choice([None, True, False]),
                                     logon_type=rnd.choice([None, 3]))
        out.append(ev)
    return out


def _results(engine: RuleEngine, events: list[EndpointEvent]) -> list[Any]:
    out, lo, sizes = [], 0, iter(SIZES * len(events))
    while lo < len(events):
        result = engine.evaluate(events[lo:lo + next(sizes)])
        out.append((result.hits, sorted((r, (f.rule_id, f.message)) for r, f in result.errors.items())))
        lo += len(result.hits)
    return out


@pytest.mark.parametrize("seed", range(10))
def test_fieldrefs_fire_the_same_rules_natively(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rnd = random.Random(seed)
    heads, dets = range(len(HEAD)), range(len(HEAD), len(ATOMS))
    conditions = [[(_tree(rnd, heads, 2), _tree(rnd, dets, 3)) for _ in range(rnd.randrange(1, 3))] for _ in range(40)]
    engine = RuleEngine([_meta(i) for i in range(40)], ATOMS, conditions)
    assert all(len(engine.reads[name]) == 5 for name in engine.fieldrefs)  # every fieldref read by the C pass
    events = _events(rnd, 400)
    runs = []
    for native in ("0", "1"):
        use_native(monkeypatch, native)
        runs.append(_results(engine, events))
    assert runs[0] == runs[1]
    assert sum(1 for hits, _ in runs[0] for h in hits if h) > 20


def test_a_fieldref_that_raises_fails_its_rows_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value without ``lower()`` raises in both paths: the batch is evaluated event by event."""
    ref = ATOMS.index(Atom("SubjectUserName", "fieldref", "TargetUserName"))
    engine = RuleEngine([_meta(0)], ATOMS, [[(["or", 0, 1], ref)]])
    events = _events(random.Random(3), 20)
    bad: Any = {"SubjectUserName": "a", "TargetUserName": 5}
    events[4] = msgspec.structs.replace(events[4], fields=bad)
    runs = []
    for native in ("0", "1"):
        use_native(monkeypatch, native)
        runs.append(_results(engine, events))
    assert runs[0] == runs[1]
    assert any(errors for _, errors in runs[0])


@pytest.mark.parametrize("seed", range(6))
def test_heads_in_one_pass_equal_the_python_loop(seed: int) -> None:
    """Heads.masks with scorer.native._rules.heads (the pairs known, or some new) and without."""
    from scorer.native import _rules

    rnd = random.Random(seed)
    heads = range(len(HEAD))
    conditions = [[(_tree(rnd, heads, 2), _tree(rnd, range(len(HEAD), len(ATOMS)), 2))] for _ in range(30)]
    engine = RuleEngine([_meta(i) for i in range(30)], ATOMS, conditions)
    for n in (1, 17, 64, 65, 130):
        events = _events(rnd, n)
        if rnd.random() < 0.3:
            events[0] = msgspec.structs.replace(events[0], event_code=rnd.choice([7, 2**70]), channel="x")
        bits = [1 << r for r in range(n)]
        runs = []
        for k, native in enumerate((None, _rules, _rules)):  # (the second native run finds every pair cached)
            if k == 1:
                engine.heads.cache.clear()
            amask: dict[int, int] = {0: 1}
            ls_masks = [0] * len(engine.ls_code)
            live = engine.heads.masks(events, bits, amask, ls_masks, native)
            runs.append((live, amask, ls_masks))
        assert runs[0] == runs[1] == runs[2]
    engine.heads.cache.clear()
    assert _rules.heads(events, engine.heads.attrs, engine.heads.type_tuples, {}, {}, [0]) == _rules.pairs(
        events, engine.heads.attrs, engine.heads.type_tuples)


def test_variants_compile_only_where_the_c_pass_does_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the C pass, a variant's tree is walked in C (batches of any width) and never compiled:
    compiling a pack's ~4,400 trees was ~1 s of every start. Loaded without it, every tree is
    compiled at load as before; loaded with it and run without, each compiles at its first use."""
    from scorer.rules.compiled_trees import Deferred

    rnd = random.Random(7)
    heads, dets = range(len(HEAD)), range(len(HEAD), len(ATOMS))
    conditions = [[(_tree(rnd, heads, 2), _tree(rnd, dets, 3))] for _ in range(40)]
    metas = [_meta(i) for i in range(40)]
    use_native(monkeypatch, "1")
    engine = RuleEngine(metas, ATOMS, conditions)
    events = _events(rnd, 3000)
    runs = []
    for size in (50, 700, 2048):
        runs.append([engine.evaluate(events[lo:lo + size]).hits for lo in range(0, len(events), size)])
    assert all(type(code) is Deferred and code.code is None for code in engine._code)
    use_native(monkeypatch, "0")
    assert not any(type(code) is Deferred for code in RuleEngine(metas, ATOMS, conditions)._code)
    python = [[engine.evaluate(events[lo:lo + size]).hits for lo in range(0, len(events), size)]
              for size in (50, 700, 2048)]
    assert python == runs
    assert sum(1 for hits in runs[2] for h in hits if h) > 100
    assert any(type(code) is not Deferred for code in engine._code)  # (those the Python path ran, compiled)
