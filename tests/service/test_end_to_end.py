"""All three kinds end to end on the real services: Kafka in, scoring, OCSF alerts out.

Alerts are read back with kcat (librdkafka), an independent client.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from scorer.events.structs import EventKind
from scorer.inference.repository import load_version
from tests.support import ocsf_schema
from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY
from tests.support.pipeline import consume, kcat_consume, produce, running_scorer, scorer_settings, wait_for
from tests.support.samples import SAMPLES
from tests.support.triton import TritonServer

pytestmark = pytest.mark.data

_RUNS: dict[str, dict[str, Any]] = {}


async def _run(kafka: KafkaBroker, backend: str, triton_url: str = "") -> dict[str, Any]:
    """Produce every sample, score it with ``backend``, collect what came out (cached)."""
    if backend in _RUNS:
        return _RUNS[backend]
    settings = scorer_settings(kafka.bootstrap, backend=backend, triton_url=triton_url or "127.0.0.1:1")
    produced: dict[EventKind, list[tuple[str, bytes, bytes]]] = {k: f() for k, f in SAMPLES.items()}
    total = sum(len(v) for v in produced.values())
    for kind, sample in produced.items():
        await produce(kafka.bootstrap, getattr(settings.topics, kind.value), [(k, v) for _, k, v in sample])
    async with running_scorer(settings) as (_, metrics):
        assert await wait_for(lambda: sum(metrics.accounting.consumed.values()) >= total, 120)
        accounting = metrics.accounting
    assert settings.topics.scores is not None
    scores = await consume(kafka.bootstrap, settings.topics.scores, total, timeout=30)
    result = {
        "settings": settings,
        "produced": produced,
        "accounting": accounting,
        "scores": {json.loads(m.value)["uid"]: json.loads(m.value) for m in scores},
        "alerts": {k: kcat_consume(kafka.bootstrap, settings.topics.alert_topic(k)) for k in EventKind},
        "dlq": kcat_consume(kafka.bootstrap, settings.topics.dead_letter),
    }
    _RUNS[backend] = result
    return result


def _check_finding(f: dict[str, Any], kind: EventKind, uids: set[str], backend: str) -> None:
    card = load_version(MODEL_REPOSITORY, f"{kind.value}_classifier").card
    DetectionFinding.model_validate(f)  # OCSF's required fields and types, by another implementation
    assert f["class_uid"] == 2004 and f["category_uid"] == 2 and f["activity_id"] == 1
    assert f["type_uid"] == 200401 and f["class_name"] == "Detection Finding"
    assert f["metadata"]["version"] == "1.8.0" and f["metadata"]["product"]["name"] == "scorer"
    assert 1 <= f["severity_id"] <= 5 and isinstance(f["time"], int)
    analytic = f["finding_info"]["analytic"]
    assert analytic["name"] == card.name and analytic["version"] == card.version
    (related,) = f["finding_info"]["related_events"]
    assert related["uid"] in uids and related["type"] == kind.value
    assert f["evidences"][0]["data"]["uid"] == related["uid"]
    assert "label" not in f["evidences"][0]["data"]
    sc = f["unmapped"]["scorer"]
    assert sc["threshold"] == card.threshold
    # A finding is the model's (score past its threshold) or a high/critical rule's.
    assert sc["score"] >= sc["threshold"] or sc["raised_by"] == "rules"
    assert sc["backend"] == backend and sc["kind"] == kind.value


@pytest.mark.parametrize("backend", ["triton", "onnxruntime"])
async def test_every_kind_flows_end_to_end(kafka: KafkaBroker, triton: TritonServer, backend: str) -> None:
    run = await _run(kafka, backend, triton.grpc_url)
    acc = run["accounting"]
    assert acc.balanced(), acc.totals()
    assert run["dlq"] == [], "real events must not be dead-lettered"
    for kind, sample in run["produced"].items():
        uids = {uid for uid, _, _ in sample}
        assert acc.consumed[kind.value] == len(sample)
        assert acc.scored[kind.value] == len(sample)
        scored = {u: s for u, s in run["scores"].items() if u in uids}
        assert set(scored) == uids, "every event has its score"
        expected_alerts = {u for u, s in scored.items() if s["alerted"]}
        alerts = run["alerts"][kind]
        assert expected_alerts, f"the {kind} sample holds attacks: some must alert"
        got = {json.loads(a["payload"])["finding_info"]["related_events"][0]["uid"] for a in alerts}
        assert got == expected_alerts
        for a in alerts:
            finding = json.loads(a["payload"])
            _check_finding(finding, kind, uids, backend)
            # keyed like the input: the entity key of the source event
            source_key = next(k for u, k, _ in sample if u == finding["unmapped"]["scorer"]["event_uid"])
            assert a["key"] == source_key.decode()
        ocsf_schema.assert_valid(a["payload"] for a in alerts)  # the official schema, key by key


async def test_triton_and_onnxruntime_scores_are_equal(kafka: KafkaBroker, triton: TritonServer) -> None:
    a = (await _run(kafka, "triton", triton.grpc_url))["scores"]
    b = (await _run(kafka, "onnxruntime"))["scores"]
    assert set(a) == set(b) and len(a) > 600
    assert all(s["backend"] == "triton" for s in a.values())
    assert all(s["backend"] == "onnxruntime" for s in b.values())
    differ = {uid: (sa["kind"], sa["score"], b[uid]["score"]) for uid, sa in a.items()
              if sa["score"] != pytest.approx(b[uid]["score"], abs=1e-6) or sa["alerted"] != b[uid]["alerted"]}
    assert not differ, f"{len(differ)} scores differ, e.g. {list(differ.items())[:5]}"

