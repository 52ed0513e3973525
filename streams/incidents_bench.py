"""``python -m streams bench-incidents --bootstrap HOST:PORT [--rate 10000] [--seconds 60]``:
incident Create latency at a fixed finding rate, beside a passthrough baseline.

Two phases in one run, each on fresh topics of the same broker, each with the same load:
Detection Findings produced at ``--rate`` per second (SIEM, EDR and netflow findings about
a pool of hosts; every ``--new-every``-th finding names a host never seen before, so it
opens an incident):

- ``passthrough``: a separate process copies every finding from the alert topic to an
  output topic (plain aiokafka consume -> produce -> ack -> commit, no transactions, no
  work): what Kafka and Python alone cost on this machine;
- ``incidents``: ``python -m streams incidents`` as its own process (router and
  correlator, one Kafka transaction per batch each).

Latency: from the wall-clock moment the opening finding (the first about a new host) was
handed to the producer to the moment this process, as a read_committed consumer, receives
the output (its copy, or the Create of that host's incident, whichever of the host's
findings reached the correlator first): what a consumer of the topic sees, on one clock. Warm-up (group
joins, a few seconds at full rate) is not measured. Achieved rate: findings acknowledged
by the broker per second of the measured window; ``drain_s``: from the last send until the
last expected output arrived (a stage that cannot keep up shows it here and in p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from scorer.config import KafkaSettings
from scorer.kafka import TopicSpec, ensure_topics, make_consumer, make_producer, make_reader
from scorer.kafka.admin import topic_partition_list

from .incidents.job import STAGES
from .incidents_stages import batch_summary, copied, created, hops, routed_key, scrape

KINDS = ("netflow", "edr", "siem")
_ENC = msgspec.json.Encoder()


class Load:
    """Findings as the scorer writes them (OCSF 1.8 layout, about 1.2 kB each)."""

    def __init__(self, prefix: str, new_every: int, pool: int = 1000) -> None:
        self.prefix, self.new_every, self.pool = prefix, new_every, pool
        self.n = 0
        self.hosts: list[str] = []
        self.opened: dict[str, str] = {}  # opening finding uid -> its host
        self.rng = random.Random(7)

    def next(self) -> tuple[str, bytes, bytes, str | None]:
        """(topic kind, key, value, uid when it opens an incident)."""
        self.n += 1
        uid = f"{self.prefix}-f{self.n}"
        opens = not self.hosts or self.n % self.new_every == 0
        if opens:
            self.hosts.append(f"{self.prefix}-h{len(self.opened)}")
            host, kind = self.hosts[-1], "siem"
            self.opened[uid] = host  # never reused: each opens its own incident
            if len(self.hosts) > self.pool:
                del self.hosts[0]
        else:
            host = self.rng.choice(self.hosts)
            kind = self.rng.choices(KINDS, (1, 2, 7))[0]
        return kind, host.encode(), _ENC.encode(_finding(uid, kind, host, int(time.time() * 1000))), \
            uid if opens else None


def _finding(uid: str, kind: str, host: str, now_ms: int) -> dict[str, Any]:
    ip = f"10.{hash(host) % 250}.{len(host) % 250}.{sum(map(ord, host)) % 250}"
    data: dict[str, Any] = {"uid": "e-" + uid, "ts": now_ms / 1000, "host": host, "src_ip": ip}
    if kind == "siem":
        data |= {"rule_name": "Wazuh: Multiple web server 400 error codes", "source_system": "wazuh"}
    elif kind == "netflow":
        data = {"uid": "e-" + uid, "ts": now_ms / 1000, "src_ip": ip, "dst_ip": "192.0.2.10", "dst_port": 443}
    return {
        "activity_id": 1, "class_uid": 2004, "category_uid": 2, "type_uid": 200401, "severity_id": 3,
        "severity": "Medium", "status_id": 1, "time": now_ms, "confidence_score": 80,
        "metadata": {"version": "1.8.0", "uid": uid, "product": {"name": "scorer", "vendor_name": "scorer"},
                     "profiles": ["host", "security_control"]},
        "finding_info": {"uid": uid, "title": "Alert likely part of an attack", "types": [kind],
                         "desc": f"{kind} event on {host}; score 0.93; driven by tok_12, host_rule_60s",
                         "first_seen_time": now_ms, "last_seen_time": now_ms,
                         "analytic": {"name": f"{kind}_classifier", "uid": f"{kind}_classifier:1", "type_id": 4},
                         "attacks": [{"tactic": {"uid": "TA0007", "name": "Discovery"},
                                      "technique": {"uid": "T1046", "name": "Network Service Discovery"}}],
                         "related_events": [{"uid": "e-" + uid, "type": kind}]},
        "evidences": [{"data": data, "src_endpoint": {"ip": ip}}],
        "device": {"hostname": host, "type_id": 0} if kind != "netflow" else None,
        "unmapped": {"scorer": {"score": 0.93, "kind": kind, "model": {"name": f"{kind}_classifier", "version": "1"},
                                "top_features": [{"name": "tok_12", "value": 1.0, "contribution": 12.5}]}},
    }


async def produce(kafka: KafkaSettings, topics: dict[str, str], load: Load, rate: float, seconds: float,
                  sent: dict[str, float] | None) -> tuple[int, float]:
    """``rate`` findings/s for ``seconds`` on an absolute schedule; opening finding uid ->
    send time into ``sent``. Returns (findings acknowledged, seconds from first send to last ack)."""
    producer = make_producer(kafka, linger_ms=2)
    await producer.start()
    futures: list[asyncio.Future[Any]] = []
    acked = 0
    start = time.time()
    total = int(rate * seconds)
    try:
        for i in range(total):
            due = start + i / rate
            if due > time.time() + 0.002:
                await asyncio.sleep(due - time.time())
            kind, key, value, opens = load.next()
            headers = [("bench-open", opens.encode())] if opens else None
            if opens and sent is not None:
                sent[opens] = time.time()
            futures.append(await producer.send(topics[kind], value, key=key, headers=headers))
            if len(futures) >= 2000:
                acked += len(await asyncio.gather(*futures))
                futures = []
        acked += len(await asyncio.gather(*futures))
        return acked, time.time() - start
    finally:
        await producer.stop()


async def watch(kafka: KafkaSettings, topic: str, seen: dict[str, float], key_of: Callable[[Any], str | None],
                stop: asyncio.Event) -> None:
    """Receive time of the first record of each ``key_of`` key (None: not one to time)."""
    reader = make_reader(kafka, "bench-watch", fetch_max_wait_ms=5)
    await reader.start()
    try:
        parts = await topic_partition_list(kafka, [topic])  # created before the phase starts
        reader.assign(parts)
        await reader.seek_to_end()
        while not stop.is_set():
            batch = await reader.getmany(timeout_ms=50, max_records=10_000)
            now = time.time()
            for records in batch.values():
                for r in records:
                    if (key := key_of(r)) is not None:
                        seen.setdefault(key, now)
    finally:
        await reader.stop()


async def passthrough(kafka: KafkaSettings, source: str, sink: str) -> None:
    """The baseline process: copy ``source`` to ``sink`` record for record, commit after acks."""
    consumer = make_consumer(kafka, [source], fetch_max_wait_ms=5)
    producer = make_producer(kafka, linger_ms=2)
    await asyncio.gather(consumer.start(), producer.start())
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=50, max_records=4096)
            futures = [await producer.send(sink, r.value, key=r.key, headers=list(r.headers) or None)
                       for records in batch.values() for r in records]
            await asyncio.gather(*futures)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def phase(name: str, bootstrap: str, rate: float, seconds: float, warmup_s: float, new_every: int,
                drain_timeout_s: float, job_args: list[str]) -> dict[str, Any]:
    prefix = f"bi{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=bootstrap, group_id=prefix, client_id=prefix)
    topics = {k: f"{prefix}.alerts.{k}" for k in KINDS}
    incidents = name.startswith("incidents")  # "incidents-split": router and correlator in two processes
    out_topic = f"{prefix}.incidents" if incidents else f"{prefix}.copy"
    await ensure_topics(kafka, [TopicSpec(t, 3) for t in [*topics.values(), out_topic]])
    env = dict(os.environ, SCORER_KAFKA__BOOTSTRAP_SERVERS=bootstrap, SCORER_KAFKA__GROUP_ID=prefix,
               SCORER_KAFKA__CLIENT_ID=prefix, SCORER_TOPICS__ALERTS_PREFIX=f"{prefix}.alerts.")
    if incidents:
        for field in ("keyed_topic", "state_topic", "links_topic", "suppressions_topic", "suppressed_topic",
                      "dead_letter"):
            env[f"SCORER_INCIDENTS__{field.upper()}"] = f"{prefix}.incidents.{field}"
        env["SCORER_INCIDENTS__TOPIC"] = out_topic
        stages_of = [[f"--stage={s}"] for s in STAGES] if name == "incidents-split" else [[]]
        ports = [_free_port() for _ in stages_of]
        argvs = [[sys.executable, "-m", "streams", "incidents", "--metrics-port", str(port), *job_args, *stage]
                 for port, stage in zip(ports, stages_of, strict=True)]
    else:
        ports = []
        argvs = [[sys.executable, "-m", "streams", "bench-incidents", "--passthrough", topics["siem"], out_topic,
                  "--bootstrap", bootstrap]]
        topics = dict.fromkeys(KINDS, topics["siem"])  # the same records on one topic: one to copy
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the processes, in the finally below)
    procs = [subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT) for argv in argvs]
    seen: dict[str, float] = {}
    routed: dict[str, float] = {}  # incidents: the host's first digest on the keyed topic
    stop = asyncio.Event()
    watchers = [asyncio.create_task(watch(kafka, out_topic, seen, created if incidents else copied, stop))]
    if incidents:
        await ensure_topics(kafka, [TopicSpec(env["SCORER_INCIDENTS__KEYED_TOPIC"], 3)])  # the job's default count
        watchers.append(asyncio.create_task(watch(kafka, env["SCORER_INCIDENTS__KEYED_TOPIC"], routed, routed_key,
                                                  stop)))
    stages: dict[str, Any] = {}
    load = Load(prefix, new_every)
    try:
        ready = time.time()
        while not seen:  # the stage joined its group(s) and moves records
            if any(p.poll() is not None for p in procs) or time.time() - ready > 120:
                log.seek(0)
                raise RuntimeError(f"{name} never produced: {log.read().decode()[-2000:]}")
            await produce(kafka, topics, load, 20, 0.5, None)
            await asyncio.sleep(0.5)
        ready_s = time.time() - ready
        await produce(kafka, topics, load, rate, warmup_s, None)
        sent: dict[str, float] = {}
        acked, elapsed = await produce(kafka, topics, load, rate, seconds, sent)
        last_send = time.time()
        # What the watcher records for an opening finding: its uid (copy), its host's incident key
        # (Create): the host's EDR finding that came next may reach the correlator first and open it.
        expect = {f"host:{load.opened[uid]}" if incidents else uid: t for uid, t in sent.items()}
        while not all(k in seen for k in expect) and time.time() - last_send < drain_timeout_s:
            await asyncio.sleep(0.05)
        drained = max((seen[k] for k in expect if k in seen), default=last_send) - last_send
        cpu_s = sum(_cpu_seconds(p.pid) for p in procs)  # the stage processes' own CPU over their whole life
        life_s = time.time() - ready
        if incidents:
            stages = {"hops": hops(expect, routed, seen), "batches": {}}
            for port in ports:
                stages["batches"] |= batch_summary(await asyncio.to_thread(scrape, port))
    finally:
        stop.set()
        await asyncio.gather(*watchers)
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        log.close()
    lat = np.array([(seen[k] - t) * 1000 for k, t in expect.items() if k in seen])
    if len(expect) != len(sent) or (lat <= 0).any():
        raise RuntimeError("an output was matched to the wrong opening finding")
    return {"phase": name, "offered_per_s": rate, "seconds": seconds, "findings": acked,
            "achieved_per_s": round(acked / elapsed, 1), "opening_findings": len(expect),
            "outputs_missing": sum(1 for k in expect if k not in seen), "ready_s": round(ready_s, 2),
            "drain_s": round(drained, 3), "stage_cpu_cores": round(cpu_s / life_s, 2),
            "job_args": job_args if incidents else [],
            **({f"p{q}_ms": round(float(np.percentile(lat, q)), 1) for q in (50, 90, 99)} if lat.size else {}),
            "max_ms": round(float(lat.max()), 1) if lat.size else None, **stages}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams bench-incidents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True, help="Kafka brokers to benchmark on (required)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="findings per second (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per phase (default: %(default)s)")
    parser.add_argument("--warmup-s", type=float, default=5.0,
                        help="seconds at full rate before measuring (default: %(default)s)")
    parser.add_argument("--new-every", type=int, default=200,
                        help="every Nth finding opens an incident (default: %(default)s)")
    parser.add_argument("--drain-timeout-s", type=float, default=120.0,
                        help="give up a phase after this many seconds without its last outputs (default: %(default)s)")
    parser.add_argument("--phases", default="passthrough,incidents",
                        help="phases in order (default passthrough,incidents); incidents-split: the job's "
                        "router and correlator as two processes (--stage)")
    parser.add_argument("--job-args", default="",
                        help="extra arguments of the incident job, e.g. '--max-records 1024' (default: none)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here (default: print only)")
    parser.add_argument("--passthrough", nargs=2, metavar=("SOURCE", "SINK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.passthrough:  # the baseline's own process
        kafka = KafkaSettings(bootstrap_servers=args.bootstrap, group_id=f"{args.passthrough[0]}-copy")
        asyncio.run(passthrough(kafka, *args.passthrough))
        return 0
    results = [asyncio.run(phase(name, args.bootstrap, args.rate, args.seconds, args.warmup_s, args.new_every,
                                 args.drain_timeout_s, args.job_args.split())) for name in args.phases.split(",")]
    report = {"command": "python -m streams bench-incidents " + " ".join(argv), "cpus": os.cpu_count(),
              "load_average_at_end": os.getloadavg(), "phases": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0
