"""Per-host risk inside BatchScorer: two distinct medium rules on one host alert together,
as an OCSF Detection Finding on the event that tipped the host, and one alone does not; a
pack without a risk policy raises no risk alert at all.

The keyword engine of tests/pipeline/test_rules_stage.py stands in for the compiled pack
(unit level); the live path with the shipped pack runs in tests/rules/test_deploy_live.py."""

from __future__ import annotations

import json

import msgspec
import pytest

from scorer.events import EventKind
from scorer.pipeline.batch import KindRuntime
from scorer.pipeline.scoring import BatchScorer
from scorer.pipeline.source import input_record
from scorer.rules.annotate import RuleStage
from scorer.rules.risk import RISK_SEVERITY, RiskPolicy
from tests.pipeline.test_rules_stage import CARD, HitCountFeatures, KeywordEngine, NeverAlarmed, meta
from tests.rules.test_risk import FORMER
from tests.support import ocsf_schema

MEDIUM = (meta("m-a", "medium", "discovery"), meta("m-b", "medium", "lateral_movement"))


class MediumEngine(KeywordEngine):
    rules = MEDIUM  # type: ignore[assignment]  # fire0 -> m-a, fire1 -> m-b (two rules, not three)


def edr(i: int, host: str, cmd: str) -> bytes:
    return json.dumps({"uid": f"e{i}", "ts": 1700000000 + 60 * i, "host": host, "event_code": 1,
                       "channel": "Microsoft-Windows-Sysmon/Operational", "image": "C:\\x.exe",
                       "command_line": cmd}).encode()


FIRST = [edr(0, "ws1", "fire0"), edr(1, "ws2", "fire0"), edr(2, "ws1", "quiet")]
SECOND = [edr(3, "ws1", "fire1"), edr(4, "ws2", "fire0"), edr(5, "ws1", "fire0 fire1")]


async def two_batches(policy: RiskPolicy | None) -> tuple[list[bytes], list[bytes]]:
    """The alerts of the two batches above, through a pack whose risk policy is ``policy``."""
    stage = RuleStage(MediumEngine(), "sigma_test", "4", {r.id: r for r in MEDIUM}, policy)  # type: ignore[arg-type]
    scorer = BatchScorer({EventKind.EDR: KindRuntime.build(EventKind.EDR, HitCountFeatures(), CARD, stage)},
                         NeverAlarmed())
    out1 = await scorer.score([input_record(EventKind.EDR, v, None, "events.edr", 0, i) for i, v in enumerate(FIRST)])
    out2 = await scorer.score([input_record(EventKind.EDR, v, None, "events.edr", 0, 3 + i)
                               for i, v in enumerate(SECOND)])
    return [a.value for a in out1.alerts], [a.value for a in out2.alerts]


@pytest.mark.data  # the OCSF schema the findings are checked against
async def test_two_medium_rules_on_one_host_alert_once_and_one_alone_does_not() -> None:
    alerts1, alerts2 = await two_batches(FORMER)
    assert alerts1 == []  # one medium rule per host: no alert
    findings = [msgspec.json.decode(a) for a in alerts2]
    # ws1 reaches 2 points at e3 (m-a from the previous batch, m-b now); then it stays quiet for
    # the window (e5). ws2 repeats one rule: it counts once.
    assert [f["unmapped"]["scorer"]["event_uid"] for f in findings] == ["e3"]
    (finding,) = findings
    assert finding["severity"] == RISK_SEVERITY and finding["device"]["hostname"] == "ws1"
    assert [a["uid"] for a in finding["finding_info"]["related_analytics"]] == ["m-b"]
    ocsf_schema.assert_valid(findings)


async def test_a_pack_without_a_risk_policy_raises_no_risk_alert() -> None:
    assert await two_batches(None) == ([], [])
