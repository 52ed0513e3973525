"""Faults of a real three-broker cluster (replication 3, min.insync.replicas=2) under a live
stream through `scorer run`, with the uid ledger of tests/support/faults.

- the leader of the busiest input partition is killed (-9) mid-stream, then the broker
  coordinating the scorer's transactions (exactly-once) or its group's offsets
  (at-least-once), each brought back once the scorer has made progress without it;
- a rolling restart of all three brokers (clean stop, start, wait for the ISR to be full
  again) while the stream flows at a fixed rate;
- the scorer killed (-9) while a broker is down (ISR at 2), started again, and the broker
  brought back after that.

(A broker's network cut from the others: test_network_cut.py. The stream, the scorer and
the ledger of every one of them: live.py.)

Exactly-once: every event scored (or dead-lettered) once under read_committed, every alert
once. At-least-once: nothing lost, duplicates bounded per fault. Every step waits for observed
progress of the scorer (events scored), not for time, so a slow machine changes how long a
run takes, not what it tests; the seed picks how much progress each step waits for.

Reproduce: SCORER_CLUSTER_TESTS=1 SCORER_RELIABILITY_SEED=<seed> pytest -s tests/reliability/cluster
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.reliability.cluster.live import check, live_run
from tests.support.cluster import KafkaCluster

pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.mark.parametrize("transactional", [False, True], ids=["at-least-once", "exactly-once"])
async def test_leader_then_coordinator_killed(cluster: KafkaCluster, tmp_path: Path, transactional: bool) -> None:
    async with live_run(cluster, tmp_path, transactional=transactional) as run:
        topic, partition = await run.busiest_input()
        leader = await cluster.leader(topic, partition)
        await run.kill_and_return(leader, f"leader of the busiest input partition {topic}[{partition}]")
        await run.advance()
        env = run.proc.env
        group = env["SCORER_KAFKA__GROUP_ID"]
        if transactional:
            txn_id = f"{group}-{env['SCORER_KAFKA__CLIENT_ID']}"
            node, what = await cluster.transaction_coordinator(txn_id), f"transaction coordinator of {txn_id}"
        else:
            node, what = await cluster.group_coordinator(group), f"group coordinator of {group}"
        await run.kill_and_return(node, what)
        await run.advance()
    check(run.report, transactional, faults=2)


async def test_rolling_restart_of_all_brokers(cluster: KafkaCluster, tmp_path: Path) -> None:
    async with live_run(cluster, tmp_path, transactional=True) as run:
        for node in run.rng.sample([1, 2, 3], 3):
            await asyncio.to_thread(cluster.stop_node, node)
            run.step(f"broker {node} stopped (clean)")
            await run.advance(100, 400)
            await asyncio.to_thread(cluster.start_node, node)
            await cluster.wait_isr(run.all_topics())
            run.step(f"broker {node} back, every ISR full")
            await run.advance(100, 400)
    check(run.report, True, faults=3)


async def test_scorer_killed_while_a_broker_is_down(cluster: KafkaCluster, tmp_path: Path) -> None:
    async with live_run(cluster, tmp_path, transactional=True) as run:
        topic, partition = await run.busiest_input()
        node = await cluster.leader(topic, partition)
        cluster.kill_node(node)
        run.step(f"kill -9 broker {node} (leader of {topic}[{partition}])")
        await run.advance()
        run.proc.kill()
        run.step("kill -9 scorer (ISR at 2)")
        run.proc.start()
        await run.proc.wait_ready()
        run.step("scorer restarted")
        await run.advance()
        await asyncio.to_thread(cluster.start_node, node)
        await cluster.wait_isr(run.all_topics())
        run.step(f"broker {node} back, every ISR full")
        await run.advance()
    check(run.report, True, faults=2)
