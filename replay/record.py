"""Recording Kafka topics to JSON lines and reading them back.

One line per record: ``topic, partition, offset, timestamp`` (ms), ``timestamp_type``
(0 CreateTime, 1 LogAppendTime), ``key``, ``value`` and ``headers`` (``[name, value]``
pairs); keys, values and header values are base64 because they are bytes. Partitions are
merged by timestamp, each keeping its own order, so an as-recorded replay of the file
follows the topic's timeline and writes every partition back in the same order.

The same dump serves evaluation: alerts and scores collected from Kafka keep their Kafka
timestamps, from which eval computes the end-to-end latency.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Iterable
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from scorer.captures.recorded import Envelope
from scorer.config import Settings
from scorer.errors import ConfigError
from scorer.kafka import (
    TopicSpec,
    admin_client,
    ensure_topics,
    make_reader,
    settled_end_offsets,
    topic_partition_list,
)

Offsets = dict[TopicPartition, int]


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return make_reader(settings.kafka, "replay")


async def end_offsets(settings: Settings, topics: Iterable[str], *, settle_s: float | None = None) -> Offsets:
    """The end a read_committed reader reaches now on every partition of ``topics`` (absent
    topics: none): the last stable offset, which stops before any undecided transaction.

    With ``settle_s``: the end once the transactions already written there are decided (a
    transactional writer's offsets commit is visible before its output markers may be), or,
    when that stalls for ``settle_s``, the end as it is then.
    """
    tps = await topic_partition_list(settings.kafka, topics)
    if not tps:
        return {}
    if settle_s is not None and (settled := await settled_end_offsets(settings.kafka, tps, stall_s=settle_s)):
        return settled
    consumer = _consumer(settings)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def read_range(settings: Settings, start: Offsets, end: Offsets) -> list[Envelope]:
    """Records from ``start`` (default: the beginning) up to ``end`` of each partition."""
    todo = {tp: off for tp, off in end.items() if off > start.get(tp, 0)}
    if not todo:
        return []
    consumer = _consumer(settings)
    await consumer.start()
    per_partition: dict[TopicPartition, list[Envelope]] = {tp: [] for tp in todo}
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, start.get(tp, 0))
        while todo:
            fetched = await consumer.getmany(*todo, timeout_ms=500)
            for tp, msgs in fetched.items():
                per_partition[tp] += [
                    Envelope(
                        m.topic,
                        m.partition,
                        m.offset,
                        m.timestamp,
                        m.timestamp_type,
                        m.key,
                        m.value,
                        [(k, bytes(v)) for k, v in m.headers or ()],
                    )
                    for m in msgs
                    if m.offset < end[tp]
                ]
            for tp in list(todo):
                if await consumer.position(tp) >= end[tp]:
                    del todo[tp]
    finally:
        await consumer.stop()
    # Merge by timestamp; heapq.merge keeps each partition's own order whatever its timestamps.
    ordered = [per_partition[tp] for tp in sorted(per_partition)]
    return list(heapq.merge(*ordered, key=lambda e: e.timestamp))


def write_envelopes(records: Iterable[Envelope], out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    encoder = msgspec.json.Encoder()
    n = 0
    with out.open("wb") as fh:
        for env in records:
            fh.write(encoder.encode(env) + b"\n")
            n += 1
    return n


async def record_topics(settings: Settings, topics: list[str], out: Path) -> int:
    """``scorer record``: every record of ``topics`` as they are now, to ``out``."""
    end = await end_offsets(settings, topics)
    missing = set(topics) - {tp.topic for tp in end}
    if missing:
        raise ConfigError(f"no such topic: {', '.join(sorted(missing))}")
    return write_envelopes(await read_range(settings, {}, end), out)


async def ensure_partitions(settings: Settings, topic: str, needed: int) -> None:
    """Create ``topic`` with ``needed`` partitions if absent; refuse one that has fewer."""
    try:
        have = (await ensure_topics(settings.kafka, [TopicSpec(topic, needed)]))[topic]
    except TimeoutError:
        raise ConfigError(f"topic {topic} did not get {needed} partitions with leaders") from None
    if have < needed:
        raise ConfigError(
            f"topic {topic} has {have} partitions, the recording needs {needed}: "
            "partition numbers are kept, so create it with enough partitions"
        )


async def wait_committed(
    settings: Settings, group: str, produced: dict[tuple[str, int], int], timeout_s: float
) -> bool:
    """Wait until ``group`` committed past every produced offset: the scorer commits only
    after its alerts are acked, so by then every alert of the replay is in its topic."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with admin_client(settings.kafka) as admin:
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = [
                tp
                for tp, last in produced.items()
                if (c := committed.get(TopicPartition(*tp))) is None or c.offset <= last
            ]
            if not behind or loop.time() > deadline:
                return not behind
            await asyncio.sleep(0.25)
