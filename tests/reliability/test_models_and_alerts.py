"""Models and alerts as attack surface.

- A model file that does not match its SHA256SUMS (or a version without SHA256SUMS) is
  refused when `scorer run` starts, with an error that names the file; with the Triton
  backend, the local Triton launcher leaves that version out of what Triton loads too.
- Alert text is escaped: an EDR event whose command line carries newlines, NULs, ANSI/VT
  escapes (7- and 8-bit), DEL, U+2028/2029 and a JSON fragment yields alerts that are one
  valid JSON document each, with no raw control character in their bytes, a display text
  (finding_info.desc) free of control characters even after decoding, and the original
  command line intact as evidence once decoded.

Reproduce: pytest -s tests/reliability/test_models_and_alerts.py
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import msgspec
import pytest

from scorer.events.structs import EventKind
from scorer.inference.repository import CARD, CHECKSUMS, MODEL_FILE, list_versions, write_checksums
from tests.support.faults import (
    ScorerProcess,
    new_topics,
    plaintext,
    read_topics,
    running_scorer,
    scorer_env,
    stopped_on_exit,
    usable_kinds,
)
from tests.support.faults.refusal import triton_refusing
from tests.support.kafka import KafkaBroker
from tests.support.samples import edr_sample
from tests.support.triton import StartTriton

CRAFTED = (
    'cmd.exe /c "whoami"\n2026-01-01T00:00:00Z INFO forged log line\r\n'
    "\x00NUL\x1b[31mRED\x1b[0m\x1b]0;pwned\x07\x9b2J\x7f\u2028\u2029"
    '", "severity": "Informational", "injected": {"x": 1}, "y": "'
)
# Raw bytes that must never reach a downstream reader: C0 controls, DEL, C1 (8-bit CSI
# etc.) in UTF-8, and the JS line separators that break JSON embedded in scripts.
RAW_UNSAFE = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def _version_dir(repo: Path, kind: EventKind) -> Path:
    model = repo / f"{kind.value}_classifier"
    return model / list_versions(repo, model.name)[-1]


FLIPPED, NO_SUMS = "flipped byte in model.onnx", "no SHA256SUMS"


@pytest.mark.parametrize(("tamper", "backend"),
                         [(FLIPPED, "onnxruntime"), (NO_SUMS, "onnxruntime"), (FLIPPED, "triton")])
async def test_tampered_model_is_refused_at_start(
    kafka: KafkaBroker, model_repository: Path, tmp_path: Path, tamper: str, backend: str,
    capfd: pytest.CaptureFixture[str], start_triton: StartTriton,
) -> None:
    kind = usable_kinds()[0]
    version = _version_dir(model_repository, kind)
    if tamper == NO_SUMS:
        (version / CHECKSUMS).unlink()
    else:
        data = bytearray((version / MODEL_FILE).read_bytes())
        data[len(data) // 2] ^= 0x01  # one bit: what a bad disk, a bad copy or an attacker does
        (version / MODEL_FILE).write_bytes(bytes(data))
    topics = await new_topics(kafka)
    env = scorer_env(kafka.bootstrap, topics, SCORER_INFERENCE__MODEL_REPOSITORY=str(model_repository))
    with contextlib.ExitStack() as stack:
        if backend == "triton":
            server = triton_refusing(stack, start_triton, model_repository, tmp_path / "triton", capfd, kind,
                                     str(version), "does not match recorded")
            env.update(SCORER_INFERENCE__BACKEND="triton", SCORER_INFERENCE__TRITON_URL=server.grpc_url)
        proc = ScorerProcess(env, tmp_path / "scorer.log")
        with stopped_on_exit(proc):
            proc.start()
            assert proc.proc is not None
            rc = proc.proc.wait(60)
    error = [line for line in proc.log.read_text().splitlines() if line.startswith("scorer:")]
    print(f"\n{tamper} ({backend}): rc={rc}: {error}")
    assert rc == 2
    assert error and str(version) in error[0]
    assert ("does not match recorded" if tamper != NO_SUMS else "refusing an unverified model") in error[0]



def _alert_everything(repo: Path) -> None:
    """Threshold 0 for the EDR model so every crafted event raises an alert; checksums are
    rewritten, as the model tooling would after an edit (the scorer verifies them)."""
    version = _version_dir(repo, EventKind.EDR)
    card = json.loads((version / CARD).read_text())
    card["threshold"] = 0.0
    (version / CARD).write_text(json.dumps(card))
    write_checksums(version)


def _crafted_events() -> list[tuple[str, bytes]]:
    """The crafted command line in each EDR form a producer may send: OTRF flat JSON,
    Event XML rendered as JSON, and the canonical struct."""
    otrf = next(json.loads(v) for _, _, v in edr_sample() if b'"EventID"' in v and b'"Event"' not in v)
    xml = next(json.loads(v) for _, _, v in edr_sample() if b'"CommandLine"' in v and b'"Event"' in v)
    otrf.update(uid="crafted-otrf", EventID=1, CommandLine=CRAFTED, Image="C:\\x\\evil\x1b[8m.exe\n")
    xml["uid"] = "crafted-xml"
    xml["Event"]["EventData"].update(CommandLine=CRAFTED, Image="C:\\x\\evil\x9b8m.exe\u2028")
    canonical = {"uid": "crafted-canonical", "ts": 1.7e9, "host": "h\x1b[2Jost\n", "event_code": 1,
                 "image": "C:\\x\\evil.exe\x00", "command_line": CRAFTED}
    return [(str(d["uid"]), json.dumps(d).encode()) for d in (otrf, xml, canonical)]


def _controls(text: str) -> list[str]:
    return [hex(ord(c)) for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]


@pytest.mark.data
async def test_crafted_command_line_cannot_inject_into_alert_consumers(
    kafka: KafkaBroker, model_repository: Path, tmp_path: Path
) -> None:
    if EventKind.EDR not in usable_kinds():
        pytest.skip("the EDR model is being republished (feature contract in flux)")
    _alert_everything(model_repository)
    topics = await new_topics(kafka, [EventKind.EDR])
    events = _crafted_events()
    env = scorer_env(kafka.bootstrap, topics, SCORER_INFERENCE__MODEL_REPOSITORY=str(model_repository))
    async with running_scorer(env, tmp_path / "scorer.log") as proc:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        for uid, value in events:
            await producer.send_and_wait(topics.input(EventKind.EDR), value, key=uid.encode())
        await producer.stop()
        alerts_topic = topics.alerts(EventKind.EDR)
        got = await read_topics(plaintext(kafka), [alerts_topic, topics.dlq],
                                lambda r: len(r) >= len(events), timeout=60)
        rc = proc.stop()
    assert rc == 0
    assert [m.topic for m in got] == [alerts_topic] * len(events), "a crafted event was not alerted"
    for m in got:
        raw: bytes = m.value
        assert not RAW_UNSAFE.search(raw), f"raw control bytes in alert: {RAW_UNSAFE.findall(raw)[:5]}"
        finding: dict[str, Any] = msgspec.json.decode(raw)  # strict: one valid JSON document
        uid = finding["unmapped"]["scorer"]["event_uid"]
        assert "injected" not in finding and "injected" not in finding["unmapped"]["scorer"]
        assert finding["evidences"][0]["process"]["cmd_line"] == CRAFTED  # kept exactly, escaped in JSON
        assert not _controls(finding["finding_info"]["desc"]), finding["finding_info"]["desc"]
        print(f"\n{uid}: {len(raw)} bytes, valid JSON, no raw control bytes; desc: {finding['finding_info']['desc']}")
