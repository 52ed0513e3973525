"""Logsources per (Channel, EventID) pair (scorer.rules.heads) give the rows the engine's field by
field path gives: on the bundled capture, hostile batches and random packs of random logsource
and detection trees, in batches of many sizes, with the native passes and without."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from scorer.bench.loadgen import templates
from scorer.demo import bundled_capture
from scorer.events.structs import EndpointEvent, EventKind
from scorer.rules import RuleEngine
from scorer.rules.heads import MAX_PAIRS
from scorer.rules.model import Atom, RuleMeta, Tree
from tests.native.test_edr import _hostile
from tests.rules.helpers import SHIPPED, SYSMON, security, sysmon
from tests.support.native import use_native
from tests.support.samples import decoded_edr

SIZES = [1, 2, 7, 17, 50, 64, 65, 200]


def _results(engine: RuleEngine, events: list[EndpointEvent], heads: bool) -> list[Any]:
    engine.heads.usable = heads and bool(engine.heads.attrs)
    out, lo, sizes = [], 0, iter(SIZES * len(events))
    while lo < len(events):
        size = next(sizes)
        result = engine.evaluate(events[lo:lo + size])
        out.append((result.hits, sorted(result.errors.items())))
        lo += size
    return out


def _same(monkeypatch: pytest.MonkeyPatch, engine: RuleEngine, events: list[EndpointEvent]) -> int:
    """Hits and failures with the pairs and without, native and Python; rows that fired."""
    runs = []
    for native in ("0", "1"):
        use_native(monkeypatch, native)
        for heads in (False, True):
            runs.append(_results(engine, events, heads))
    assert all(run == runs[0] for run in runs[1:])
    return sum(1 for hits, _ in runs[0] for h in hits if h)


@pytest.fixture(scope="module")
def shipped() -> RuleEngine:
    return RuleEngine.load(SHIPPED)


def test_the_capture_fires_the_same_rules(monkeypatch: pytest.MonkeyPatch, shipped: RuleEngine) -> None:
    assert shipped.heads.usable  # the shipped pack's logsources read Channel and EventID only
    events = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 2500)
    assert _same(monkeypatch, shipped, events) > 5  # (rows that fired: the comparison covers hits)


def test_hostile_batches_fire_the_same_rules(monkeypatch: pytest.MonkeyPatch, shipped: RuleEngine) -> None:
    rows = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 1500)
    events = _hostile(rows, 7)
    rnd = random.Random(7)
    for i in rnd.sample(range(len(events)), 40):  # channels and codes no pack names, and none
        events[i] = msgspec.structs.replace(events[i], channel=rnd.choice(["", "İ", "security", "x" * 600]),
                                            event_code=rnd.choice([0, -1, 2**40, 4688]))
    _same(monkeypatch, shipped, events)
    events[3] = msgspec.structs.replace(events[3], event_code=True)  # True == 1: the field by field path
    _same(monkeypatch, shipped, events[:60])


def _meta(number: int) -> RuleMeta:
    return RuleMeta(id=f"r{number}", title=f"rule {number}", level="high", status="test", author="", date="",
                    file=f"r{number}.yml", tags=(), tactics=(), techniques=(), kind="detection",
                    logsource="windows/test")


CHANNELS = ["security", SYSMON.lower(), "windows powershell"]
CODES = ["1", "4688", "4624", "10"]
# Head atoms (ids 0..), then detection atoms.
HEAD = [Atom("Channel", "eq", c) for c in CHANNELS] + [Atom("EventID", "eq", c) for c in CODES] + [
    Atom("Channel", "null", ""), Atom("EventID", "re", "^46"), Atom("Channel", "contains", "sysmon")]
DETECTION = [Atom("Image", "endswith", "\\cmd.exe"), Atom("Image", "contains", "power"),
             Atom("CommandLine", "contains", "-enc"), Atom("User", "eq", "system"), Atom("Image", "exists", ""),
             Atom("TargetImage", "endswith", "lsass.exe")]


def _tree(rnd: random.Random, atoms: range, depth: int) -> Tree:
    if depth == 0 or rnd.random() < 0.35:
        return rnd.choice(atoms) if rnd.random() > 0.03 else rnd.choice([True, False])
    op = rnd.choice(["and", "or", "not"])
    if op == "not":
        return ["not", _tree(rnd, atoms, depth - 1)]
    return [op, *(_tree(rnd, atoms, depth - 1) for _ in range(rnd.randrange(1, 4)))]


def _events(rnd: random.Random, n: int) -> list[EndpointEvent]:
    images = ["C:\\Windows\\System32\\cmd.exe", "C:\\x\\powershell.exe", "C:\\a\\b.exe"]
    out = []
    for _ in range(n):
        code = int(rnd.choice([*CODES, "7"]))
        data = {"Image": rnd.choice(images), "CommandLine": rnd.choice(["a -enc b", "b"]), "User": "SYSTEM",
                "TargetImage": rnd.choice(["C:\\lsass.exe", "x"])}
        ev = sysmon(code, **data) if rnd.random() < 0.5 else security(code, NewProcessName=data["Image"])
        if rnd.random() < 0.1:
            ev = msgspec.structs.replace(ev, channel=rnd.choice(["", "Windows PowerShell"]))
        out.append(ev)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_random_packs_fire_the_same_rules(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rnd = random.Random(seed)
    heads, dets = range(len(HEAD)), range(len(HEAD), len(HEAD) + len(DETECTION))
    conditions = []
    for _ in range(30):
        variants = []
        for _ in range(rnd.randrange(1, 3)):
            det = _tree(rnd, dets, 3)
            if rnd.random() < 0.2:  # a detection naming the head fields too
                det = ["and", det, rnd.choice(heads)]
            variants.append((_tree(rnd, heads, 3), det))
        conditions.append(variants)
    engine = RuleEngine([_meta(i) for i in range(30)], HEAD + DETECTION, conditions)
    _same(monkeypatch, engine, _events(rnd, 300))


def test_pairs_are_forgotten_past_the_bound(shipped: RuleEngine) -> None:
    events = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 50)
    shipped.heads.usable = True
    shipped.heads.cache.clear()
    first = shipped.evaluate(events).hits
    pairs = len(shipped.heads.cache)
    assert 0 < pairs < 50
    shipped.heads.cache.clear()
    shipped.heads.cache.update({("x", i): ((), ()) for i in range(MAX_PAIRS)})
    assert shipped.evaluate(events).hits == first  # the first new pair cleared them all
    assert len(shipped.heads.cache) == pairs
