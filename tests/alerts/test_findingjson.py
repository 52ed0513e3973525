"""Findings written by scorer.native._findings (scorer.alerts.findingjson) are, byte for byte,
those of the reference (scorer.alerts.ocsf's structs, encoded): on every alert of the bundled
capture scored by the service's BatchScorer, on hostile events and decisions, and on flows
whose statistics the C code rewrites from the record's JSON."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from typing import Any

import msgspec
import pytest

from scorer.alerts.decide import Decision
from scorer.alerts.findingjson import finding_writer
from scorer.alerts.ocsf import detection_finding, encode
from scorer.bench.loadgen import payloads, templates
from scorer.config import Settings
from scorer.demo import bundled_capture
from scorer.events.columnar import decode_rows, expand
from scorer.events.decode import EventDecoder
from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert, entity_key
from scorer.native import findings
from scorer.pipeline.records import InputRecord, OutputRecord
from scorer.pipeline.source import input_record
from scorer.rules import RuleMeta
from scorer.service.build import build_scorer
from tests.support.native import use_native

needs_c = pytest.mark.skipif(not findings.built(), reason="scorer.native._findings is not built")
_TIMES = re.compile(rb'"(time|processed_time)":\d+,')


def _alerts(records: list[InputRecord], batch: int) -> list[OutputRecord]:
    scorer = build_scorer(Settings(inference={"backend": "onnxruntime"}))  # type: ignore[arg-type]

    async def run() -> list[OutputRecord]:
        out: list[OutputRecord] = []
        for i in range(0, len(records), batch):
            out += (await scorer.score(records[i : i + batch])).alerts
        return out

    return asyncio.run(run())


@needs_c
def test_every_alert_of_the_capture_is_the_reference_s(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [input_record(kind, value, key, f"events.{kind.value}", 0, i)
               for i, (kind, key, value) in enumerate(payloads(templates(bundled_capture(), tuple(EventKind)), 9000))]
    with monkeypatch.context() as m:
        use_native(m, "0")
        reference = _alerts(records, 700)
    use_native(monkeypatch, "1")
    written = _alerts(records, 700)
    assert {a.topic for a in written} == {f"alerts.{k.value}" for k in EventKind}
    assert len(written) == len(reference) > 2000
    for new, old in zip(written, reference, strict=True):
        assert (new.topic, new.key) == (old.topic, old.key)
        assert _TIMES.sub(b"", new.value) == _TIMES.sub(b"", old.value)


RULES = tuple(
    RuleMeta(id=f"r{i}", title=title, level=level, status="test", author=author, date="2024-01-01",
             file=f"r{i}.yml", tags=("attack.execution",), tactics=tactics, techniques=("T1059",),
             kind="detection", logsource="windows/process_creation")
    for i, (title, level, author, tactics) in enumerate([
        ("Suspicious cmd", "high", "A. Analyst", ("execution",)),
        ("Title with \x1b[31m and \u2028 and \"quotes\" \\", "critical", "", ("execution", "nonsense")),
        ("Ünïcödé ® ☃ 😀", "medium", "Ø", ()),
        ("fourth", "low", "x", ("impact",)),
    ])
)

HOSTILE: list[Event] = [
    FlowRecord(uid="h1", ts=1.7e9, src_ip="1.1.1.1\n{\"injected\": true}", src_port=-1, dst_ip="01.2.3.4",
               dst_port=70_000, proto="", extra={"Flow Duration": 1e-7, "x\u2028": -0.0}),
    FlowRecord(uid="", ts=1e300, src_ip="", dst_ip="::ffff:1.2.3.4 ", dst_port=65_535, proto="\u2028\x1b[31m"),
    EndpointEvent(uid="h3", ts=1.7e9, host="\x00", event_code=-5, process_id=1 << 40, image="\\",
                  command_line="", parent_image="/", user="\x7f", label="attack"),
    EndpointEvent(uid="h4\x85", ts=-9.3e15, host="", event_code=1, process_id=-1, command_line="x\u0085y"),
    EndpointEvent(uid="h5", ts=-9.3e16, host="WS\u00ae", event_code=(1 << 63) - 1, image="C:\\a\u00ae.exe"),
    SiemAlert(uid="h6", ts=1.7e9, rule_name="\u0085", host="", src_ip="300.1.1.1", dst_ip="1.1.1.1%eth0"),
    SiemAlert(uid="h7\"\\", ts=1.5e-7, rule_name="it's \"x\"\t\r\n", source_system="\ufeff", host="h\x7f",
              severity=-(1 << 62), fields={"a\x00": "b\u2029", "": "\U0001f600"}),
    SiemAlert(uid="h8", ts=float("nan"), rule_name="nan time"),
]

DECISIONS = [
    Decision(0, 0.97, "High", [("log_src_bytes", 13.8, 2.5)], by_model=True, by_rule=True),
    Decision(0, 0.0005, "Low", []),
    Decision(0, 1e-9, "NoSuchLevel", [("", 0.0, 1e-300), ("b\x1b", -0.0, float("inf")), ("c", 1e22, float("nan"))],
             by_model=False, by_rule=True),
    Decision(0, 0.125, "Critical", [("", 1.0, 0.5)]),
    Decision(0, 0.0049999999999999999, "Medium", [("a", 0.693147, 23.540996551513672), ("é", 2.0, 1.5e-5)]),
]


def _reference(kind: EventKind, event: Event, rec: InputRecord, d: Decision, rules: tuple[RuleMeta, ...]) -> bytes:
    return encode(detection_finding(
        kind=kind.value, event=event, decision=d, model_name="m\u00e9", model_version="1\x00", threshold=0.5,
        backend="onnx\"runtime", ref=rec.ref, now_ms=1_700_000_000_000, rules=rules, rule_pack="pack:\u2028",
    ))


_KIND = {FlowRecord: EventKind.NETFLOW, EndpointEvent: EventKind.EDR, SiemAlert: EventKind.SIEM}


@needs_c
@pytest.mark.parametrize("event", HOSTILE)
@pytest.mark.parametrize("decision", DECISIONS)
@pytest.mark.parametrize("n_rules", [0, 1, 4])
def test_hostile_events_decisions_and_rules(
    event: Event, decision: Decision, n_rules: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_native(monkeypatch, "1")
    kind = _KIND[type(event)]
    rules = RULES[:n_rules]
    rec = input_record(kind, msgspec.json.encode(event), None, "events.\u00e9\"", 3, 1 << 40)
    writer = finding_writer(kind, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    ((value, key),) = writer.write([(event, rec)], [decision], lambda e: rules, "pack:\u2028", now_ms=1_700_000_000_000)
    assert key == entity_key(event).encode()
    assert value == _reference(kind, event, rec, decision, rules if isinstance(event, EndpointEvent) else ())
    json.loads(value)  # and the document reads back
    assert b"\x1b" not in value and b"\xe2\x80\xa8" not in value


@needs_c
def test_a_score_that_is_no_number_fails_as_the_reference_does(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")
    event = HOSTILE[-2]
    rec = input_record(EventKind.SIEM, msgspec.json.encode(event), b"k", "events.siem", 0, 1)
    writer = finding_writer(EventKind.SIEM, "m", "1", 0.5, "b")
    for score in (float("nan"), float("inf")):
        d = Decision(0, score, "High", [])
        with pytest.raises((ValueError, OverflowError)):
            _reference(EventKind.SIEM, event, rec, d, ())
        with pytest.raises((ValueError, OverflowError)):
            writer.write([(event, rec)], [d], None, "")


def _flow_json(stats: str | None, **fields: Any) -> bytes:
    base = {"uid": "f1", "ts": 1500570031.816154, "source": "cicflowmeter", "label": "DDoS", "src_ip": "172.16.0.1",
            "src_port": 50122, "dst_ip": "192.168.10.51", "dst_port": 3333, **fields}
    body = json.dumps(base)[:-1]
    return (body + (f', "extra": {stats}' if stats is not None else "") + "}").encode()


FLOWS = [  # (the record, whether its statistics are rewritten rather than the flow decoded whole)
    (_flow_json('{"Flow Duration": 83, "Total Fwd Packet":1.0e5 ,"Fwd IAT Min":-0,"ICMP Code":-0.0}'), True),
    (_flow_json('{"Flow Bytes/s":24096.385542168675,"Flow Packets/s":0.30000000000000004,"Idle Max":1E-5}'), True),
    (_flow_json('{"Flow Duration":12345678901234567890123,"Idle Min":9007199254740993,"ICMP Type":5e-324}'), True),
    (_flow_json('{"Flow Duration":1e299,"Total Fwd Packet":9.99e299,"Idle Min":2.2250738585072014e-308}'), True),
    (_flow_json('{"Total Fwd Packet":1,"Flow Duration":2}'), False),  # out of order
    (_flow_json('{"Flow Bytes\\/s":1.5}'), False),  # an escaped name
    (_flow_json("{}", uid=""), True),
    (_flow_json(None, uid=""), True),
    (_flow_json('{ }', proto="udp"), True),
    (_flow_json('{"Idle Min":7}', zz={"a": [1, {"b": "}\\\"]"}], "extra": "x"}, yy=None), True),  # nested, skipped
    (_flow_json('{"Idle Min":7}', zzA=1).replace(b'"zzA"', b'"zz\\u0041"'), False),  # an escaped key
    (_flow_json('{"Idle Min":7}').replace(b'"uid"', b'"extra": {"Idle Max": 1}, "uid"'), False),  # "extra" twice
]


@needs_c
@pytest.mark.parametrize(("value", "rewritten"), FLOWS)
def test_flows_whose_statistics_are_rewritten_from_their_json(
    value: bytes, rewritten: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_native(monkeypatch, "1")
    answers: list[bool] = []
    split = findings.flow_split

    def counted(record: bytes, names: tuple[bytes, ...]) -> tuple[bytes, bytes | None] | None:
        answer = split(record, names)
        answers.append(answer is not None)
        return answer

    monkeypatch.setattr(findings, "flow_split", counted)
    rows = decode_rows(EventKind.NETFLOW, [value], 1 << 20, views=True)
    assert rows[0] is not None
    rec = input_record(EventKind.NETFLOW, value, None, "events.netflow", 0, 9)
    row = rows[0] if rows[0].uid else msgspec.structs.replace(rows[0], uid="events.netflow:0:9")
    writer = finding_writer(EventKind.NETFLOW, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    for d in DECISIONS[:2]:
        ((got, key),) = writer.write([(row, rec)], [d], None, "", now_ms=1_700_000_000_000)
        event = expand(EventKind.NETFLOW, row, value, rec.ref)
        assert got == _reference(EventKind.NETFLOW, event, rec, d, ())
        assert key == b"172.16.0.1"
    assert answers and all(answers) == rewritten


@pytest.mark.parametrize("native", ["1", "0"] if findings.built() else ["0"])
def test_a_flow_the_view_took_but_the_fast_path_refuses_is_decided_by_the_generic_path(
    native: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Statistics each finite whose sum overflows: the columnar checks take the view, the fast
    # path's decoder refuses the record (sending it to the generic path), and expand() gives
    # the event the per-record decoding gives; its finding is the reference's.
    use_native(monkeypatch, native)
    value = _flow_json('{"Flow Duration":1.7976931348623157e308,"Total Fwd Packet":1.7976931348623157e308}')
    (row,) = decode_rows(EventKind.NETFLOW, [value], 1 << 20, views=True)
    assert row is not None
    rec = input_record(EventKind.NETFLOW, value, None, "events.netflow", 0, 9)
    event = expand(EventKind.NETFLOW, row, value, rec.ref)
    assert event == EventDecoder().decode(EventKind.NETFLOW, value, rec.ref)
    writer = finding_writer(EventKind.NETFLOW, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    ((got, _),) = writer.write([(row, rec)], [DECISIONS[0]], None, "", now_ms=1_700_000_000_000)
    assert got == _reference(EventKind.NETFLOW, event, rec, DECISIONS[0], ())


@needs_c
def test_statistics_rewritten_are_msgspec_s_on_random_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "1")  # the C rewrite under test, whatever SCORER_NATIVE says
    names = tuple(f"k{i}".encode() for i in range(128))
    decode = msgspec.json.Decoder(dict[str, float]).decode
    rng = random.Random(16)
    plain = 0
    for _ in range(4000):
        keys = sorted(rng.sample(range(128), rng.randint(1, 9)))
        raw = ("{" + ",".join(f'"k{i}":{_number(rng)}' for i in keys) + "}").encode()
        got = findings.flow_extra(raw, names)
        if got is not None:
            plain += 1
            assert got == msgspec.json.encode(decode(raw)), raw
    assert plain > 3000
    assert findings.flow_extra(b'{"k2":1,"k1":2}', names) is None  # out of order
    assert findings.flow_extra(b'{"k1":1,"k1":2}', names) is None  # repeated
    assert findings.flow_extra(b'{"k1":"1"}', names) is None  # no number
    assert findings.flow_extra(b'{"k1":1e400}', names) is None  # out of range
    assert findings.flow_extra(b' { } ', names) == b"{}"


def _number(rng: random.Random) -> str:
    """A JSON number of one of the shapes records carry, or an awkward one."""
    shape = rng.random()
    if shape < 0.3:
        x = msgspec.json.decode(msgspec.json.encode(rng.uniform(-1, 1) * 10.0 ** rng.randint(-330, 300)))
        return repr(x) if isinstance(x, float) and math.isfinite(x) else "1"
    if shape < 0.7:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        frac = "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20))) if rng.random() < 0.6 else ""
        exp = rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 320)) if rng.random() < 0.4 else ""
        return rng.choice(["", "-"]) + (digits.lstrip("0") or "0") + frac + exp
    return str(rng.choice(["0", "-0", "-0.0", "0e5", "-0E-5", "0.000", "1e-5", "1.5e-5", "9.999999999999999e15",
                       "1e16", "123456789012345.6", "1234567890123456.7", "1e-307", "1e-308", "5e-324",
                       str(2**53 + 1), str(2**64), str(10**23), "2.2250738585072014e-308"]))


def test_the_switch_follows_scorer_native(monkeypatch: pytest.MonkeyPatch) -> None:
    use_native(monkeypatch, "0")
    assert findings.module() is None and findings.flow_extra(b"{}", ()) is None
    use_native(monkeypatch, "1")
    if findings.built():
        assert findings.module() is not None
    else:
        with pytest.raises(ImportError):
            findings.module()


@needs_c
def test_scores_are_rounded_as_python_rounds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # round(score, 6) and round(score * 100) in C: ties on the exact binary value (k / 2**20
    # has 7+ decimals, some of them exactly halfway), both sides of every boundary, big and tiny.
    use_native(monkeypatch, "1")
    rng = random.Random(25)
    ties = [k / 2**m for m in (7, 8, 20, 26) for k in range(1, 40)]
    near = [math.nextafter(x, d) for x in ties for d in (0.0, 2.0)]
    scores = ties + near + [rng.random() for _ in range(1500)] + [rng.uniform(-2e9, 2e9) for _ in range(100)]
    scores += [0.0, -0.0, 5e-7, -5e-7, 4.9999999999999996e-07, 1e-300, 999999999.9999995, 1e9, 0.9999995]
    event = SiemAlert(uid="s", ts=1.7e9, rule_name="r", host="h")
    rec = input_record(EventKind.SIEM, b"{}", b"k", "events.siem", 0, 1)
    writer = finding_writer(EventKind.SIEM, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    decisions = [Decision(0, s, "High", [("a", s, s)]) for s in scores]
    written = writer.write([(event, rec)], decisions, None, "", now_ms=1_700_000_000_000)
    for d, (value, _) in zip(decisions, written, strict=True):
        assert value == _reference(EventKind.SIEM, event, rec, d, ()), d.score


@needs_c
def test_random_text_is_written_and_escaped_as_the_reference_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every escape msgspec and escape_json write, beside multi-byte text that needs none
    # (\u00ae is C2 AE, \u2026 is E2 80 A6), at every offset of the words the C code reads.
    use_native(monkeypatch, "1")
    rng = random.Random(3)
    pool = [*"ab\"\\/ \t\n\r\x00\x1b\x1f\x7f", "\x80", "\x85", "\x9f", "\xa0", "\u00ae", "\u2026", "\u2028",
            "\u2029", "\u202e", "\ufeff", "\U0001f600", "\x7f\u2028"]
    writer = finding_writer(EventKind.SIEM, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    rec = input_record(EventKind.SIEM, b"{}", b"k", "events.siem", 0, 1)
    for _ in range(300):
        text = [("".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))) for _ in range(4)]
        event = SiemAlert(uid=text[0], ts=1.7e9, rule_name=text[1], host=text[2] or None, fields={text[3]: text[0]})
        d = Decision(0, 0.75, "High", [(text[3], 1.0, 0.5)])
        ((value, _),) = writer.write([(event, rec)], [d], None, "", now_ms=1_700_000_000_000)
        assert value == _reference(EventKind.SIEM, event, rec, d, ()), text


@needs_c
def test_event_times_are_written_as_python_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # original_time is str(ts): msgspec's digits in repr's layout, both sides of every switch
    # between a fixed point and an exponent, and Python's own text for NaN and infinities.
    use_native(monkeypatch, "1")
    rng = random.Random(9)
    times = [1e-5, 1.5e-5, 9.999999999999999e-05, 1e-4, 0.00012, 1e15, 9999999999999998.0, 1e16, 1.5e16, 1e22,
             -1.5e-5, -0.0, 0.0, 5e-324, 1.7976931348623157e308, float("nan"), float("inf"), -float("inf"),
             1500570031.816154, 1972207688.823]
    times += [rng.uniform(-1, 1) * 10.0 ** rng.randint(-12, 30) for _ in range(400)]
    rec = input_record(EventKind.SIEM, b"{}", b"k", "events.siem", 0, 1)
    writer = finding_writer(EventKind.SIEM, "m\u00e9", "1\x00", 0.5, "onnx\"runtime")
    d = Decision(0, 0.75, "High", [("a", 1.0, 0.5)])
    for ts in times:
        event = SiemAlert(uid="u", ts=ts, rule_name="r", host="h")
        ((value, _),) = writer.write([(event, rec)], [d], None, "", now_ms=1_700_000_000_000)
        assert value == _reference(EventKind.SIEM, event, rec, d, ()), ts
