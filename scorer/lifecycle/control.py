"""The control plane on Kafka: desired model state per kind, and what each scorer serves.

Two compacted topics, one partition each (the latest record per key is the state; one
partition keeps every key's history in order):

- control (``scorer.control``), key ``<kind>``: :class:`DesiredState`, written by
  ``scorer models deploy --shadow / promote / rollback``. Every scorer process reads it from
  the beginning with its own group-less consumer, so all members of a consumer group (and a
  restarted process) converge on the same versions.
- status (``scorer.status``), key ``<process>/<kind>``: :class:`ServingStatus`, written by
  each scorer when it starts, applies a state or refuses one (with the reason).

Kafka rather than a file or an HTTP call: the scorers already trust it, it reaches every
process of every group, survives restarts, and keeps who-changed-what-and-why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from scorer.config import KafkaSettings, LifecycleSettings
from scorer.errors import KafkaUnavailable
from scorer.pipeline.kafka_io import make_producer, security_options
from scorer.pipeline.records import OutputRecord

T = TypeVar("T")
log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = 36
_COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}


class DesiredState(msgspec.Struct, kw_only=True, frozen=True):
    """What every scorer should serve for one kind."""

    kind: str
    model: str
    production: str
    shadow: str | None = None
    # The production version this state replaced: where ``rollback`` returns to.
    previous: str | None = None
    action: str = ""
    issued_by: str = ""
    reason: str = ""
    issued_at: str = ""
    issued_ms: int = 0


class ServingStatus(msgspec.Struct, kw_only=True, frozen=True):
    """What one scorer process serves for one kind, and the last refusal if any."""

    process: str
    kind: str
    model: str
    production: str
    shadow: str | None = None
    backend: str = ""
    applied_offset: int = -1  # control-topic offset of the state applied (-1: configured)
    refused: str | None = None
    refused_offset: int = -1
    at: str = ""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def issuer() -> str:
    return f"{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}@{socket.gethostname()}"


def process_id(kafka: KafkaSettings) -> str:
    return f"{kafka.group_id}/{socket.gethostname()}:{os.getpid()}"


async def ensure_topics(kafka: KafkaSettings, lifecycle: LifecycleSettings) -> None:
    """Create the control and status topics (compacted, one partition) if absent."""
    admin = AIOKafkaAdminClient(**security_options(kafka))
    try:
        await admin.start()
        wanted = [NewTopic(t, 1, 1, topic_configs=dict(_COMPACTED))
                  for t in (lifecycle.control_topic, lifecycle.status_topic)]
        response = await admin.create_topics(wanted)
        for topic, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                # e.g. no CREATE permission where an admin provisioned the topics: reading
                # them still works, and a missing one simply holds no state.
                log.warning("cannot create topic %s (error %s %s); assuming it is provisioned", topic, code, rest)
                return
        for _ in range(200):  # creation is asynchronous: wait for a leader
            described = await admin.describe_topics([t.name for t in wanted])
            if all(p.get("leader", -1) >= 0 for d in described for p in d.get("partitions", [{}])):
                return
            await asyncio.sleep(0.05)
    except OSError as exc:
        raise KafkaUnavailable(f"kafka at {kafka.bootstrap_servers}: {exc}") from None
    finally:
        await admin.close()


def group_less_consumer(kafka: KafkaSettings, **extra: Any) -> AIOKafkaConsumer:
    # No group: every process reads the whole control topic; nothing is committed.
    return AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed", fetch_max_wait_ms=200, **security_options(kafka), **extra,
    )


async def assign_from_start(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    if partitions is None:
        await consumer._client.force_metadata_update()  # a topic created a moment ago
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if tps:
        await consumer.seek_to_beginning(*tps)
    return tps


async def behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """True while the consumer has not yet read up to ``end`` on some partition."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return True
    return False


async def read_latest(
    kafka: KafkaSettings, topic: str, type_: type[T], *, timeout_s: float = 10.0
) -> dict[str, tuple[int, T]]:
    """Key -> (offset, latest value) of a compacted topic, read from the start to its end."""
    consumer = group_less_consumer(kafka)
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
    except (OSError, TimeoutError) as exc:
        await consumer.stop()
        raise KafkaUnavailable(f"kafka at {kafka.bootstrap_servers}: {exc!r}") from None
    out: dict[str, tuple[int, T]] = {}
    try:
        tps = await assign_from_start(consumer, topic)
        end = await consumer.end_offsets(tps) if tps else {}
        deadline = time.monotonic() + timeout_s
        while await behind(consumer, end):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"{topic}: not read to its end within {timeout_s:.0f}s")
            fetched = await consumer.getmany(timeout_ms=200)
            for messages in fetched.values():
                for m in messages:
                    decode_into(out, m.key, m.value, m.offset, type_)
    finally:
        await consumer.stop()
    return out


def decode_into(out: dict[str, tuple[int, T]], key: bytes | None, value: bytes | None, offset: int,
                type_: type[T]) -> None:
    """Fold one compacted-topic record into ``out``; a tombstone deletes, junk is skipped."""
    if key is None:
        return
    name = key.decode("utf-8", "replace")
    if value is None:
        out.pop(name, None)
        return
    with contextlib.suppress(msgspec.DecodeError):  # a hand-written record: ignored, never fatal
        out[name] = (offset, msgspec.json.decode(value, type=type_))


async def publish(kafka: KafkaSettings, record: OutputRecord) -> int:
    """Produce one record, acknowledged by the broker; its offset."""
    producer = make_producer(kafka)
    try:
        await producer.start()
        meta = await producer.send_and_wait(record.topic, record.value, key=record.key)
    except OSError as exc:
        raise KafkaUnavailable(f"kafka at {kafka.bootstrap_servers}: {exc}") from None
    finally:
        await producer.stop()
    return int(meta.offset)


def state_record(topic: str, state: DesiredState) -> OutputRecord:
    return OutputRecord(topic, msgspec.json.encode(state), state.kind.encode())


def status_record(topic: str, status: ServingStatus) -> OutputRecord:
    return OutputRecord(topic, msgspec.json.encode(status), f"{status.process}/{status.kind}".encode())
