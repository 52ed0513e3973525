"""The rules stage inside BatchScorer: hits reach the finding, high/critical rules alert on
their own, a rule that raises isolates its event as a dead letter naming the rule.

A small fake engine stands in for the compiled pack here (unit level); the real engine and
the shipped pack are exercised in tests/rules and tests/pipeline/test_rules_kafka.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from scorer.events import EventKind
from scorer.events.structs import EndpointEvent, Event
from scorer.inference.base import ModelRef
from scorer.inference.repository import ModelCard
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.deadletter import header_dict
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from scorer.rules import RuleFailure, RuleHits, RuleMeta
from scorer.rules.annotate import RuleStage
from tests.support import ocsf_schema
from tests.support.pipeline import FakeBackend


def meta(rule_id: str, level: str, tactic: str = "execution") -> RuleMeta:
    return RuleMeta(
        id=rule_id, title=f"Rule {rule_id}", level=level, status="test", author="Jane Analyst",
        date="2026-01-01", file=f"rules/windows/{rule_id}.yml", tags=(f"attack.{tactic}", "attack.t1059.001"),
        tactics=(tactic,), techniques=("T1059.001",), kind="detection", logsource="windows/process_creation",
    )


RULES = (meta("r-low", "low", "discovery"), meta("r-high", "high", "credential_access"), meta("r-crit", "critical"))


class KeywordEngine:
    """Fires rule k on an event whose command line holds the word ``fire<k>``; raises on
    an event whose command line holds ``boom`` (what a misbehaving rule does)."""

    rules = RULES

    def evaluate(self, events: Sequence[EndpointEvent]) -> RuleHits:
        hits: list[tuple[int, ...]] = []
        errors: dict[int, RuleFailure] = {}
        for i, e in enumerate(events):
            cmd = e.command_line or ""
            if "boom" in cmd:
                errors[i] = RuleFailure("r-high", "regex budget exceeded")
                hits.append(())
            else:
                hits.append(tuple(k for k in range(len(RULES)) if f"fire{k}" in cmd))
        return RuleHits(hits=hits, errors=errors)


class HitCountFeatures:
    kind = EventKind.EDR
    names: tuple[str, ...] = ("rule_hits",)

    def transform(self, events: Sequence[Event]) -> npt.NDArray[np.float32]:
        return np.array([[len(e.rule_hits)] for e in events if isinstance(e, EndpointEvent)], np.float32)


class NeverAlarmed(FakeBackend):
    """A model that never passes its threshold, nor the per-host risk policy's model floor
    (scorer.rules.risk): alerts below come from rules alone."""

    async def infer(self, model: ModelRef, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.full(len(features), 0.01, np.float32)


CARD = ModelCard(name="edr_classifier", kind="edr", version="7", feature_names=["rule_hits"], threshold=0.5,
                 severity_cutoffs={"High": 0.9})


def edr(i: int, cmd: str) -> bytes:
    return json.dumps({"uid": f"e{i}", "ts": 1700000000 + i, "host": "ws1", "event_code": 1,
                       "channel": "Microsoft-Windows-Sysmon/Operational", "image": "C:\\x.exe",
                       "command_line": cmd}).encode()


@pytest.mark.data  # the OCSF schema the findings are checked against
async def test_rules_reach_features_alerts_findings_and_dead_letters() -> None:
    stage = RuleStage(KeywordEngine(), "sigma_test", "3", {r.id: r for r in RULES})  # type: ignore[arg-type]
    rt = KindRuntime.build(EventKind.EDR, HitCountFeatures(), CARD, stage)
    scorer = BatchScorer({EventKind.EDR: rt}, NeverAlarmed())
    values = [edr(0, "quiet"), edr(1, "fire0"), edr(2, "fire0 fire1"), edr(3, "boom"), edr(4, "fire2")]
    records = [input_record(EventKind.EDR, v, None, "events.edr", 0, i) for i, v in enumerate(values)]
    out = await scorer.score(records)

    assert out.scored == {("edr", "fake"): 4}
    (dead,) = out.dead_letters
    headers = header_dict(dead.headers)
    assert headers["reason"] == "rule_error" and "r-high" in headers["message"]
    assert headers["offset"] == "3"
    assert out.rule_hits == {"low": 2, "high": 1, "critical": 1}
    # Only the events with a high or critical rule alert (the model never does here).
    findings = [msgspec.json.decode(a.value) for a in out.alerts]
    assert [f["unmapped"]["scorer"]["event_uid"] for f in findings] == ["e2", "e4"]
    high, crit = findings
    assert high["severity"] == "High" and crit["severity"] == "Critical"
    assert high["unmapped"]["scorer"]["raised_by"] == "rules"
    # Every rule that fired, the most severe first; the title is the top rule's.
    assert [a["uid"] for a in high["finding_info"]["related_analytics"]] == ["r-high", "r-low"]
    assert high["finding_info"]["title"] == "Rule r-high"
    assert {a["type_id"] for a in high["finding_info"]["related_analytics"]} == {1}
    assert high["finding_info"]["analytic"]["uid"] == "edr_classifier:7"  # the model stays the analytic
    assert {a["tactic"]["uid"] for a in high["finding_info"]["attacks"]} == {"TA0006", "TA0007"}
    rules = high["unmapped"]["scorer"]["rules"]
    assert rules[0]["author"] == "Jane Analyst" and rules[0]["techniques"] == ["T1059.001"]
    assert high["unmapped"]["scorer"]["rule_pack"] == "sigma_test:3"
    assert high["evidences"][0]["data"]["rule_hits"] == ["r-low", "r-high"]
    assert high["evidences"][0]["process"]["file"]["path"] == "C:\\x.exe" and high["device"]["hostname"] == "ws1"
    for f in findings:
        DetectionFinding.model_validate(f)
    ocsf_schema.assert_valid(findings)


@pytest.mark.data
async def test_model_alert_without_rules_keeps_its_shape() -> None:
    stage = RuleStage(KeywordEngine(), "sigma_test", "3", {r.id: r for r in RULES})  # type: ignore[arg-type]

    class Alarmed(NeverAlarmed):
        async def infer(self, model: ModelRef, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            return np.full(len(features), 0.95, np.float32)

    scorer = BatchScorer({EventKind.EDR: KindRuntime.build(EventKind.EDR, HitCountFeatures(), CARD, stage)},
                         Alarmed())
    out = await scorer.score([input_record(EventKind.EDR, edr(0, "quiet"), None, "events.edr", 0, 0),
                              input_record(EventKind.EDR, edr(1, "fire1"), None, "events.edr", 0, 1)])
    quiet, ruled = (msgspec.json.decode(a.value) for a in out.alerts)
    assert quiet["unmapped"]["scorer"]["raised_by"] == "model"
    assert "related_analytics" not in quiet["finding_info"] and "rules" not in quiet["unmapped"]["scorer"]
    assert ruled["unmapped"]["scorer"]["raised_by"] == "model+rules"
    assert ruled["severity"] == "High"  # the model's High and the rule's High
    for f in (quiet, ruled):
        DetectionFinding.model_validate(f)
    ocsf_schema.assert_valid([quiet, ruled])


def test_rule_hits_sent_on_the_wire_are_dropped() -> None:
    from scorer.events.decode import EventDecoder
    from scorer.events.structs import SourceRef

    forged = json.loads(edr(0, "quiet"))
    forged["rule_hits"] = ["r-crit"]
    event = EventDecoder().decode(EventKind.EDR, json.dumps(forged).encode(), SourceRef("t", 0, 0))
    assert isinstance(event, EndpointEvent) and event.rule_hits == ()
