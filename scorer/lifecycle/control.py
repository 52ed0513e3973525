"""The control plane on Kafka: desired model state per kind and desired rule pack, and what
each scorer serves.

Two compacted topics, one partition each (the latest record per key is the state; one
partition keeps every key's history in order):

- control (``scorer.control``), key ``<kind>`` for a kind's model, ``rules/<pack>`` for a
  rule pack: :class:`DesiredState`, written by ``scorer models|rules deploy --shadow /
  promote / rollback``. Every scorer process reads it from the beginning with its own
  group-less consumer, so all members of a consumer group (and a restarted process)
  converge on the same versions.
- status (``scorer.status``), key ``<process>/<key>``: :class:`ServingStatus`, written by
  each scorer when it starts, applies a state or refuses one (with the reason).

For a rule pack, ``kind`` is the control key (``rules/<pack>``) and ``model`` the pack's name.

Kafka rather than a file or an HTTP call: the scorers already trust it, it reaches every
process of every group, survives restarts, and keeps who-changed-what-and-why.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

import msgspec

from scorer.config import KafkaSettings, LifecycleSettings
from scorer.errors import KafkaUnavailable
from scorer.kafka import COMPACTED, TopicSpec, admin, make_producer
from scorer.pipeline.records import OutputRecord


class DesiredState(msgspec.Struct, kw_only=True, frozen=True):
    """What every scorer should serve for one kind (or rule pack)."""

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
    # Served, but worth a look: a rule pack the EDR model was not trained with.
    warning: str | None = None


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def issuer() -> str:
    return f"{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}@{socket.gethostname()}"


def process_id(kafka: KafkaSettings) -> str:
    return f"{kafka.group_id}/{socket.gethostname()}:{os.getpid()}"


async def ensure_topics(kafka: KafkaSettings, lifecycle: LifecycleSettings) -> None:
    """Create the control and status topics (compacted, one partition) if absent.

    A refusal (e.g. no CREATE permission where an admin provisioned the topics) is logged:
    reading them still works, and a missing one simply holds no state.
    """
    specs = [TopicSpec(t, 1, config=COMPACTED) for t in (lifecycle.control_topic, lifecycle.status_topic)]
    try:
        await admin.ensure_topics(kafka, specs, refused="warn")
    except OSError as exc:
        raise KafkaUnavailable(f"kafka at {kafka.bootstrap_servers}: {exc}") from None


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
