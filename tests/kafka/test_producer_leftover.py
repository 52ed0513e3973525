"""abort_leftover_transaction: the transaction an exactly-once scorer commits before it reads
its committed offsets (issue 19) puts a COMMIT marker of its producer id on every output
partition and on the group's offsets partition, and moves no committed offset."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import TopicPartition

from scorer.config import KafkaSettings
from scorer.kafka.clients import make_consumer, make_producer, make_reader
from scorer.kafka.producer import abort_leftover_transaction
from tests.support.kafka import KafkaBroker


async def test_leftover_abort_marks_every_output_partition_and_keeps_the_offsets(kafka: KafkaBroker) -> None:
    prefix = f"lo{uuid.uuid4().hex[:8]}"
    outputs, inputs, group = [f"{prefix}.out1", f"{prefix}.out2"], f"{prefix}.in", f"{prefix}-group"
    for name in [*outputs, inputs]:
        await kafka.acreate_topic(name, 3)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id=group, client_id=prefix)
    txn_id = f"{group}-{prefix}"
    first = make_producer(settings, transactional_id=txn_id)
    await first.start()
    try:  # a committed batch: one output, and its input offset
        async with first.transaction():
            await (await first.send(outputs[0], b"scored", key=b"k", partition=1))
            await first.send_offsets_to_transaction({TopicPartition(inputs, 2): 7}, group)
    finally:
        await first.stop()

    reader = make_reader(settings, "test")
    await reader.start()
    tps = [TopicPartition(t, p) for t in outputs for p in range(3)]
    try:
        before = await reader.end_offsets(tps)
        second = make_producer(settings, transactional_id=txn_id)
        await second.start()
        try:
            await abort_leftover_transaction(second, outputs, group)
        finally:
            await second.stop()
        # The coordinator writes markers after it answers EndTxn: wait for them, 30 s at most.
        deadline = time.monotonic() + 30
        while (after := await reader.end_offsets(tps)) != {tp: before[tp] + 1 for tp in tps}:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        fetched = await reader.getmany(timeout_ms=5000)
    finally:
        await reader.stop()
    # One control record (the marker) per partition, data on none.
    assert {tp: after[tp] - before[tp] for tp in tps} == dict.fromkeys(tps, 1)
    assert [m.value for msgs in fetched.values() for m in msgs] == [b"scored"]

    consumer = make_consumer(settings, [])
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(inputs, 2)) == 7
        assert await consumer.committed(TopicPartition(inputs, 0)) is None
    finally:
        await consumer.stop()
