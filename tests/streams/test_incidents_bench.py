"""The incident Create-latency benchmark measures what it says: its findings digest and key
as the scorer's do, each opening finding names a host never seen before, and a short run on
a real broker matches every opening finding to its host's Create and to its copy (no speed
is asserted: the numbers are the benchmark's to print)."""

from __future__ import annotations

import json

import pytest

from scorer.incidents import Correlator, LinkTable, Policy, digest
from streams.incidents_bench import Load, phase
from tests.support.kafka import KafkaBroker


def test_load_opens_one_incident_per_new_host() -> None:
    load = Load("tb", new_every=10, pool=5)
    links, corr = LinkTable(), Correlator(Policy())
    opened: list[str] = []
    for _ in range(300):
        _, key, value, opens = load.next()
        m = digest(json.loads(value))
        links.learn(m)
        m = links.resolve(m)
        corr.add(m)
        if opens:
            opened.append(opens)
            assert m.key == f"host:{key.decode()}"
    creates = [e.state.key for e in corr.flush() if e.activity == 1]
    assert len(opened) == 1 + 30 == len(set(load.opened.values()))  # the 1st, then every 10th
    assert sorted(creates) == sorted(f"host:{h}" for h in load.opened.values())  # nothing else opens one


@pytest.mark.parametrize("name", ["passthrough", "incidents", "incidents-split"])
async def test_a_short_run_matches_every_opening_finding(kafka: KafkaBroker, name: str) -> None:
    result = await phase(name, kafka.bootstrap, rate=200, seconds=2, warmup_s=0.5, new_every=20,
                         drain_timeout_s=60, job_args=[])
    assert result["findings"] == 400 and result["opening_findings"] == 20
    assert result["outputs_missing"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    if name.startswith("incidents"):  # the per-stage breakdown: both hops timed, both stages' batches scraped
        assert 0 < result["hops"]["router_hop"]["p50_ms"] <= result["p99_ms"]
        assert result["hops"]["correlator_hop"]["max_ms"] <= result["max_ms"]
        for stage in ("router", "correlator"):
            assert result["batches"][stage]["commit"]["batches"] >= 1
            assert result["batches"][stage]["records"]["mean"] >= 1
