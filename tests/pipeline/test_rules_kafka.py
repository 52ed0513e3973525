"""SigmaHQ's regression events through the real path: Kafka in, the shipped rule pack and
EDR model on Triton, score records and OCSF findings out. Each event must fire its own rule
(the rule's author's test case), and a high or critical rule must raise a finding that
names it. tests/rules runs every regression event in process; this is a sample of them."""

from __future__ import annotations

import json

import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from scorer.alerts.decide import RULE_ALERT_LEVELS
from scorer.events.structs import EventKind
from scorer.rules.annotate import RuleStage
from scorer.rules.build import regression_cases
from tests.support import ocsf_schema
from tests.support.kafka import KafkaBroker
from tests.support.paths import DATA_DIR, RULE_REPOSITORY
from tests.support.pipeline import consume, kcat_consume, produce, running_scorer, scorer_settings, wait_for
from tests.support.triton import TritonServer

pytestmark = pytest.mark.data
SAMPLE_EVERY = 4  # every 4th regression event, in path order: about 50 events


def regression_sample() -> list[tuple[str, list[tuple[str, bytes]]]]:
    """(own rule id, [(uid, record)...]) for a deterministic sample of the regression cases
    whose rule is in the shipped pack (a case may hold context events besides its true
    positive: the rule must fire on one of the case's events)."""
    shipped = RuleStage.load(RULE_REPOSITORY, "sigma_windows").by_id
    root = DATA_DIR / "edr" / "sigma-regression"
    if not root.is_dir():
        pytest.skip(f"no SigmaHQ regression data at {root}")
    out = []
    for i, case in enumerate(regression_cases(root)):
        if i % SAMPLE_EVERY or case.rule_id not in shipped or not case.events:
            continue
        records = []
        for j, raw in enumerate(case.events):
            uid = f"sigma-{i}-{j}"
            records.append((uid, json.dumps({**raw, "uid": uid}).encode()))
        out.append((case.rule_id, records))
    return out


async def test_regression_events_fire_their_rules_through_kafka_and_triton(
    kafka: KafkaBroker, triton: TritonServer
) -> None:
    sample = regression_sample()
    assert len(sample) >= 30
    values = [(uid, value) for _, records in sample for uid, value in records]
    settings = scorer_settings(kafka.bootstrap, backend="triton", triton_url=triton.grpc_url)
    await produce(kafka.bootstrap, settings.topics.edr, [(None, value) for _, value in values])
    async with running_scorer(settings) as (_, metrics):
        assert await wait_for(lambda: metrics.accounting.consumed["edr"] >= len(values), 120)
        assert metrics.accounting.balanced()
    assert settings.topics.scores is not None
    got = await consume(kafka.bootstrap, settings.topics.scores, len(values), timeout=30)
    scores = {s["uid"]: s for s in (json.loads(m.value) for m in got)}
    assert set(scores) == {uid for uid, _ in values}, "every regression event scored"
    fired_on = {rule: [uid for uid, _ in records if rule in scores[uid].get("rules", [])]
                for rule, records in sample}
    missed = [rule for rule, uids in fired_on.items() if not uids]
    assert not missed, f"cases whose rule fired on none of their events: {missed}"
    assert all(s["backend"] == "triton" for s in scores.values())

    findings = {json.loads(a["payload"])["unmapped"]["scorer"]["event_uid"]: json.loads(a["payload"])
                for a in kcat_consume(kafka.bootstrap, settings.topics.alert_topic(EventKind.EDR))}
    assert kcat_consume(kafka.bootstrap, settings.topics.dead_letter) == []
    shipped = RuleStage.load(RULE_REPOSITORY, "sigma_windows").by_id
    alerting = [(uid, rule) for rule, uids in fired_on.items() for uid in uids
                if shipped[rule].level in RULE_ALERT_LEVELS]
    assert alerting, "the sample holds high or critical rules"
    for uid, rule in alerting:
        f = findings[uid]
        DetectionFinding.model_validate(f)
        assert rule in {a["uid"] for a in f["finding_info"]["related_analytics"]}
        assert f["unmapped"]["scorer"]["raised_by"] in ("rules", "model+rules")
        assert f["severity"] in ("High", "Critical")
        assert all(r["author"] for r in f["unmapped"]["scorer"]["rules"])
    # Every event that alerted (by model or rule) has its finding, and only those.
    assert set(findings) == {uid for uid, s in scores.items() if s["alerted"]}
    ocsf_schema.assert_valid(findings.values())


