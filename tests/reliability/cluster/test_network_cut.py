"""A broker's network cut from the other two, then healed, under a live stream through
`scorer run` in exactly-once mode, with the uid ledger of the other cluster fault tests.

The cut node is the leader of the busiest input partition. Every packet between it and the
other two brokers is dropped, both ways, on the broker and the controller ports (iptables,
matched by the sending JVM's cgroup: tests/support/cluster.py), while it keeps running;
``clients-still-reach-it``: the scorer and the test still reach it (a stale leader clients
can talk to), ``isolated``: nothing reaches it (its ports drop every packet). The two
connected nodes must elect another leader for the partition, the scorer must make progress
through it, and once the cut is healed the node must catch up (every ISR full again).
Nothing may be lost or scored twice under read_committed.

The rules live in a network namespace of the test's own (``unshare --net``, only a
loopback): the test re-runs itself there, so it needs root, unshare, ip, iptables and a
cgroup v2 hierarchy. Its own cluster starts there too (the module ``cluster`` fixture of
the other tests lives outside).

Reproduce: SCORER_CLUSTER_TESTS=1 SCORER_RELIABILITY_SEED=<seed> pytest -s tests/reliability/cluster/test_network_cut.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.cluster.live import STALL_S, check, live_run
from tests.support.cluster import NODES, REPO_ROOT, KafkaCluster, cgroup2_root

pytestmark = [pytest.mark.data, pytest.mark.slow]

NETNS = "SCORER_CLUSTER_NETNS"  # "1" inside the private network namespace the test re-runs in


def _rerun_in_private_network_namespace(nodeid: str, tmp_path: Path) -> None:
    """The test again, in a network namespace of its own, so the cut's iptables rules touch
    nothing outside it; its output is this test's."""
    missing = [tool for tool in ("unshare", "ip", "iptables") if shutil.which(tool) is None]
    if os.geteuid() != 0 or cgroup2_root() is None or missing:
        pytest.skip(f"runs only with root, cgroup v2 and {', '.join(missing) or 'unshare, ip, iptables'}")
    inner = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'netns'}"]
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner, nodeid]
    rc = subprocess.run(command, cwd=REPO_ROOT, env=os.environ | {NETNS: "1"}, check=False).returncode
    assert rc == 0, f"the test in its network namespace failed (rc={rc}): its output is above"


@pytest.mark.parametrize("clients_reach_it", [True, False], ids=["clients-still-reach-it", "isolated"])
async def test_leader_network_cut_from_the_other_brokers_then_healed(
    start_cluster: Callable[..., KafkaCluster], tmp_path: Path, request: pytest.FixtureRequest, clients_reach_it: bool
) -> None:
    if os.environ.get(NETNS) != "1":
        _rerun_in_private_network_namespace(request.node.nodeid, tmp_path)
        return
    cluster = start_cluster(tmp_path / "cluster", cgroups=True)
    try:
        async with live_run(cluster, tmp_path, transactional=True) as run:
            topic, partition = await run.busiest_input()
            node = await cluster.leader(topic, partition)
            others = [n for n in NODES if n != node]
            cluster.cut_node(node, clients=not clients_reach_it)
            cut = f"brokers {others}" + ("" if clients_reach_it else " and clients")
            run.step(f"network of broker {node} (leader of {topic}[{partition}]) cut from {cut}")
            # The cut must take effect: the two connected nodes elect another leader.
            cut_at = time.monotonic()
            while (seen := await cluster.seen_by(others[0], topic, partition))[0] == node:
                assert time.monotonic() - cut_at < STALL_S, f"{topic}[{partition}] still led by {node}: {seen}"
                await asyncio.sleep(0.5)
            # Its own view is the stale one, when a client can still ask it.
            view = await cluster.seen_by(node, topic, partition) if clients_reach_it else "nothing (unreachable)"
            run.step(f"broker {others[0]} says leader {seen[0]}, ISR {seen[1]}; broker {node} says {view}")
            await run.first_progress("cut")
            await run.advance()
            run.step(f"scorer made progress with broker {node} cut off")
            cluster.heal()
            run.step("network healed")
            await cluster.wait_isr(run.all_topics())
            run.step(f"broker {node} caught up, every ISR full")
            await run.advance()
    finally:
        cluster.stop()
    check(run.report, True, faults=1)
