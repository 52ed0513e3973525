"""BatchScorer accounting and OCSF output, with a small fake backend (unit level).

The real backends are exercised in tests/inference and tests/service (marked kafka/triton).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from scorer.errors import InferenceError, ModelError
from scorer.events import EventKind, FlowRecord
from scorer.events.structs import Event
from scorer.inference.base import ModelRef
from scorer.inference.repository import ModelCard
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.deadletter import header_dict
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from tests.support import ocsf_schema
from tests.support.pipeline import FakeBackend


class BytesFeatures:
    kind = EventKind.NETFLOW
    names: tuple[str, ...] = ("log_src_bytes", "dst_port")

    def transform(self, events: Sequence[Event]) -> npt.NDArray[np.float32]:
        rows = []
        for e in events:
            assert isinstance(e, FlowRecord)
            # An absurd byte count becomes inf: the pipeline must dead-letter that row.
            rows.append([np.inf if e.src_bytes > 10**15 else np.log1p(e.src_bytes), e.dst_port])
        return np.asarray(rows, dtype=np.float32).reshape(-1, 2)


class ThresholdBackend(FakeBackend):
    async def infer(self, model: ModelRef, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return (features[:, 0] > 10).astype(np.float32) * 0.97


CARD = ModelCard(
    name="netflow_classifier", kind="netflow", version="3", feature_names=["log_src_bytes", "dst_port"],
    threshold=0.5, severity_cutoffs={"Critical": 0.99, "High": 0.95, "Medium": 0.8},
    explain_weights=[1.0, 0.0], explain_center=[5.0, 0.0], explain_scale=[2.0, 1.0],
)


def flow(i: int, src_bytes: int) -> bytes:
    return json.dumps({"ts": 1700000000 + i, "src_ip": f"10.0.0.{i % 250}", "dst_ip": "10.9.9.9",
                       "dst_port": 443, "src_bytes": src_bytes}).encode()


@pytest.fixture
def scorer() -> BatchScorer:
    rt = KindRuntime.build(EventKind.NETFLOW, BytesFeatures(), CARD)
    return BatchScorer({EventKind.NETFLOW: rt}, ThresholdBackend())


async def test_every_record_is_scored_or_dead_lettered(scorer: BatchScorer) -> None:
    values = [flow(0, 10), flow(1, 10**6), b"{not json", flow(3, 10**16), flow(4, 10**7)]
    records = [input_record(EventKind.NETFLOW, v, b"key", "events.netflow", 0, i) for i, v in enumerate(values)]
    records.append(input_record(None, flow(5, 1), None, "events.other", 0, 0))
    out = await scorer.score(records)
    assert sum(out.consumed.values()) == 6
    assert sum(out.scored.values()) == 3
    assert len(out.dead_letters) == 3
    reasons = sorted(header_dict(d.headers)["reason"] for d in out.dead_letters)
    assert reasons == ["malformed_json", "non_finite_features", "unknown_kind"]
    bad = next(d for d in out.dead_letters if header_dict(d.headers)["reason"] == "malformed_json")
    assert bad.value == b"{not json" and header_dict(bad.headers)["offset"] == "2"
    assert len(out.alerts) == 2


async def test_what_scoring_made_is_freed_with_the_outcome_not_before(scorer: BatchScorer) -> None:
    """The batch's events and matrices go with the outcome (the loop drops it once the outputs
    are handed over): their deallocation is not part of the batch's latency."""
    records = [input_record(EventKind.NETFLOW, flow(i, 10**6), b"key", "events.netflow", 0, i) for i in range(3)]
    out = await scorer.score(records)
    made = weakref.ref(out.spent)
    assert made() is not None
    del out
    assert made() is None


@pytest.mark.data  # the OCSF schema the findings are checked against
async def test_alerts_are_ocsf_detection_findings_linking_their_source(scorer: BatchScorer) -> None:
    rec = input_record(EventKind.NETFLOW, flow(7, 10**6), b"10.0.0.7", "events.netflow", 1, 99)
    out = await scorer.score([rec])
    (alert,) = out.alerts
    assert alert.topic == "alerts.netflow" and alert.key == b"10.0.0.7"
    f = json.loads(alert.value)
    DetectionFinding.model_validate(f)  # OCSF's required fields and types, by another implementation
    assert f["class_uid"] == 2004 and f["category_uid"] == 2 and f["type_uid"] == 200401
    assert f["severity"] == "High" and f["severity_id"] == 4
    assert f["finding_info"]["analytic"]["name"] == "netflow_classifier"
    assert f["finding_info"]["analytic"]["version"] == "3"
    assert f["finding_info"]["related_events"] == [{"uid": "events.netflow:1:99", "type": "netflow"}]
    assert f["evidences"][0]["data"]["src_bytes"] == 10**6
    assert f["unmapped"]["scorer"]["source"] == {"topic": "events.netflow", "partition": 1, "offset": 99}
    assert f["unmapped"]["scorer"]["top_features"][0]["name"] == "log_src_bytes"
    assert f["evidences"][0]["src_endpoint"] == {"ip": "10.0.0.7", "port": 0} and "src_endpoint" not in f
    ocsf_schema.assert_valid([f])


@pytest.mark.data
async def test_control_characters_cannot_break_alert_json(scorer: BatchScorer) -> None:
    value = json.dumps({"ts": 1, "src_ip": "1.1.1.1\n{\"injected\": true}\u0000", "dst_ip": "2.2.2.2",
                        "src_bytes": 10**6}).encode()
    out = await scorer.score([input_record(EventKind.NETFLOW, value, None, "events.netflow", 0, 0)])
    (alert,) = out.alerts
    assert b"\n" not in alert.value and b"\x00" not in alert.value
    evidence = json.loads(alert.value)["evidences"][0]
    # Kept exactly in the event; not an IP, so not in the endpoint (OCSF's ip_t would refuse it).
    assert evidence["data"]["src_ip"].startswith("1.1.1.1\n") and "ip" not in evidence["src_endpoint"]
    ocsf_schema.assert_valid([alert.value])


def test_feature_contract_mismatch_is_refused() -> None:
    card = ModelCard(name="m", kind="netflow", version="1", feature_names=["other"], threshold=0.5)
    with pytest.raises(ModelError, match="feature contract"):
        KindRuntime.build(EventKind.NETFLOW, BytesFeatures(), card)


def test_scores_record_is_json_with_version() -> None:
    # ScoredEvent is what the scores topic carries; eval and shadowing read these names.
    from scorer.pipeline.outcome import ScoredEvent

    raw = msgspec.json.encode(ScoredEvent(EventKind.SIEM, "u1", 0.5, "siem_classifier", "1", "onnxruntime", False))
    assert json.loads(raw) == {"kind": "siem", "uid": "u1", "score": 0.5, "model": "siem_classifier",
                               "version": "1", "backend": "onnxruntime", "alerted": False}


class CountingFeatures(BytesFeatures):
    """Stands for a stateful feature set: counts every row it ever computed."""

    def __init__(self) -> None:
        self.rows_seen = 0

    def transform(self, events: Sequence[Event]) -> npt.NDArray[np.float32]:
        self.rows_seen += len(events)
        return super().transform(events)


class FlakyBackend(ThresholdBackend):
    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def infer(self, model: ModelRef, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self.failures:
            self.failures -= 1
            raise InferenceError("triton is down")
        return await super().infer(model, features)


async def test_a_retried_batch_updates_feature_state_once() -> None:
    features = CountingFeatures()
    scorer = BatchScorer({EventKind.NETFLOW: KindRuntime.build(EventKind.NETFLOW, features, CARD)}, FlakyBackend(2))
    records = [input_record(EventKind.NETFLOW, flow(i, 10**6), None, "events.netflow", 0, i) for i in range(5)]
    for _ in range(2):
        with pytest.raises(InferenceError):
            await scorer.score(records)
    outcome = await scorer.score(records)
    assert features.rows_seen == 5, "features (and entity state) ran once for the batch"
    assert sum(outcome.scored.values()) == 5 and len(outcome.alerts) == 5
    # A different batch is featurised afresh.
    await scorer.score(records[:2])
    assert features.rows_seen == 7


class BrittleFeatures(BytesFeatures):
    """A feature set with a bug no input check foresaw: it raises on one port."""

    def transform(self, events: Sequence[Event]) -> npt.NDArray[np.float32]:
        if any(isinstance(e, FlowRecord) and e.dst_port == 666 for e in events):
            raise ZeroDivisionError("unforeseen")
        return super().transform(events)


async def test_a_record_that_breaks_the_features_is_dead_lettered_and_the_rest_scored() -> None:
    rt = KindRuntime.build(EventKind.NETFLOW, BrittleFeatures(), CARD)
    scorer = BatchScorer({EventKind.NETFLOW: rt}, ThresholdBackend())
    bad = json.dumps({"ts": 1700000000, "src_ip": "10.0.0.1", "dst_ip": "10.9.9.9", "dst_port": 666}).encode()
    records = [input_record(EventKind.NETFLOW, flow(i, 10**6), None, "events.netflow", 0, i) for i in range(4)]
    records.insert(2, input_record(EventKind.NETFLOW, bad, None, "events.netflow", 0, 99))
    outcome = await scorer.score(records)
    assert sum(outcome.scored.values()) == 4
    assert [f.reason for f in outcome.failures] == ["feature_error"]
    assert outcome.failures[0].ref.offset == 99 and "ZeroDivisionError: unforeseen" in outcome.failures[0].message
    assert header_dict(outcome.dead_letters[0].headers)["reason"] == "feature_error"


async def test_a_record_that_breaks_a_later_stage_is_dead_lettered_and_the_rest_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scorer.alerts.findingjson import finding_writer as real
    from scorer.pipeline import decide

    class Brittle:
        """The kind's finding writer, raising on the record at offset 99 (a bug no check foresaw)."""

        def __init__(self, writer: Any) -> None:
            self.writer = writer

        def write(self, items: Any, decisions: Any, *rest: Any) -> Any:
            if any(items[d.row][1].ref.offset == 99 for d in decisions):
                raise KeyError("unforeseen")
            return self.writer.write(items, decisions, *rest)

    monkeypatch.setattr(decide, "finding_writer", lambda *args: Brittle(real(*args)))
    scorer = BatchScorer({EventKind.NETFLOW: KindRuntime.build(EventKind.NETFLOW, BytesFeatures(), CARD)},
                         ThresholdBackend())
    bad = json.dumps({"ts": 1700000000, "src_ip": "10.0.0.1", "dst_ip": "10.9.9.9", "dst_port": 666,
                      "src_bytes": 10**6}).encode()
    records = [input_record(EventKind.NETFLOW, flow(i, 10**6), None, "events.netflow", 0, i) for i in range(4)]
    records.insert(1, input_record(EventKind.NETFLOW, bad, None, "events.netflow", 0, 99))
    outcome = await scorer.score(records)
    assert outcome.consumed == {"netflow": 5}
    assert sum(outcome.scored.values()) == 4 and len(outcome.alerts) == 4
    assert [(f.reason, f.ref.offset) for f in outcome.failures] == [("scoring_error", 99)]
    assert "KeyError" in outcome.failures[0].message
    assert header_dict(outcome.dead_letters[0].headers)["reason"] == "scoring_error"
