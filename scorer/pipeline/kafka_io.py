"""aiokafka clients built from settings, and producing a batch of outputs with acks."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from scorer.config import KafkaSettings
from scorer.pipeline.partitioner import partitions_of
from scorer.pipeline.records import OutputRecord

log = logging.getLogger(__name__)


def security_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumers, producers and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
        ctx.check_hostname = kafka.ssl_check_hostname
        if kafka.ssl_certfile:
            ctx.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
        opts["ssl_context"] = ctx
    if kafka.security_protocol.startswith("SASL"):
        opts["sasl_mechanism"] = kafka.sasl_mechanism or "SCRAM-SHA-512"
        opts["sasl_plain_username"] = kafka.sasl_username
        opts["sasl_plain_password"] = password = kafka.password()
        if password:
            redact_in_logs(password)
    return opts


class _Redactor:
    """Masks registered secrets in every log record, as the record is made.

    aiokafka logs each request at DEBUG, SASL/PLAIN's authenticate request included, and
    that request carries the password itself: without this, DEBUG logging leaks it. A
    record factory, not a handler filter: a filter covers only the handlers it was added
    to (not those added later, nor other loggers' handlers), and handlers format the
    traceback from ``exc_info`` after their filters ran.
    """

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self._make: Callable[..., logging.LogRecord] | None = None

    def install(self) -> None:
        if self._make is None:
            self._make = logging.getLogRecordFactory()  # chained: keep what others installed
            logging.setLogRecordFactory(self._record)

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        assert self._make is not None
        record = self._make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when a handler emits
            return record
        if (masked := self._mask(message)) != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # What Formatter.format would write; set only when it must change, so custom
            # formatters still format clean tracebacks their own way.
            text = logging.Formatter().formatException(record.exc_info)
            if (masked := self._mask(text)) != text:
                record.exc_text = masked
        if record.stack_info:
            record.stack_info = self._mask(record.stack_info)
        return record

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "**********")
        return text


_REDACTOR = _Redactor()


def redact_in_logs(secret: str) -> None:
    """Mask ``secret`` (and its bytes-repr form) in every log record made from now on."""
    _REDACTOR.secrets.update({secret, repr(secret.encode())[2:-1]})
    _REDACTOR.install()


def make_consumer(kafka: KafkaSettings, topics: Sequence[str], **extra: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        group_id=kafka.group_id,
        group_instance_id=kafka.group_instance_id,
        client_id=kafka.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=max(1000, kafka.session_timeout_ms // 5),
        max_partition_fetch_bytes=kafka.max_partition_fetch_bytes,
        fetch_max_wait_ms=100,
        **security_options(kafka),
        **extra,
    )


def make_producer(kafka: KafkaSettings, *, transactional_id: str | None = None) -> AIOKafkaProducer:
    opts: dict[str, Any] = {
        "client_id": kafka.client_id,
        "acks": "all",
        "enable_idempotence": True,
        # Batches are built per partition by send_all(): waiting to fill them only adds latency.
        "linger_ms": 0,
        "max_request_size": 4 * 1024 * 1024,
        "max_batch_size": 512 * 1024,
        "compression_type": None,
    }
    if transactional_id:
        opts["transactional_id"] = transactional_id
    return AIOKafkaProducer(**opts, **security_options(kafka))


async def produce_all(producer: AIOKafkaProducer, records: Sequence[OutputRecord]) -> None:
    """Send every record and wait until the broker acknowledged all of them."""
    await asyncio.gather(*await send_all(producer, records))


async def send_all(producer: AIOKafkaProducer, records: Sequence[OutputRecord]) -> list[Any]:
    """Hand every record to the producer; returns the delivery futures (acks) to await.

    Records are packed into one BatchBuilder per (topic, partition), placed by key with
    Kafka's default partitioner exactly as ``send()`` would. A per-record ``send()`` costs
    tens of microseconds of Python per message; batches cost a fraction of that.
    """
    if not records:
        return []
    partitions: dict[str, list[int]] = {}
    for topic in {r.topic for r in records}:
        partitions[topic] = sorted(await producer.partitions_for(topic))
    placement = _placement(records, partitions)
    open_batches: dict[tuple[str, int], Any] = {}
    futures: list[Any] = []
    for r, partition in zip(records, placement, strict=True):
        tp = (r.topic, partition)
        batch = open_batches.get(tp)
        if batch is None:
            batch = open_batches[tp] = producer.create_batch()
        if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
            futures.append(await producer.send_batch(batch, tp[0], partition=tp[1]))
            batch = open_batches[tp] = producer.create_batch()
            if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
                # Larger than a whole batch: the plain path splits nothing, it just sends.
                futures.append(await producer.send(r.topic, r.value, key=r.key, partition=tp[1],
                                                   headers=list(r.headers) or None))
                del open_batches[tp]
    for (topic, partition), batch in open_batches.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


def _placement(records: Sequence[OutputRecord], partitions: dict[str, list[int]]) -> list[int]:
    """The partition of every record: by key exactly where ``send()`` puts it (murmur2),
    keyless ones (none today) round-robin."""
    placement = [0] * len(records)
    keyed: dict[int, list[int]] = {}  # partition count -> rows (one hash pass per count)
    for i, r in enumerate(records):
        parts = partitions[r.topic]
        if r.key is None:
            placement[i] = parts[i % len(parts)]
        else:
            keyed.setdefault(len(parts), []).append(i)
    for count, rows in keyed.items():
        index = partitions_of([records[i].key or b"" for i in rows], count).tolist()
        for i, j in zip(rows, index, strict=True):
            placement[i] = partitions[records[i].topic][j]
    return placement


async def ensure_topics(kafka: KafkaSettings, topics: Sequence[str], partitions: int = 3) -> None:
    """Create missing output topics, so consumers can subscribe before the first alert.

    Brokers in production often disable auto-creation and restrict CREATE: a refusal is
    logged, not fatal (the topics may be managed elsewhere, e.g. by Terraform).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**security_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        log.warning("could not create output topics %s: %s", list(topics), exc)
    finally:
        await admin.close()
