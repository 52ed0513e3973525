"""The local Apache Kafka broker (deploy/local/kafka.sh) is a real, working Kafka:
aiokafka round trips, kcat (librdkafka) as an independent client, data surviving a
restart, transactions, and the optional SASL_SSL (SCRAM-SHA-512) listener."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from tests.support.kafka import KafkaBroker, StartKafka, kcat_available, kcat_path


def _topic(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def _produce(topic: str, records: list[tuple[bytes, bytes]], **client: Any) -> list[tuple[int, int]]:
    """Send all records with a producer of ``client`` options (acks=all), wait for every ack;
    return (partition, offset) per record."""
    producer = AIOKafkaProducer(acks="all", **client)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in metas]


async def _consume_all(
    consumer: AIOKafkaConsumer, expected: int, timeout: float = 30.0
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Read (partition, offset, key, value) until ``expected`` records arrived."""
    out: list[tuple[int, int, bytes | None, bytes | None]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(out) < expected:
        if loop.time() > deadline:
            raise TimeoutError(f"consumed {len(out)} of {expected} records")
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        for tp, msgs in batches.items():
            out.extend((tp.partition, m.offset, m.key, m.value) for m in msgs)
    return out


async def _read_back(topic: str, expected: int, **client: Any) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """``expected`` records of ``topic`` from its start, by a consumer of ``client`` options."""
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **client)
    await consumer.start()
    try:
        return await _consume_all(consumer, expected)
    finally:
        await consumer.stop()


def _records(n: int, entities: int = 37) -> list[tuple[bytes, bytes]]:
    return [(f"entity-{i % entities}".encode(), f'{{"seq":{i}}}'.encode()) for i in range(n)]


def _check_roundtrip(
    sent: list[tuple[bytes, bytes]],
    placed: list[tuple[int, int]],
    got: list[tuple[int, int, bytes | None, bytes | None]],
) -> None:
    assert len(got) == len(sent)
    # Same records, nothing lost, nothing duplicated.
    assert sorted((k, v) for _, _, k, v in got) == sorted(sent)
    # Every key lives in exactly one partition (keyed topics keep entity order).
    key_partitions: dict[bytes | None, set[int]] = defaultdict(set)
    for p, _, k, _ in got:
        key_partitions[k].add(p)
    assert all(len(ps) == 1 for ps in key_partitions.values())
    # Per partition: the order read is the order produced, at the offsets the acks named.
    want: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for (key, value), (p, off) in zip(sent, placed, strict=True):
        want[p].append((off, key, value))
    have: dict[int, list[tuple[int, bytes | None, bytes | None]]] = defaultdict(list)
    for p, off, k, v in got:
        have[p].append((off, k, v))
    assert set(have) == set(want)
    for p in want:
        assert have[p] == sorted(want[p]), f"partition {p} out of order"
        assert [o for o, _, _ in have[p]] == list(range(len(have[p])))


# ---------------------------------------------------------------------------- plain


async def test_aiokafka_produce_and_consume_1000_records(kafka: KafkaBroker) -> None:
    topic = _topic("broker.roundtrip")
    kafka.create_topic(topic, partitions=3)
    sent = _records(1000)

    placed = await _produce(topic, sent, bootstrap_servers=kafka.bootstrap, linger_ms=5)
    assert {p for p, _ in placed} == {0, 1, 2}

    got = await _read_back(topic, len(sent), bootstrap_servers=kafka.bootstrap,
                           group_id=f"g-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
    _check_roundtrip(sent, placed, got)


async def test_auto_created_topic_has_three_partitions(kafka: KafkaBroker) -> None:
    topic = _topic("broker.autocreate")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v", key=b"k")
        assert len(await producer.partitions_for(topic)) == 3
    finally:
        await producer.stop()


@pytest.mark.skipif(not kcat_available(), reason="kcat is not installed (apt-get install kcat)")
async def test_aiokafka_produce_kcat_consume(kafka: KafkaBroker) -> None:
    topic = _topic("broker.kcat")
    kafka.create_topic(topic, partitions=3)
    sent = _records(300)
    placed = await _produce(topic, sent, bootstrap_servers=kafka.bootstrap)

    kcat = kcat_path()
    assert kcat is not None
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            kcat,
            "-C",
            "-b",
            kafka.bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p\t%o\t%k\t%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got: list[tuple[int, int, bytes | None, bytes | None]] = []
    for line in proc.stdout.splitlines():
        p, off, k, v = line.split("\t")
        got.append((int(p), int(off), k.encode(), v.encode()))
    got.sort(key=lambda r: (r[0], r[1]))
    _check_roundtrip(sent, placed, got)


async def test_transactions_commit_and_abort(kafka: KafkaBroker) -> None:
    """Exactly-once mode needs the transaction state log (replication factor 1 here)."""
    topic = _topic("broker.txn")
    kafka.create_topic(topic, partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10):
                await producer.send(topic, f"committed-{i}".encode(), key=b"k")
        await producer.begin_transaction()
        for i in range(5):
            await producer.send(topic, f"aborted-{i}".encode(), key=b"k")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"last", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        got = await _consume_all(consumer, 11)
        # Nothing after the last committed record, and no aborted record, ever shows up.
        extra = await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
    assert not any(extra.values())
    assert [v for _, _, _, v in sorted(got)] == [
        *(f"committed-{i}".encode() for i in range(10)),
        b"last",
    ]


# ---------------------------------------------------------------------------- restart


async def test_restart_keeps_records_and_committed_offsets(tmp_path: Path, start_kafka: StartKafka) -> None:
    broker = start_kafka(workdir=tmp_path)
    try:
        topic = _topic("broker.restart")
        group = f"g-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, partitions=3)
        sent = _records(200)
        placed = await _produce(topic, sent, bootstrap_servers=broker.bootstrap)
        # Commit the first half of each partition for a group.
        tps = [TopicPartition(topic, p) for p in range(3)]
        ends = {p: max(o for q, o in placed if q == p) + 1 for p in range(3)}
        committed = {tp: ends[tp.partition] // 2 for tp in tps}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.commit(committed)
        finally:
            await consumer.stop()

        old_pid = broker.pid()
        await asyncio.to_thread(broker.restart)
        assert broker.pid() != old_pid
        assert broker.is_running()

        got = await _read_back(topic, len(sent), bootstrap_servers=broker.bootstrap, group_id=None)
        _check_roundtrip(sent, placed, got)

        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            for tp in tps:
                assert await consumer.committed(tp) == committed[tp]
        finally:
            await consumer.stop()
    finally:
        broker.stop()
    assert not broker.is_running()


# ---------------------------------------------------------------------------- SASL_SSL


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory, start_kafka: StartKafka) -> Iterator[KafkaBroker]:
    """A broker with the extra SASL_SSL listener (SCRAM-SHA-512, generated CA)."""
    broker = start_kafka(workdir=tmp_path_factory.mktemp("kafka-sasl"), sasl_ssl=True)
    try:
        yield broker
    finally:
        broker.stop()


async def test_sasl_ssl_scram_produce_and_consume(secure_kafka: KafkaBroker) -> None:
    topic = _topic("broker.sasl")
    secure_kafka.create_topic(topic, partitions=3)
    sent = _records(100)
    placed = await _produce(topic, sent, **secure_kafka.sasl_client_config())
    got = await _read_back(topic, len(sent), **secure_kafka.sasl_client_config(),
                           group_id=f"g-{uuid.uuid4().hex[:8]}")
    _check_roundtrip(sent, placed, got)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sasl_plain_password": "not-the-password"}, "SaslAuthenticationFailed"),
        ({"sasl_plain_username": "mallory"}, "SaslAuthenticationFailed"),
        # A client that trusts only the system CAs must not accept the broker's certificate.
        ({"ssl_context": "system"}, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["wrong-password", "unknown-user", "untrusted-ca"],
)
async def test_sasl_ssl_refuses_bad_credentials_and_untrusted_certificates(
    secure_kafka: KafkaBroker,
    change: dict[str, object],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = secure_kafka.sasl_client_config()
    config.update(change)
    if config["ssl_context"] == "system":
        config["ssl_context"] = ssl.create_default_context()
    producer = AIOKafkaProducer(**config, request_timeout_ms=5000)
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()
    assert reason in caplog.text
