"""Entity profiles on the real Kafka: the worker's profiles equal the offline computation,
the scorer's view joins the same features as training, the state survives a kill -9
and a rebalance between two workers without losing or double-counting an event, and each
scorer's view holds exactly the profiles of its assigned partitions."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from scorer.config import InferenceSettings, KafkaSettings, ProfileSettings, Settings, TopicSettings
from scorer.events.structs import Event, EventKind, entity_key
from scorer.features import capture_matrix, feature_set
from scorer.pipeline.loop import ScoringLoop
from scorer.profiles.local import LocalProfiles
from scorer.profiles.schema import ItemProfile, Profile, decode, encode
from scorer.profiles.view import TopicProfileView
from streams.bench import staleness
from streams.worker import ProfileWorker, WorkerSettings
from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY
from tests.support.pipeline import produce, running_job, running_scorer
from tests.support.samples import events

KINDS = (EventKind.NETFLOW, EventKind.SIEM, EventKind.EDR)
CHUNK_S = 600.0  # the join is exact while the view is less than 15 minutes ahead of an event
# Events per kind joined chunk by chunk: 4.4 h of netflow and 6.9 h of SIEM event time in
# 10-minute chunks (27 and 26: hours past the hour window, so its slots are pruned), each a
# publish-drain-catch-up round trip (1,500 made 61 and 43 over 10 h: twice the time, and
# neither reaches the 24 distinct hours an item keeps).
JOIN_EVENTS = 600


@pytest.fixture
def settings(kafka: KafkaBroker) -> Iterator[Settings]:
    p = f"p{uuid.uuid4().hex[:8]}"
    topics = TopicSettings(netflow=f"{p}.events.netflow", edr=f"{p}.events.edr", siem=f"{p}.events.siem")
    for kind in KINDS:
        kafka.create_topic(getattr(topics, kind.value), partitions=3)
    yield Settings(kinds=KINDS, kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id=p, client_id=p),
                   topics=topics, profiles=ProfileSettings(source="topic", topic_prefix=f"{p}.profiles."))


def _sample(kind: EventKind, n: int = 1500) -> list[Event]:
    return list(events(kind))[:n]


async def _publish(settings: Settings, kind: EventKind, evs: Sequence[Event]) -> None:
    # What a SOC pipeline does: canonical JSON, keyed by entity, in time order.
    await produce(settings.kafka.bootstrap_servers, getattr(settings.topics, kind.value),
                  [(entity_key(e).encode(), msgspec.json.encode(e)) for e in evs])


def _offline_state(kind: EventKind, evs: Sequence[Event]) -> dict[str, bytes]:
    local = LocalProfiles()
    local.observe(kind, evs)
    return {k: _without_offset(p) for k, p in local.store._keys.items()}  # test-only peek


def _without_offset(p: Profile) -> bytes:
    return encode(msgspec.structs.replace(p, offset=-1))


async def _topic_state(settings: Settings, kind: EventKind) -> dict[str, bytes]:
    return {k: v for part in (await _partition_states(settings, kind)).values() for k, v in part.items()}


async def _partition_states(settings: Settings, kind: EventKind) -> dict[int, dict[str, bytes]]:
    """The latest value of every key of the profile topic, per partition."""
    topic = f"{settings.profiles.topic_prefix}{kind.value}"
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    state: dict[int, dict[str, bytes]] = {p: {} for p in consumer.partitions_for_topic(topic) or ()}
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in state])
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    k = r.key.decode()
                    if r.value is None:
                        state[tp.partition].pop(k, None)
                    else:
                        state[tp.partition][k] = _without_offset(decode(r.value))
    finally:
        await consumer.stop()
    return state


async def _committed(settings: Settings, group: str) -> tuple[int, int]:
    """(records the group has committed, records in its input topics)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(getattr(settings.topics, k.value), p) for k in settings.kinds for p in range(3)]
        ends = await consumer.end_offsets(parts)
        done = [min(await consumer.committed(tp) or 0, end) for tp, end in ends.items()]
        return sum(done), sum(ends.values())
    finally:
        await consumer.stop()


async def _drained(settings: Settings, group: str, stalled_s: float = 120.0) -> None:
    """Until the group has committed every input partition to its end; fails only when its
    commits stop moving for ``stalled_s`` (a limit on no progress, not on the machine's speed)."""
    await _committed_at_least(settings, group, None, stalled_s)


async def _committed_at_least(settings: Settings, group: str, wanted: int | None, stalled_s: float = 120.0) -> None:
    """Until the group has committed ``wanted`` records (None: all of its input)."""
    last, moved_at = -1, time.monotonic()
    while True:
        done, total = await _committed(settings, group)
        if done >= (total if wanted is None else wanted):
            return
        if done != last:
            last, moved_at = done, time.monotonic()
        assert time.monotonic() - moved_at < stalled_s, f"the profile worker stopped at {done}/{total} records"
        await asyncio.sleep(0.3)


@pytest.mark.data
async def test_online_profiles_and_join_equal_the_offline_computation(settings: Settings) -> None:
    worker = ProfileWorker(WorkerSettings.from_settings(settings, max_records=256))
    await worker.start()
    task = asyncio.create_task(worker.run())
    view = TopicProfileView(_with_profiles(settings, partitions="all"))  # no consumer group here
    try:
        await _publish(settings, KINDS[0], [])  # topics exist before the view starts
        await asyncio.sleep(0.5)
        await view.start(follow=False)
        for kind in KINDS:
            evs = _sample(kind, JOIN_EVENTS)
            served, features = [], feature_set(kind, "v2", view.source(kind))
            # The scorer lags the job by less than the retention margin: publish ten minutes,
            # let the job and the view catch up, join those ten minutes.
            for _, chunk in itertools.groupby(evs, key=lambda e: int((e.ts - evs[0].ts) // CHUNK_S)):
                batch = list(chunk)
                await _publish(settings, kind, batch)
                await _drained(settings, worker.settings.kafka.group_id)
                assert await view.catch_up(30)
                served.append(features.transform(batch))
            offline, order = capture_matrix(kind, evs, version="v2")
            assert order.tolist() == list(range(len(evs)))
            np.testing.assert_array_equal(np.concatenate(served), offline)
            assert await _topic_state(settings, kind) == _offline_state(kind, evs)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        await worker.stop()
        await view.stop()


def _with_profiles(settings: Settings, **profiles: object) -> Settings:
    return settings.model_copy(update={"profiles": settings.profiles.model_copy(update=profiles)})


async def _eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


def _worker(settings: Settings) -> contextlib.AbstractAsyncContextManager[ProfileWorker]:
    return running_job(ProfileWorker(WorkerSettings.from_settings(settings, max_records=256)))


@contextlib.asynccontextmanager
async def _scorer(settings: Settings) -> AsyncIterator[tuple[ScoringLoop, TopicProfileView]]:
    """``scorer run`` with SCORER_PROFILES__SOURCE=topic, in process."""
    view = TopicProfileView(settings)
    await view.start()
    try:
        async with running_scorer(settings, view) as (service, _):
            yield service, view
    finally:
        await view.stop()


@pytest.mark.data
async def test_each_scorer_view_holds_the_profiles_of_its_partitions(settings: Settings) -> None:
    kind = EventKind.NETFLOW
    async with _worker(settings) as worker:
        await _publish(settings, kind, _sample(kind, 1500))
        await _drained(settings, worker.settings.kafka.group_id)
    parts = await _partition_states(settings, kind)
    assert len(parts) == 3 and all(parts.values())
    p = settings.kafka.group_id
    scorer_settings = settings.model_copy(update={
        "kinds": (kind,), "kafka": settings.kafka.model_copy(update={"group_id": f"{p}-scorer"}),
        "topics": settings.topics.model_copy(update={"alerts_prefix": f"{p}.alerts.", "dead_letter": f"{p}.dlq"}),
        "inference": InferenceSettings(backend="onnxruntime", model_repository=MODEL_REPOSITORY)})

    def holds_its_partitions(service: ScoringLoop, view: TopicProfileView) -> bool:
        mine = {tp.partition for tp in service._consumer.assignment()}  # test-only peek
        keys = set(view.source(kind).data)
        return bool(mine) and keys == {k for n in mine for k in parts[n]}

    async with _scorer(scorer_settings) as (first, first_view):
        await _eventually(lambda: len(first._consumer.assignment()) == 3 and holds_its_partitions(first, first_view))
        async with _scorer(scorer_settings) as (second, second_view):
            # The group rebalances: each view keeps only the profiles of its scorer's partitions.
            await _eventually(lambda: holds_its_partitions(first, first_view)
                              and holds_its_partitions(second, second_view)
                              and len(first._consumer.assignment()) < 3)
            assert len(first_view) + len(second_view) == sum(len(v) for v in parts.values())
        # The second scorer left: the first takes its partitions back and loads their profiles.
        await _eventually(lambda: len(first._consumer.assignment()) == 3 and holds_its_partitions(first, first_view))
        assert first_view.catch_up_timeouts._value.get() == 0  # test-only peek at the counter


async def test_view_caps_its_keys_and_exports_its_metrics(settings: Settings, kafka: KafkaBroker) -> None:
    settings = _with_profiles(settings.model_copy(update={"kinds": (EventKind.NETFLOW,)}), partitions="all",
                              max_entries=50)
    topic = f"{settings.profiles.topic_prefix}netflow"
    kafka.create_topic(topic, partitions=1)
    keys = [f"src\x1f10.0.0.{i}".encode() for i in range(230)]
    value = encode(ItemProfile(1.0, 1.0, [0]))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    two_minutes_ago = int((time.time() - 120) * 1000)
    await asyncio.gather(*[await producer.send(topic, value, key=k, timestamp_ms=two_minutes_ago) for k in keys[:200]])
    registry = CollectorRegistry()
    view = TopicProfileView(settings, registry)
    try:
        await view.start(follow=False)
        metrics = _samples(registry)
        assert len(view) == 50 and set(view.source(EventKind.NETFLOW).data) == {k.decode() for k in keys[150:200]}
        assert metrics['scorer_profile_view_entries{kind="netflow"}'] == 50
        assert metrics["scorer_profile_view_evicted_total"] == 150  # the oldest writes went first
        assert metrics["scorer_profile_view_behind_records"] == 0
        assert 110 < metrics["scorer_profile_view_age_seconds"] < 600
        assert metrics["scorer_profile_view_partitions"] == 1
        await asyncio.gather(*[await producer.send(topic, value, key=k) for k in keys[200:]])
        await asyncio.gather(await producer.send(topic, None, key=keys[199]))  # a tombstone
        while not await view.poll(max_records=10):
            pass
        metrics = _samples(registry)
        # 31 published, 10 applied; the highwater is the broker's as of the last fetch response
        assert 10 <= metrics["scorer_profile_view_behind_records"] <= 21
        assert metrics["scorer_profile_view_age_seconds"] < 60  # the newest applied is fresh
        assert await view.catch_up(30)
        assert keys[199].decode() not in view.source(EventKind.NETFLOW).data and len(view) == 49  # tombstoned
        metrics = _samples(registry)
        assert metrics["scorer_profile_view_evicted_total"] == 150 + 30
        assert metrics["scorer_profile_view_behind_records"] == 0
    finally:
        await producer.stop()
        await view.stop()


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    lines = generate_latest(registry).decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")}


@pytest.mark.data
async def test_every_events_profile_reaches_the_view(kafka: KafkaBroker) -> None:
    """Worker and view running, 200 events/s: each event's profile reaches the view. How
    quickly is the benchmark's to say (docs/profiles.md: ``python -m streams.bench --staleness-rate``),
    not a test's: the delay depends on the machine."""
    result = await staleness(kafka.bootstrap, EventKind.NETFLOW, _sample(EventKind.NETFLOW, 600), rate=200.0)
    print("staleness", result)
    assert result["missing"] == 0 and result["events"] == 600


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        self.env = dict(os.environ, SCORER_KAFKA__BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
                        SCORER_KAFKA__GROUP_ID=settings.kafka.group_id,
                        SCORER_KINDS=msgspec.json.encode([k.value for k in settings.kinds]).decode(),
                        SCORER_PROFILES__TOPIC_PREFIX=settings.profiles.topic_prefix,
                        **{f"SCORER_TOPICS__{k.value.upper()}": getattr(settings.topics, k.value)
                           for k in settings.kinds})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:  # the child keeps its own copy
            args = [sys.executable, "-m", "streams", "--metrics-port", "0", "--max-records", "40"]
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)


@pytest.mark.data
async def test_killed_worker_recovers_without_losing_or_double_counting(settings: Settings, tmp_path: Path) -> None:
    kinds = (EventKind.NETFLOW, EventKind.SIEM)
    sample = {k: _sample(k, 3000) for k in kinds}
    group = f"{settings.kafka.group_id}-profiles"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    # Killed twice, each time once it has committed some of what it was given (at whatever
    # point of a batch that is), and the next part published while it is dead: every restart
    # has committed state to restore and input still to score, however fast the machine.
    parts = [{k: sample[k][i * 1000:(i + 1) * 1000] for k in kinds} for i in range(3)]
    for i, part in enumerate(parts):
        for kind in kinds:
            await _publish(settings, kind, part[kind])
        if i == len(parts) - 1:
            break
        await _committed_at_least(settings, group, i * 1000 * len(kinds) + 1)
        worker.signal(signal.SIGKILL)
        worker.start()
    await _drained(settings, group)
    worker.signal(signal.SIGTERM)
    log = (tmp_path / "worker.log").read_text()
    assert "restored" in log, log[-2000:]
    for kind in kinds:
        assert await _topic_state(settings, kind) == _offline_state(kind, sample[kind]), kind


@pytest.mark.data
async def test_two_workers_share_partitions_and_a_rebalance_moves_state(settings: Settings, tmp_path: Path) -> None:
    kind = EventKind.NETFLOW
    evs = _sample(kind, 3000)
    thirds = [evs[:1000], evs[1000:2000], evs[2000:]]
    first, second = WorkerProcess(settings, tmp_path / "w1.log"), WorkerProcess(settings, tmp_path / "w2.log")
    first.start()
    await _publish(settings, kind, thirds[0])
    await _drained(settings, f"{settings.kafka.group_id}-profiles")
    second.start()  # the group rebalances: partitions (and their profiles) split between the two
    await _eventually(lambda: "restored" in (tmp_path / "w2.log").read_text(errors="replace"), timeout=180)
    await _publish(settings, kind, thirds[1])
    await _drained(settings, f"{settings.kafka.group_id}-profiles")
    first.signal(signal.SIGTERM)  # its partitions move to the second, which restores them
    await _publish(settings, kind, thirds[2])
    await _drained(settings, f"{settings.kafka.group_id}-profiles")
    second.signal(signal.SIGTERM)
    w2 = (tmp_path / "w2.log").read_text()
    assert w2.count("restored") >= 3, w2[-2000:]  # its first share, then the first worker's
    assert await _topic_state(settings, kind) == _offline_state(kind, evs)
