"""A real three-broker KRaft cluster for fault tests, started through deploy/local/cluster.sh.

    cluster = KafkaCluster.start(workdir)                # free ports, fresh data dirs
    await cluster.acreate_topic("events.siem", 3)        # replication 3, min.insync.replicas 2
    node = await cluster.leader("events.siem", 0)        # 1..3
    cluster.kill_node(node); cluster.start_node(node)    # SIGKILL, then back with log recovery
    coordinator = await cluster.transaction_coordinator("group-client")
    cluster.stop()

Every node is broker and controller (a three-voter quorum): killing one leaves a quorum
and two in-sync replicas, which is what min.insync.replicas=2 with acks=all needs.

Network cuts: started with ``cgroups=True``, each node's JVM runs in a cgroup of its own;
``cut_node(n)`` then drops every packet between node n and the other two (iptables, matched
by the sending socket's cgroup, on loopback), while clients still reach all three, and
``heal()`` lifts it. The rules go into the current network namespace, so the caller runs in
a private one (``unshare --net``; see tests/reliability/cluster).
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import CoordinationType
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from tests.support import markers
from tests.support.kafka import START_TIMEOUT_S, file_tail, free_ports, run_script

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "deploy" / "local" / "cluster.sh"
NODES = (1, 2, 3)
CUT_CHAIN = "SCORER-CUT"  # the iptables chain of the cut rules (OUTPUT jumps to it)


def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup`` or, on a hybrid host,
    ``/sys/fs/cgroup/unified``), or None."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def _remove_cgroup(path: Path, tries: int = 100) -> None:
    """rmdir a cgroup once the processes that were in it are gone: an exited JVM holds it
    (EBUSY) until its parent reaps it, a moment after kafka.sh sees it die."""
    for _ in range(tries):
        try:
            path.rmdir()
            return
        except FileNotFoundError:  # a node never started
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            time.sleep(0.1)
    path.rmdir()


def _iptables(*args: str) -> None:
    subprocess.run(["iptables", "-w", *args], check=True, capture_output=True, text=True)


class ClusterScriptError(RuntimeError):
    pass


@dataclass
class KafkaCluster:
    ports: tuple[int, int, int]
    controller_ports: tuple[int, int, int]
    data_dir: Path
    cgroup: Path | None = None  # node N's JVM runs in cgroup/node-N (network cuts)

    @classmethod
    def start(cls, workdir: Path | None = None, *, cgroups: bool = False) -> KafkaCluster:
        """``cgroups``: each node in a cgroup of its own, for :meth:`cut_node`."""
        markers.require("kafka", "a Kafka cluster started")
        picked = free_ports(6)
        workdir = workdir or Path(tempfile.mkdtemp(prefix="scorer-cluster-"))
        workdir.mkdir(parents=True, exist_ok=True)
        cgroup = None
        if cgroups:
            root = cgroup2_root()
            if root is None:
                raise RuntimeError("no cgroup v2 hierarchy is mounted: network cuts need one")
            cgroup = Path(tempfile.mkdtemp(prefix="scorer-cluster-", dir=root))
        cluster = cls(
            (picked[0], picked[1], picked[2]),
            (picked[3], picked[4], picked[5]),
            Path(tempfile.mkdtemp(prefix="cluster-", dir=workdir)),
            cgroup,
        )
        try:
            cluster._script("start", timeout=START_TIMEOUT_S)
        except BaseException:
            cluster._script("stop", check=False)
            raise
        return cluster

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client_config(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap}

    # ------------------------------------------------------------------ nodes
    def stop(self) -> None:
        self._script("stop", timeout=180, check=False)
        if self.cgroup is not None:
            for node in NODES:
                _remove_cgroup(self.cgroup / f"node-{node}")
            _remove_cgroup(self.cgroup)

    def stop_node(self, node: int) -> None:
        """SIGTERM: a clean shutdown (leadership moved away first, as in a rolling restart)."""
        self._script("stop-node", str(node), timeout=120)

    def kill_node(self, node: int) -> None:
        """SIGKILL: a crash (no controlled shutdown; log recovery on the next start)."""
        self._script("kill-node", str(node), timeout=60)

    def start_node(self, node: int) -> None:
        self._script("start-node", str(node), timeout=START_TIMEOUT_S)

    def cut_node(self, node: int, *, clients: bool = False) -> None:
        """Drop every packet between ``node`` and the other two nodes, both ways (broker and
        controller ports; connections already open included): to them it is gone, while it
        keeps running and clients still reach it, unless ``clients`` (then nothing reaches
        its ports at all). :meth:`heal` lifts the cut."""
        if self.cgroup is None or shutil.which("iptables") is None:
            raise RuntimeError("a network cut needs a cluster started with cgroups=True and iptables")
        if subprocess.run(["iptables", "-w", "-n", "-L", CUT_CHAIN], capture_output=True, check=False).returncode:
            _iptables("-N", CUT_CHAIN)
            _iptables("-I", "OUTPUT", "-j", CUT_CHAIN)
        root = cgroup2_root()
        assert root is not None

        def ports(n: int) -> str:
            return f"{self.ports[n - 1]},{self.controller_ports[n - 1]}"

        if clients:
            _iptables("-A", CUT_CHAIN, *f"-p tcp -m multiport --dports {ports(node)} -j DROP".split())
        for other in (n for n in NODES if n != node):
            # Each side's packets toward the other's listeners: a connection can't open, an
            # open one carries nothing more (the rules match the sending socket's cgroup).
            for sender, receiver in ((node, other), (other, node)):
                path = str((self.cgroup / f"node-{sender}").relative_to(root))
                rule = f"-p tcp -m cgroup --path {path} -m multiport --dports {ports(receiver)} -j DROP"
                _iptables("-A", CUT_CHAIN, *rule.split())

    def heal(self) -> None:
        """Lift every cut: the nodes reconnect on their own."""
        _iptables("-F", CUT_CHAIN)

    def pid(self, node: int) -> int | None:
        try:
            return int((self.data_dir / f"node-{node}" / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ metadata
    async def acreate_topic(self, name: str, partitions: int = 3, *, config: Mapping[str, str] | None = None) -> None:
        from scorer.config import KafkaSettings
        from scorer.kafka import TopicSpec, ensure_topics

        spec = TopicSpec(name, partitions, 3, dict(config or {}))
        if (await ensure_topics(KafkaSettings(bootstrap_servers=self.bootstrap), [spec]))[name] != partitions:
            raise TimeoutError(f"topic {name} did not get {partitions} partitions with leaders")

    async def partitions(self, topic: str) -> dict[int, dict[str, Any]]:
        """Partition -> {"leader": node, "isr": [nodes], "replicas": [nodes]} as the cluster says now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        return {
            p["partition"]: {"leader": p["leader"], "isr": sorted(p["isr"]), "replicas": sorted(p["replicas"])}
            for p in described["partitions"]
        }

    async def leader(self, topic: str, partition: int) -> int:
        return int((await self.partitions(topic))[partition]["leader"])

    async def seen_by(self, node: int, topic: str, partition: int) -> tuple[int, list[int]]:
        """(leader, ISR) of a partition as ``node`` itself says (its metadata cache): after a
        cut, the two connected nodes move on while the cut one may still name itself."""
        conn = await create_conn("127.0.0.1", self.ports[node - 1], request_timeout_ms=10_000)
        try:
            response = await conn.send(MetadataRequest([topic]))
        finally:
            conn.close()
        for topic_data in response.topics:
            for _, number, leader, _, isr, *_ in topic_data[3] if len(topic_data) > 3 else topic_data[2]:
                if number == partition:
                    return int(leader), sorted(isr)
        raise KeyError(f"node {node} knows no {topic}[{partition}]")

    async def transaction_coordinator(self, transactional_id: str) -> int:
        """The node that coordinates ``transactional_id``'s transactions (FindCoordinator)."""
        return await self._coordinator(CoordinationType.TRANSACTION, transactional_id)

    async def group_coordinator(self, group_id: str) -> int:
        """The node that coordinates the consumer group (its offset commits)."""
        return await self._coordinator(CoordinationType.GROUP, group_id)

    async def _coordinator(self, kind: CoordinationType, key: str) -> int:
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await client.bootstrap()
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    return int(await client.coordinator_lookup(kind, key))
                except KafkaError as exc:  # the first lookup creates __transaction_state; a moved coordinator
                    if not exc.retriable or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            await client.close()

    async def wait_isr(self, topics: list[str], size: int = 3, timeout: float = 120.0) -> None:
        """Until every partition of ``topics`` has ``size`` in-sync replicas (a restarted node
        caught up): a rolling restart must not take the next node down before that."""
        deadline = time.monotonic() + timeout
        while True:
            short = {
                (t, p): parts["isr"]
                for t in topics
                for p, parts in (await self.partitions(t)).items()
                if len(parts["isr"]) < size
            }
            if not short:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"ISR below {size} after {timeout:.0f}s: {short}")
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ internals
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KAFKA_CLUSTER_PORTS"] = ",".join(map(str, self.ports))
        env["KAFKA_CLUSTER_CONTROLLER_PORTS"] = ",".join(map(str, self.controller_ports))
        env["KAFKA_CLUSTER_DIR"] = str(self.data_dir)
        if self.cgroup is not None:
            env["KAFKA_CLUSTER_CGROUP"] = str(self.cgroup)
        return env

    def log_tail(self, node: int, lines: int = 30) -> str:
        return file_tail(self.data_dir / f"node-{node}" / "server.log", lines)

    def _script(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = run_script([str(CLUSTER_SH), *args], self.env(), timeout)
        if check and proc.returncode != 0:
            tails = "\n".join(f"--- node {n} ---\n{self.log_tail(n)}" for n in NODES)
            raise ClusterScriptError(
                f"cluster.sh {' '.join(args)} failed (rc={proc.returncode}):\n{proc.stdout}{proc.stderr}\n{tails}"
            )
        return proc
