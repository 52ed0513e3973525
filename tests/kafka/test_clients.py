"""The client factories carry the metadata refresh age to every client they make: it bounds
how long a consumer fetches from a leader that lost its partitions without an error to tell
it (a stale leader; scorer.kafka.view re-reads metadata on the produce errors one gives, and
takes the view most brokers share: docs/reliability.md). Their connections read a large
fetch response without pausing the socket on the way."""

from __future__ import annotations

import uuid
from asyncio import selector_events
from typing import Any

import pytest
from aiokafka import TopicPartition

from scorer.config import KafkaSettings
from scorer.kafka import produce_batched
from scorer.kafka.clients import make_consumer, make_producer, make_reader
from tests.kafka.test_fetch import Out
from tests.support.kafka import KafkaBroker


async def test_every_client_refreshes_metadata_at_the_configured_age() -> None:
    kafka = KafkaSettings(metadata_max_age_ms=7_000)
    producer = make_producer(kafka)
    consumer = make_consumer(kafka, ["events.netflow"])
    reader = make_reader(kafka, "view")
    ages = [producer.client._metadata_max_age_ms, consumer._client._metadata_max_age_ms,
            reader._client._metadata_max_age_ms]
    assert ages == [7_000, 7_000, 7_000]
    assert KafkaSettings().metadata_max_age_ms == 30_000, "Kafka's own 5 minutes would be a 5-minute stall"


async def test_consumers_check_record_crcs_only_when_asked() -> None:
    # Off by default as in librdkafka: 0.3-1.0 us of an event's ~3.3 us of consumption here.
    assert KafkaSettings().check_crcs is False
    for check in (False, True):
        kafka = KafkaSettings(check_crcs=check)
        consumer, reader = make_consumer(kafka, ["events.netflow"]), make_reader(kafka, "view")
        assert (consumer._check_crcs, reader._check_crcs) == (check, check)


async def test_a_large_fetch_response_is_read_without_pausing_the_socket(
    kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multi-MB fetch response: aiokafka's 64 KiB reader limit paused and resumed the socket
    every 256 KiB read; the clients' connections read it through (scorer.kafka.clients)."""
    topic = f"clients.{uuid.uuid4().hex[:10]}"
    await kafka.acreate_topic(topic, 1)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, client_id=topic)
    producer = make_producer(settings)
    await producer.start()
    try:
        value = bytes(range(256)) * 8  # 2 KiB, incompressible enough for a plain batch
        await produce_batched(producer, [Out(topic, value, None) for _ in range(2048)])  # 4 MiB
    finally:
        await producer.stop()
    pauses: list[object] = []
    transports: Any = vars(selector_events)["_SelectorTransport"]  # private to asyncio, not in its stubs
    pause = transports.pause_reading

    def counted(transport: Any) -> None:
        pauses.append(transport)
        pause(transport)

    monkeypatch.setattr(transports, "pause_reading", counted)
    consumer = make_consumer(settings, [], group_id=None, max_partition_fetch_bytes=8 * 2**20)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        read = 0
        while read < 2048:
            got = await consumer.getmany(tp, timeout_ms=5000)
            assert got, "the records were not fetched"
            read += sum(len(records) for records in got.values())
    finally:
        await consumer.stop()
    assert read == 2048 and pauses == []
