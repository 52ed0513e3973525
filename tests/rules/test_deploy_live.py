"""Rule packs on the live service: deploy --shadow, promote, rollback with the real
``scorer rules`` CLI (subprocesses) against a running scorer (real Kafka, the shipped EDR
model on a real tritonserver) under an endless stream, then packs the service refuses on
its own, then a restarted scorer converging on the control topic's pack.

The stream is a real OTRF capture replayed at 400 events/s (tests/support/stream.py) with,
every ``MARK_EVERY`` events, a copy of the golden event of one high rule (the marker: the
model alone does not alert on it). Pack ``LOWERED`` is the shipped pack 1 with that rule lowered
to low (tests/support/rulepacks.py). Every step waits for scored events (metrics), never for time.

Checked over every event: consumed = scored + dead-lettered, exactly one score record per
event; the markers, in stream order, alert through the rule under pack 1 (also while pack 2
is the shadow), not after the promote, and again after the rollback; the shadow topic and
Prometheus say the same: the candidate would remove the markers' alerts and only those.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from replay.outgoing import Outgoing
from scorer.config import LifecycleSettings, RuleSettings, Settings
from scorer.events.structs import EventKind
from scorer.lifecycle.control import DesiredState, publish, state_record
from scorer.lifecycle.controller import LifecycleController, start_lifecycle
from scorer.lifecycle.rulepacks import control_key
from scorer.metrics import ScorerMetrics
from tests.support.cli import scorer_cli
from tests.support.kafka import KafkaBroker
from tests.support.pipeline import kcat_consume, running_scorer, scorer_settings, wait_for
from tests.support.rulepacks import LOWERED, PACK, RULE, derive, golden_events, shipped_repository, tamper
from tests.support.samples import CAPTURES
from tests.support.stream import Stream, endless
from tests.support.triton import TritonServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

EDR = EventKind.EDR
KEY = control_key(PACK)
MARK_EVERY = 10
PHASE_EVENTS = 300  # events scored in each phase before the next command


def with_markers(items: Iterator[Outgoing], marker: dict[str, Any]) -> Iterator[Outgoing]:
    """``items`` with a copy of ``marker`` (uid ``marker-<n>``) after every ``MARK_EVERY - 1``."""
    for n, item in enumerate(items):
        if n % MARK_EVERY == MARK_EVERY - 1:
            value = msgspec.json.encode({**marker, "uid": f"marker-{n}"})
            yield Outgoing(ts=item.ts, capture="markers", key=b"marker-host", value=value, kind=EDR)
        yield item


async def scored_more(metrics: ScorerMetrics, n: int = PHASE_EVENTS) -> None:
    mark = metrics.accounting.scored["edr"]
    assert await wait_for(lambda: metrics.accounting.scored["edr"] >= mark + n, 90), "the stream stalled"


def sample(metrics: ScorerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


class Env:
    def __init__(self, kafka: KafkaBroker, triton: TritonServer, tmp: Path) -> None:
        self.repo = shipped_repository(tmp)
        derive(self.repo, LOWERED, level="low")
        p = f"rl{uuid.uuid4().hex[:8]}"
        self.lifecycle = LifecycleSettings(control_topic=f"{p}.control", status_topic=f"{p}.status",
                                           shadow_topic=f"{p}.shadow")
        base = scorer_settings(kafka.bootstrap, backend="triton", triton_url=triton.grpc_url, prefix=p)
        self.settings: Settings = base.model_copy(update={
            "kinds": (EDR,), "rules": RuleSettings(repository=self.repo, version="1")})
        self.cli_env = {**os.environ, "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap, "SCORER_KINDS": '["edr"]',
                        "SCORER_RULES__REPOSITORY": str(self.repo), "SCORER_RULES__VERSION": "1",
                        "SCORER_LIFECYCLE__CONTROL_TOPIC": self.lifecycle.control_topic,
                        "SCORER_LIFECYCLE__STATUS_TOPIC": self.lifecycle.status_topic}

    async def rules(self, *args: str) -> tuple[int, str]:
        return await scorer_cli(self.cli_env, "rules", *args)


async def test_rule_pack_lifecycle_under_a_continuous_stream(
    kafka: KafkaBroker, triton: TritonServer, tmp_path: Path
) -> None:
    env = Env(kafka, triton, tmp_path)
    marker = golden_events(env.repo / PACK / "1")[0]
    stream = Stream(env.settings, with_markers(endless(CAPTURES[EDR]), marker))
    await stream.run(limit=200)  # creates the topic before the scorer subscribes
    async with running_scorer(env.settings) as (service, metrics):
        controller = await start_lifecycle(service, env.lifecycle)
        assert isinstance(controller, LifecycleController)
        try:
            async with stream.flowing(metrics):
                await deploy_promote_rollback(env, metrics)
                await refusals(env, metrics)
        finally:
            await controller.stop()
        print("\nswitches:", *controller.switches, sep="\n  ")
    check_outputs(env, stream.uids, metrics)
    await restarted_scorer_converges(env)


async def deploy_promote_rollback(env: Env, metrics: ScorerMetrics) -> None:
    await scored_more(metrics)
    rc, out = await env.rules("deploy", PACK, LOWERED, "--shadow", "--reason", "rule lowered", "--wait", "60")
    assert rc == 0 and f"production 1, shadow {LOWERED}" in out and "applied by" in out, out
    assert "WARNING: once promoted:" in out, "said ahead: the model was not trained on the candidate"
    await scored_more(metrics)
    rc, out = await env.rules("list")
    assert rc == 0 and "desired shadow" in out and "served by" in out and "edr_classifier:1 trained on it" in out
    rc, out = await env.rules("promote", "--reason", "shadow agrees", "--wait", "60")
    assert rc == 0 and f"production {LOWERED}, shadow -" in out and "applied by" in out, out
    assert "WARNING" in out and "gives other rule-hit features" in out, "the model was trained on pack 1"
    await scored_more(metrics)
    rc, out = await env.rules("rollback", "--reason", "analysts want the rule back", "--wait", "60")
    assert rc == 0 and "production 1" in out and f"previous {LOWERED}" in out and "WARNING" not in out, out
    await scored_more(metrics)


async def refusals(env: Env, metrics: ScorerMetrics) -> None:
    """The CLI refuses a pack with the file and the reason; written past it, every scorer
    refuses the same on its own, reports it, and keeps serving pack 1."""
    tamper(derive(env.repo, "12", level="medium"))
    derive(env.repo, "13", remove=True)
    for version, reason, says in (("12", "integrity", "ir.json.gz: sha256 differs"),
                                  ("13", "golden", f"rule {RULE} did not fire")):
        rc, out = await env.rules("deploy", PACK, version, "--shadow")
        assert rc == 2 and says in out, out
        state = DesiredState(kind=KEY, model=PACK, production="1", shadow=version, previous=LOWERED,
                             action="deploy-shadow", issued_by="test, bypassing the CLI checks")
        await publish(env.settings.kafka, state_record(env.lifecycle.control_topic, state))
        assert await wait_for(lambda v=version, r=reason: sample(
            metrics, "scorer_rule_pack_refusals_total", pack=PACK, version=v, reason=r) == 1, 30)
        await scored_more(metrics)
    rc, out = await env.rules("list")
    assert rc == 0 and "REFUSED @" in out and "golden" in out and "REFUSED:" in out, out  # version 3's sums


def check_outputs(env: Env, uids: list[str], metrics: ScorerMetrics) -> None:
    topics = env.settings.topics
    assert metrics.accounting.balanced(), metrics.accounting.totals()
    assert topics.scores is not None
    scores = [json.loads(r["payload"]) for r in kcat_consume(env.settings.kafka.bootstrap_servers, topics.scores)]
    dead = kcat_consume(env.settings.kafka.bootstrap_servers, topics.dead_letter)
    scored = [s["uid"] for s in scores]
    assert len(scored) == len(set(scored)), "no event scored twice"
    assert len(scored) + len(dead) == len(uids) == sum(metrics.accounting.consumed.values()), "none lost"
    assert set(scored) <= set(uids)

    alerts = [json.loads(a["payload"]) for a in kcat_consume(env.settings.kafka.bootstrap_servers,
                                                             topics.alert_topic(EDR))]
    by_rule = {a["unmapped"]["scorer"]["event_uid"] for a in alerts
               if a["unmapped"]["scorer"]["raised_by"] != "model" and RULE in
               {r["uid"] for r in a["finding_info"].get("related_analytics", [])}}
    markers = [u for u in uids if u.startswith("marker-") and u in set(scored)]
    runs = [(alerting, len(list(group))) for alerting, group in itertools.groupby(u in by_rule for u in markers)]
    alerted = {a["unmapped"]["scorer"]["event_uid"] for a in alerts}
    print(f"\nmarkers in stream order, alerting through the rule or not: {runs}; markers alerting on the "
          f"model alone: {sum(1 for u in markers if u in alerted and u not in by_rule)}")
    assert [alerting for alerting, _ in runs] == [True, False, True], runs
    packs = {a["unmapped"]["scorer"]["event_uid"]: a["unmapped"]["scorer"]["rule_pack"]
             for a in alerts if "rule_pack" in a["unmapped"]["scorer"]}
    assert {packs[u] for u in by_rule} == {f"{PACK}:1"}

    shadow = [json.loads(r["payload"]) for r in kcat_consume(env.settings.kafka.bootstrap_servers,
                                                             env.lifecycle.shadow_topic)]
    compared = [s["rules"] for s in shadow]
    assert compared and all(c["production"] == f"{PACK}:1" and c["shadow"] == f"{PACK}:{LOWERED}" for c in compared)
    removed = [u for c in compared for u in c["alerts_removed"]]
    assert removed and set(removed) <= by_rule, "the candidate would remove the markers' alerts, and only those"
    assert all(not c["alerts_added"] and not c["hits_added"] and not c["hits_removed"] for c in compared)
    labels = {"pack": PACK, "version": LOWERED}
    assert sample(metrics, "scorer_rule_shadow_events_total", **labels) == sum(s["n"] for s in shadow)
    assert sample(metrics, "scorer_rule_shadow_alerts_total", change="removed", **labels) == len(removed)
    print(f"events {len(uids)}, scored {len(scored)}, dead letters {len(dead)}, alerts {len(alerts)}, "
          f"shadow-compared {sum(s['n'] for s in shadow)}, alerts the candidate would remove {len(removed)}")


async def restarted_scorer_converges(env: Env) -> None:
    """A scorer configured on pack 1 starts on what the control topic says: promote the other first."""
    rc, out = await env.rules("promote", "--version", LOWERED, "--reason", "before the restart")
    assert rc == 0
    async with running_scorer(env.settings) as (service, _):
        controller = await start_lifecycle(service, env.lifecycle)
        assert controller is not None
        try:
            def serving() -> str | None:
                rules = service.scorer.runtimes[EDR].rules
                return rules.version if rules is not None else None

            # Prepared by start_lifecycle; installed by the loop between two batches.
            assert await wait_for(lambda: serving() == LOWERED, 30), serving()
            rc, out = await env.rules("list", "--json")
            (listing,) = json.loads(out[out.index("["):])
            assert controller.process in {s["process"] for s in listing["scorers"] if s["production"] == LOWERED}
        finally:
            await controller.stop()
