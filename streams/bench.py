"""``python -m streams.bench [--events N] [--batch B] [--bootstrap HOST:PORT]``: profile costs.

Three numbers per kind, on real events from the shared data (``$SCORER_DATA_DIR``):

- ``rule``: events/s through the update rule alone (one process, one core, no Kafka);
- ``worker``: events/s through the profile worker on a real broker (``--bootstrap``):
  consume, update, produce the changed profiles, wait for acks, commit; from the end of the
  first batch (after the group join) until the batch holding the last preloaded event has
  been produced and committed;
- ``join``: the scorer's feature stage per micro-batch of ``B`` events with feature set v1
  and with v2 (v1 + the profile join against a view already holding the profiles of all N
  events), µs per event and p99 per batch: the latency the join adds to the scorer;
- ``staleness`` (``--staleness-rate R``, with ``--bootstrap``): the worker and the scorer's
  view running, events produced one at a time at R/s: from each event's send to its
  entity's profile in the view including it (ms, p50/p99/max).

The scorer end to end with and without profiles: ``scorer bench --profiles`` (scorer/bench).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from scorer.captures import LabeledEvent, iter_capture
from scorer.config import KafkaSettings, ProfileSettings, Settings, TopicSettings, data_dir
from scorer.events.structs import EndpointEvent, Event, EventKind, FlowRecord, SiemAlert, entity_key
from scorer.features import feature_set
from scorer.profiles.keys import edr_keys, flow_keys, siem_keys
from scorer.profiles.local import FrozenProfiles, LocalProfiles
from scorer.profiles.store import ProfileStore
from scorer.profiles.updates import apply

SOURCES = {
    EventKind.NETFLOW: ["netflow/stratosphere-zeek/*.labeled", "netflow/cic-ids2017-improved/*.csv"],
    EventKind.EDR: ["edr/otrf-security-datasets/**/*.zip"],
    EventKind.SIEM: ["siem/ait-ads/*.csv.gz"],
}


def load(data: Path, kind: EventKind, n: int) -> list[Event]:
    files = sorted(f for pattern in SOURCES[kind] for f in data.glob(pattern))
    items = (i for f in files for i in iter_capture(f) if isinstance(i, LabeledEvent))
    return sorted((i.event for i in itertools.islice(items, n)), key=lambda e: e.ts)


def rule_rate(kind: EventKind, events: Sequence[Event]) -> float:
    store = ProfileStore(track_changes=True)
    start = time.perf_counter()
    for i, e in enumerate(events):
        apply(store, kind, e, i)
    store.changes()
    return len(events) / (time.perf_counter() - start)


def join_cost(kind: EventKind, events: Sequence[Event], batch: int) -> dict[str, float]:
    view = LocalProfiles()
    view.observe(kind, events)
    out: dict[str, float] = {}
    for label, fs in (("v1", feature_set(kind)), ("v2", feature_set(kind, "v2", FrozenProfiles(view)))):
        times = []
        for i in range(0, len(events), batch):
            chunk = events[i:i + batch]
            t = time.perf_counter()
            fs.transform(chunk)
            times.append((time.perf_counter() - t) / len(chunk))
        per_event = np.array(times)
        out[f"{label}_us_per_event"] = float(per_event.mean() * 1e6)
        out[f"{label}_p99_ms_per_batch"] = float(np.percentile(per_event, 99) * batch * 1e3)
    out["added_us_per_event"] = out["v2_us_per_event"] - out["v1_us_per_event"]
    return out


PARTITIONS = 3


async def bench_settings(bootstrap: str, kinds: Sequence[EventKind], partitions: int = PARTITIONS) -> Settings:
    """Fresh input topics (and names for the profile topics) on ``bootstrap``."""
    from scorer.kafka import TopicSpec, ensure_topics

    p = f"bench{uuid.uuid4().hex[:6]}"
    topics = TopicSettings.model_validate({k.value: f"{p}.events.{k.value}" for k in kinds})
    kafka = KafkaSettings(bootstrap_servers=bootstrap, group_id=p, client_id=p)
    await ensure_topics(kafka, [TopicSpec(getattr(topics, k.value), partitions) for k in kinds])
    return Settings(kinds=tuple(kinds), kafka=kafka, topics=topics,
                    profiles=ProfileSettings(source="topic", topic_prefix=f"{p}.profiles.", partitions="all"))


async def worker_rate(bootstrap: str, data: dict[EventKind, list[Event]]) -> dict[str, float]:
    from scorer.kafka import make_producer, produce_batched
    from scorer.pipeline.records import OutputRecord

    from .worker import ProfileWorker, WorkerSettings

    settings = await bench_settings(bootstrap, list(data))
    producer = make_producer(settings.kafka)
    await producer.start()
    await produce_batched(producer, [OutputRecord(getattr(settings.topics, kind.value), msgspec.json.encode(e),
                                                  entity_key(e).encode()) for kind, evs in data.items() for e in evs])
    await producer.stop()
    worker = ProfileWorker(WorkerSettings.from_settings(settings))
    await worker.start()
    total = sum(len(v) for v in data.values())
    task = asyncio.create_task(worker.run())
    while not worker.batches:  # the group join and partition restore are not throughput
        await asyncio.sleep(0.001)
    start, done = time.perf_counter(), worker.events + worker.skipped
    while worker.events + worker.skipped < total:
        await asyncio.sleep(0.01)
    async with worker.inflight:  # the last batch's profiles acknowledged and its offsets committed
        elapsed = time.perf_counter() - start
    worker.request_stop()
    await task
    await worker.stop()
    return {"events": float(total - done), "seconds": elapsed, "events_per_s": (total - done) / elapsed,
            "batches": worker.batches}


def _first_key(e: Event) -> str:
    """One profile key every event of its kind updates: its entity's."""
    if isinstance(e, FlowRecord):
        return flow_keys(e).source
    if isinstance(e, EndpointEvent):
        return edr_keys(e).host
    assert isinstance(e, SiemAlert)
    return siem_keys(e).host


async def staleness(bootstrap: str, kind: EventKind, events: Sequence[Event], rate: float) -> dict[str, float]:
    """ms from each event's send until the view's profile of its entity includes it."""
    from scorer.kafka import make_producer
    from scorer.profiles.view import TopicProfileView

    from .worker import ProfileWorker, WorkerSettings

    settings = await bench_settings(bootstrap, [kind])
    worker = ProfileWorker(WorkerSettings.from_settings(settings))
    await worker.start()  # creates the profile topics
    work = asyncio.create_task(worker.run())
    view = TopicProfileView(settings)
    await view.start()
    while len(worker.stores) < PARTITIONS:  # joined the group and restored its partitions: not staleness
        await asyncio.sleep(0.05)
    source = view.source(kind)
    producer = make_producer(settings.kafka)
    await producer.start()
    pending: list[tuple[str, int, float]] = []  # key, input offset, sent at
    delays: list[float] = []

    async def watch() -> None:
        while True:
            now = time.perf_counter()
            still = []
            for item in pending:
                p = source.get(item[0])
                if p is not None and p.offset >= item[1]:  # the key's partition is the event's
                    delays.append(now - item[2])
                else:
                    still.append(item)
            pending[:] = still
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    try:
        start = time.perf_counter()
        for i, e in enumerate(events):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent = time.perf_counter()
            ack = await (await producer.send(getattr(settings.topics, kind.value), msgspec.json.encode(e),
                                             key=entity_key(e).encode()))
            pending.append((_first_key(e), ack.offset, sent))
        deadline = time.perf_counter() + 30
        while pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
        worker.request_stop()
        await work
        for client in (producer, view, worker):
            await client.stop()
    ms = np.array(delays) * 1e3
    return {"events": float(len(ms)), "missing": float(len(pending)), "rate": rate,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.bench", description=__doc__)
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--kinds", default="netflow,edr,siem")
    parser.add_argument("--bootstrap", help="a broker for the worker phase (skipped without)")
    parser.add_argument("--staleness-rate", type=float, default=0.0, help="events/s for the staleness phase")
    args = parser.parse_args(argv)
    kinds = [EventKind(k) for k in args.kinds.split(",")]
    data = {k: load(args.data, k, args.events) for k in kinds}
    report: dict[str, object] = {}
    for kind, evs in data.items():
        report[kind.value] = {"events": len(evs), "rule_events_per_s": rule_rate(kind, evs),
                              **join_cost(kind, evs, args.batch)}
    if args.bootstrap:
        report["worker"] = asyncio.run(worker_rate(args.bootstrap, data))
    if args.bootstrap and args.staleness_rate:
        n = int(args.staleness_rate * 10)  # ten seconds of events per kind
        report["staleness"] = {k.value: asyncio.run(staleness(args.bootstrap, k, evs[:n], args.staleness_rate))
                               for k, evs in data.items()}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
