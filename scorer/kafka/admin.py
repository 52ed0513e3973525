"""Topics: what exists, with how many partitions, and creating the ones that are missing.

Metadata is asked for the topics in question only, and never lets the broker create one: a
Metadata request that names a topic makes a broker with ``auto.create.topics.enable``
(Kafka's default) create it on the spot with the broker's defaults, unless the request says
``allow_auto_topic_creation=false`` (version 4 and later, Kafka >= 0.11), which aiokafka's
``describe_topics`` does not. A topic created that way would be uncompacted where it should
be compacted, or co-partitioned with the wrong count. (Asking for every topic instead, as
this module once did, decodes the whole cluster's metadata: MBs, many times at each start,
on a cluster of thousands of topics.)

A topic created here is replicated as ``KafkaSettings.replication_factor`` says, by default
on min(3, brokers), with min.insync.replicas one less: one broker of three may be down
without a write being refused or an acked one lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from scorer.config import KafkaSettings
from scorer.kafka.clients import admin_client

log = logging.getLogger(__name__)

# How aiokafka's admin client (0.11 to 0.14 at least) sends a request: private, so looked up,
# and an aiokafka without it makes this module ask for every topic through the public calls.
_SEND = "_send_request"
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication: int | None = None  # None: KafkaSettings.replication_factor
    config: Mapping[str, str] = field(default_factory=dict)


def new_topic(spec: TopicSpec, kafka: KafkaSettings, brokers: int) -> NewTopic:
    """What ``spec`` is created as on a cluster of ``brokers``; a min.insync.replicas in
    its config is kept."""
    replication = spec.replication or kafka.replication_factor or min(3, brokers)
    config = {"min.insync.replicas": str(max(1, replication - 1))} | dict(spec.config)
    return NewTopic(spec.name, spec.partitions, replication, topic_configs=config)


class TopicRefused(KafkaError):  # type: ignore[misc]
    """The broker refused to create a topic (no CREATE permission, a bad setting...)."""


async def _metadata(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, Any] | None:
    """The cluster's metadata for ``topics`` (an empty list: none, the brokers only), creating
    none of them; None where the admin client has no :data:`_SEND`: the callers then ask for
    every topic through the public calls, as before."""
    send = getattr(admin, _SEND, None)
    if send is None:
        return None
    response = await send(MetadataRequest(topics, allow_auto_topic_creation=False))
    described: dict[str, Any] = response.to_object()
    return described


async def describe(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[dict[str, Any]]:
    """``describe_topics`` of ``topics`` alone: each one's error code and partitions (an absent
    one: UNKNOWN_TOPIC_OR_PARTITION and none), without creating any."""
    names = sorted(set(topics))
    if not names:  # (an empty list would describe no topic, but say so without a request)
        return []
    metadata = await _metadata(admin, names)
    if metadata is None:
        return [t for t in await admin.describe_topics() if t["topic"] in names]
    found: list[dict[str, Any]] = metadata["topics"]
    return found


async def broker_count(admin: AIOKafkaAdminClient) -> int:
    """How many brokers the cluster has (``describe_cluster`` asks for every topic too)."""
    metadata = await _metadata(admin, [])
    return len((metadata if metadata is not None else await admin.describe_cluster())["brokers"])


async def topic_partitions(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> dict[str, list[int]]:
    """Topic -> its partition numbers, for those of ``topics`` that exist (and we may see)."""
    return {t["topic"]: sorted(int(p["partition"]) for p in t["partitions"])
            for t in await describe(admin, topics) if not t.get("error_code") and t.get("partitions")}


async def topic_partition_list(kafka: KafkaSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of those ``topics`` that exist (absent ones are left out)."""
    async with admin_client(kafka) as admin:
        found = await topic_partitions(admin, topics)
    return sorted(TopicPartition(t, p) for t, parts in found.items() for p in parts)


async def wait_for_partitions(admin: AIOKafkaAdminClient, topics: Iterable[str], *, tries: int = 200,
                              every_s: float = 0.05) -> dict[str, int]:
    """Partition counts of ``topics`` once every partition of each has a leader.

    Creation is asynchronous in the broker: sending to a partition without a leader fails.
    Raises TimeoutError when some topic is still absent or leaderless after ``tries``.
    """
    names = list(topics)
    ready: dict[str, int] = {}
    for _ in range(tries):
        described = {t["topic"]: t for t in await describe(admin, names)}
        ready = {name: len(t["partitions"]) for name, t in described.items()
                 if not t.get("error_code") and t["partitions"]
                 and all(p.get("leader", -1) >= 0 for p in t["partitions"])}
        if len(ready) == len(names):
            return ready
        await asyncio.sleep(every_s)
    raise TimeoutError(f"topics {sorted(set(names) - set(ready))} have no leader for every partition")


async def ensure_topics(kafka: KafkaSettings, specs: Iterable[TopicSpec], *,
                        refused: Literal["warn", "raise"] = "raise") -> dict[str, int]:
    """Create the topics of ``specs`` that do not exist yet; topic -> partition count of each.

    An existing topic is left as it is (its count is returned; the caller decides whether
    another count is acceptable). A topic created here is returned only once every
    partition has a leader. ``refused="warn"``: a refusal is logged and the topic left out
    (brokers in production often restrict CREATE, the topics may be provisioned elsewhere,
    e.g. by Terraform); ``"raise"``: :class:`TopicRefused`. Another process creating the
    same topic at the same time is not a refusal.
    """
    wanted = {s.name: s for s in specs}
    async with admin_client(kafka) as admin:
        counts = {t: len(p) for t, p in (await topic_partitions(admin, wanted)).items()}
        missing = [s for name, s in wanted.items() if name not in counts]
        if not missing:
            return counts
        created = [s.name for s in missing]
        try:
            brokers = await broker_count(admin)
            response = await admin.create_topics([new_topic(s, kafka, brokers) for s in missing])
        except KafkaError as exc:
            if refused == "raise":
                raise
            log.warning("could not create topics %s: %s", created, exc)
            return counts
        for topic, code, *rest in getattr(response, "topic_errors", []):
            if code in (0, TopicAlreadyExistsError.errno):
                continue
            if refused == "raise":
                raise TopicRefused(f"cannot create topic {topic}: error {code} {rest}")
            log.warning("cannot create topic %s (error %s %s); assuming it is provisioned", topic, code, rest)
            created.remove(topic)
        if created:
            counts |= await wait_for_partitions(admin, created)
        return counts
