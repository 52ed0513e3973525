"""The EDR feature sets' column groups in one native pass (edr_batch.Plan, scorer/native/_edr.c
``plan``/``run``) against the Python blocks they are written from (``SCORER_NATIVE=0``): the same
matrix bytes, v1 and v3, on the bundled capture and (marker ``data``) the realistic stream in the
batch sizes the scorer sees, and on generated hostile values; a batch of values the decoder never
makes is refused by the pass and then decided by the Python blocks (the same matrix or the same
error). Without the built module these skip (CI: SCORER_STRICT_SKIPS turns that into a failure)."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec
import numpy as np
import pytest

import scorer.native
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import realistic_templates
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.structs import EndpointEvent, EventKind
from scorer.features import feature_set
from scorer.features.base import F64
from scorer.features.edr_batch import JOIN, RAW, Group, Plan
from tests.support.native import use_native
from tests.support.samples import decoded_edr

_edr: Any = scorer.native.built_module("_edr")
pytestmark = pytest.mark.skipif(_edr is None, reason="scorer.native._edr is not built")
SIZES = (1, 3, 4, 5, 17, 50, 683)  # Texts takes <= 4 rows unfactorised; ~17 an EDR batch at 10k events/s
TEXTS = ["", " ", "\x1f", "a\x1fb\x1f", "C:\\Windows\\System32\\cmd.exe", "c:\\users\\public\\MIMIKATZ.EXE",
         "İSTANBUL.EXE", "ß", "Ωmega.dll", "\ud800", "x" * 3000, "lsass.exe", "C:\\Windows\\System32\\lsass.exe",
         "0x1FFFFF", "0x1410", "%%2313", "0xc000006a", "0x17", "-", "0", "3", "NT AUTHORITY\\SYSTEM", "High",
         "powershell.exe -nop -w hidden -enc " + "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIAA" * 3,
         "cmd.exe /c echo %COMSPEC:~0,1% ^& whoami", "\\\\10.0.0.5\\ADMIN$\\psexesvc.exe", "SeDebugPrivilege",
         "sedebugprivilege\n\t\tSeTcbPrivilege", "S-1-5-32-544", "Domain Admins", "krbtgt", "svc$", "ipc$\\svcctl",
         "<Command>cmd.exe</Command><Hidden>true</Hidden>", "UNKNOWN(00007FF)|dbghelp.dll", "cmd.exe.mui"]
CODES = [1, 3, 7, 8, 10, 11, 12, 22, 4104, 4624, 4625, 4634, 4648, 4656, 4661, 4662, 4663, 4697, 4698, 4703,
         4720, 4728, 4732, 4768, 4769, 4771, 4776, 4798, 5136, 5140, 5145, 7045, 99999, 2**70]
NUMBERS: list[Any] = [None, 2, 3, 10, 53, 443, 8080, 0, -1, 2**64, 2**1100, 3.0, 443.9, -0.0, float("nan"),
                      float("inf"), "443"]
TEXT_ATTRS = ("user", "image", "command_line", "parent_image", "parent_command_line", "target_filename",
              "target_object", "image_loaded", "integrity_level")


def _v3(on: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    use_native(monkeypatch, "1" if on else "0")
    return feature_set(EventKind.EDR, "v3")



def _outcome(fs: Any, batch: list[EndpointEvent]) -> tuple[str, bytes]:
    try:
        return "matrix", fs.transform(batch).tobytes()
    except Exception as e:  # the Python blocks' own error on values the decoder never makes
        return type(e).__name__, b""


def _same(monkeypatch: pytest.MonkeyPatch, batches: list[list[EndpointEvent]]) -> tuple[int, int]:
    """Every batch's v1 and v3 outcome on both paths is the same; how many batches the native pass
    took, and how many have a v3 matrix."""
    sets = {on: (feature_set(EventKind.EDR), _v3(on, monkeypatch)) for on in (False, True)}
    taken = matrices = 0
    for batch in batches:
        outcomes = []
        for on in (False, True):
            use_native(monkeypatch, "1" if on else "0")
            outcomes.append([_outcome(fs, batch) for fs in sets[on]])
        assert outcomes[0] == outcomes[1]
        taken += sets[True][1].plan.sheet(batch) is not None
        matrices += outcomes[0][1][0] == "matrix"
    return taken, matrices


def _batches(events: list[EndpointEvent]) -> list[list[EndpointEvent]]:
    out, lo = [], 0
    for size in SIZES * 3:
        out.append(events[lo:lo + size])
        lo = (lo + size) % max(1, len(events) - size)
    return out


def test_capture_is_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    events = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 6000)
    batches = _batches(events)
    assert _same(monkeypatch, batches) == (len(batches), len(batches))  # every decoded batch in the native pass


@pytest.mark.data
def test_realistic_stream_is_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    events = decoded_edr(realistic_templates(capture, data_dir(), per_kind=3000), 9000)
    batches = _batches(events) + [events[lo:lo + 17] for lo in range(0, len(events), 17)]
    assert _same(monkeypatch, batches) == (len(batches), len(batches))


def _field_names() -> list[str]:
    plan: Plan = feature_set(EventKind.EDR, "v3").plan  # type: ignore[attr-defined]  # an EdrV3Features
    return sorted({name for g in plan.groups for kind, name in g.parts if kind == "f"})


def _hostile(rnd: random.Random, template: EndpointEvent, typed: bool) -> EndpointEvent:
    """An event of the gated codes with hostile texts and numbers of its fields' types (``typed``)
    or, one attribute in a few, of another type."""
    fields = {name: rnd.choice(TEXTS) for name in _field_names() if rnd.random() < 0.4}
    texts: dict[str, Any] = {a: rnd.choice([None, *TEXTS]) for a in TEXT_ATTRS}
    changes: dict[str, Any] = {
        **texts, "fields": fields, "event_code": rnd.choice(CODES), "channel": rnd.choice(TEXTS),
        "provider": rnd.choice(TEXTS), "logon_type": rnd.choice(NUMBERS), "dst_port": rnd.choice(NUMBERS),
        "signed": rnd.choice([None, True, False]), "rule_hits": rnd.choice([(), ("r1",), ("r1", "r2")])}
    if not typed and rnd.random() < 0.2:
        changes[rnd.choice([*TEXT_ATTRS, "channel", "signed", "event_code", "logon_type"])] = rnd.choice(
            [5, 0, False, True, 1.5, b"x", ("a",)])
        if rnd.random() < 0.3:
            changes["fields"] = rnd.choice([{**fields, "TargetImage": 7}, _Fields(fields)])
    if typed:  # the decoder's types: texts, ints within range, bools
        for name in ("logon_type", "dst_port"):
            if not (changes[name] is None or (type(changes[name]) is int and abs(changes[name]) < 2**62)):
                changes[name] = None
    return msgspec.structs.replace(template, **changes)


class _Fields(dict[str, str]):
    """Fields of a dict subclass: the native pass refuses them, the Python blocks read them."""


@pytest.mark.parametrize("typed", [True, False])
def test_hostile_values_are_identical(monkeypatch: pytest.MonkeyPatch, typed: bool) -> None:
    template = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 300)[0]
    rnd = random.Random(16 + typed)
    batches = [[_hostile(rnd, template, typed) for _ in range(rnd.choice(SIZES[:5]))] for _ in range(120)]
    taken, matrices = _same(monkeypatch, batches)
    # Typed (the decoder's types): every batch has its matrix, computed by the pass itself, key
    # parts holding the key separator included (they failed the whole batch until session 14).
    print(f"typed={typed}: {taken} of {len(batches)} batches taken by the pass, {matrices} with a matrix")
    assert taken == matrices == len(batches) if typed else 0 < taken < matrices


def _run(groups: tuple[Group, ...], names: tuple[str, ...], events: list[EndpointEvent]) -> F64:
    sheet = Plan(groups, names).sheet(events)
    assert sheet is not None
    return sheet.out


def test_a_group_of_negative_zeros_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    template = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 300)[0]
    events = [msgspec.structs.replace(template, event_code=c) for c in (1, 2, 1)]
    rows = {1: (-0.0,), 2: (float("nan"),)}
    zeros = Group("a", 1, lambda code: (-0.0,), (("c", ""),), RAW)
    mixed = Group("b", 1, rows.__getitem__, (("c", ""),), RAW)
    out = _run((zeros, mixed), ("a", "b"), events)
    # numpy's put of the rows: a group of -0.0 rows writes nothing (+0.0 stays); one true row writes them all
    assert out[:, 0].tobytes() == np.zeros(3).tobytes()
    assert np.signbit(out[[0, 2], 1]).all() and np.isnan(out[1, 1])


def test_rows_are_cached_by_key_up_to_a_length(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    template = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 300)[0]
    calls: list[str] = []

    def row(key: str) -> tuple[float]:
        calls.append(key)
        return (float(len(key)),)

    plan = Plan((Group("len", 1, row, (("a", "user"),), JOIN),), ("len",))
    short, long = "u" * 1024, "u" * 1025
    for _ in range(2):
        sheet = plan.sheet([msgspec.structs.replace(template, user=u) for u in (short, long, short, None)])
        assert sheet is not None and sheet.out[:, 0].tolist() == [1024.0, 1025.0, 1024.0, 0.0]
    assert calls == [short, long, long]  # once per batch at most; a long key's row is not kept


def test_events_of_another_type_are_refused_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    template = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 300)[0]
    fs = _v3(True, monkeypatch)

    class Other(EndpointEvent, frozen=True, kw_only=True):  # a subclass: the blocks take exactly EndpointEvent
        pass                                                  # (or the decoder's EndpointRow)

    other = Other(**{f: getattr(template, f) for f in template.__struct_fields__})
    assert fs.plan.sheet([template, other]) is None
    with pytest.raises(TypeError, match=r"EdrFeatures\.transform takes EndpointEvent or EndpointRow events only"):
        fs.transform([template, other])


def test_a_malformed_plan_is_refused() -> None:
    attrs = ("event_code", "fields")
    with pytest.raises(ValueError):
        _edr.plan([(0, 1, 0, 0, -1, 9, -1, "", len, None, 0.0, (("a", 2, "user"),))], attrs, 0, EndpointEvent)
    with pytest.raises(ValueError):  # a part naming an attribute the plan does not list
        _edr.plan([(0, 1, 0, 0, -1, 0, -1, "", len, None, 0.0, (("a", 5, "user"),))], attrs, 0, EndpointEvent)
    plan = _edr.plan([(3, 1, 0, 0, -1, 0, -1, "", len, None, 0.0, (("a", 2, "user"),))],
                     ("event_code", "fields", "user"), 0, EndpointEvent)
    with pytest.raises(ValueError):  # its columns outside the matrix
        _edr.run(plan, [], np.zeros((0, 2)))


async def test_a_field_holding_the_key_separator_is_scored_with_its_batch() -> None:
    """The shipped EDR model (feature set v3) and rule pack, in process: a logon whose package
    name holds the composite keys' separator (JSON carries any control character) is scored
    with the rest of its batch. Until session 14 its row function raised, failing the batch:
    the batch was then scored record by record and that event dead-lettered unscored."""
    from scorer.config import InferenceSettings, Settings
    from scorer.pipeline.source import input_record
    from scorer.service.build import build_scorer
    from tests.support.paths import MODEL_REPOSITORY

    scorer = build_scorer(Settings(kinds=(EventKind.EDR,), inference=InferenceSettings(
        backend="onnxruntime", model_repository=MODEL_REPOSITORY)))
    assert scorer.runtimes[EventKind.EDR].card.feature_set == "v3"
    edr = [v for kind, _, v in payloads(templates(bundled_capture(), tuple(EventKind)), 6000) if kind is EventKind.EDR]
    values = edr[:40]
    logon = next(json.loads(v) for v in edr if json.loads(v)["event_code"] == 4624)
    logon["fields"]["AuthenticationPackageName"] = "NTLM\x1fKerberos\x1f"
    values.append(json.dumps(logon).encode())
    records = [input_record(EventKind.EDR, v, None, "edr", 0, i) for i, v in enumerate(values)]
    outcome = await scorer.score(records)
    assert outcome.failures == [] and outcome.dead_letters == []
    assert sum(outcome.scored.values()) == len(records)


def _copy(value: Any) -> Any:
    """An equal value that is another object (the decoder makes a new one per event)."""
    if isinstance(value, str) and value:
        return "".join(list(value))
    if type(value) is int:
        return int(str(value))
    if type(value) is float:
        return float(repr(value)) if value == value else float("nan")
    if isinstance(value, dict) and not isinstance(value, _Fields):
        return {_copy(k): _copy(v) for k, v in value.items()}
    return value


# Values equal to another of another type (or bits): a key of one must not stand for the other.
_LOOKALIKES: list[tuple[Any, Any]] = [(1, True), (0, False), (1, 1.0), (0.0, -0.0), (443, 443.0), ("1", 1)]


@pytest.mark.parametrize("typed", [True, False])
def test_runs_of_repeated_parts_are_identical(monkeypatch: pytest.MonkeyPatch, typed: bool) -> None:
    """Events that repeat the one before (equal values, new objects) in some attributes and fields,
    or hold a look-alike of its value (1 and True, 0.0 and -0.0): the pass that shares a key between
    events of equal parts gives the reference's matrix or refusal."""
    template = decoded_edr(templates(bundled_capture(), tuple(EventKind)), 300)[0]
    rnd = random.Random(61 + typed)
    batches = []
    for _ in range(150):
        batch = [_hostile(rnd, template, typed)]
        for _ in range(rnd.choice(SIZES[:5]) - 1):
            before = batch[-1]
            event = _hostile(rnd, template, typed) if rnd.random() < 0.2 else before
            keep = {name: _copy(getattr(before, name)) for name in (*TEXT_ATTRS, "fields", "event_code", "channel",
                                                                    "provider", "logon_type", "dst_port", "signed")
                    if rnd.random() < 0.8}
            if rnd.random() < 0.3:
                name = rnd.choice(["logon_type", "dst_port", "signed", "event_code", "user"])
                old, new = rnd.choice(_LOOKALIKES)
                keep[name] = new if getattr(before, name) == old else old
                if typed and (name not in ("logon_type", "dst_port") or type(keep[name]) is not int):
                    keep.pop(name)
            batch.append(msgspec.structs.replace(event, **keep))
        batches.append(batch)
    taken, matrices = _same(monkeypatch, batches)
    assert taken == matrices == len(batches) if typed else 0 < taken <= matrices
