"""scorer.kafka's admin on the real broker: topics created with their settings (never
auto-created with the broker's defaults by asking about them), existing ones left alone,
a refusal warned about or raised as asked, replicated as the setting and the cluster say."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.metadata import MetadataRequest

import scorer.kafka.admin as admin_module
from scorer.config import KafkaSettings
from scorer.kafka import COMPACTED, TopicRefused, TopicSpec, admin_client, ensure_topics, topic_partition_list
from scorer.kafka.admin import new_topic
from streams.kafka import ensure_profile_topics
from tests.support.kafka import KafkaBroker


def _name(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def _config(kafka: KafkaSettings, topic: str, key: str = "cleanup.policy") -> str:
    async with admin_client(kafka) as admin:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    ((_, _, _, _, entries),) = response.resources
    return next(str(value) for name, value, *_ in entries if name == key)


async def _replicas(kafka: KafkaSettings, topic: str) -> list[int]:
    """The replica count of each partition of ``topic``."""
    async with admin_client(kafka) as admin:
        (described,) = await admin.describe_topics([topic])
    return [len(p["replicas"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])]


async def test_creates_missing_topics_with_their_settings_and_leaves_existing_ones(kafka: KafkaBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    existing, compacted = _name("layer.existing"), _name("layer.compacted")
    kafka.create_topic(existing, partitions=2)
    counts = await ensure_topics(settings, [TopicSpec(existing, 5), TopicSpec(compacted, 1, config=COMPACTED)])
    assert counts == {existing: 2, compacted: 1}, "an existing topic keeps its count; the caller judges it"
    assert await _config(settings, compacted) == "compact"
    assert [tp.partition for tp in await topic_partition_list(settings, [existing, _name("absent")])] == [0, 1]


async def test_asking_about_an_absent_topic_does_not_create_it(kafka: KafkaBroker) -> None:
    # The local broker auto-creates topics (Kafka's default): a metadata request naming one
    # would create it uncompacted, and the profile worker would then keep it so.
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap, group_id="layer")
    events, profiles = _name("layer.events"), _name("layer.profiles")
    assert await topic_partition_list(settings, [profiles]) == []
    assert await topic_partition_list(settings, [profiles]) == [], "still absent after being asked about"
    kafka.create_topic(events, partitions=3)
    await ensure_profile_topics(settings, {events: profiles})
    assert await _config(settings, profiles) == "compact"
    assert len(await topic_partition_list(settings, [profiles])) == 3, "co-partitioned with its events"


async def test_topics_are_described_by_name_not_by_listing_the_cluster(
    kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every metadata request names its topics (or none: the brokers only): a request for all of
    # them would carry the whole cluster's metadata, MBs on a cluster of thousands of topics.
    sent: list[tuple[list[str] | None, bool | None]] = []
    send = AIOKafkaAdminClient._send_request

    async def spy(self: AIOKafkaAdminClient, request: Any, node_id: int | None = None) -> Any:
        if isinstance(request, MetadataRequest):
            sent.append((request._topics, request._allow_auto_topic_creation))
        return await send(self, request, node_id)

    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    others = [_name("layer.other") for _ in range(3)]
    for other in others:
        kafka.create_topic(other, partitions=1)
    existing, created = _name("layer.existing"), _name("layer.created")
    kafka.create_topic(existing, partitions=2)
    monkeypatch.setattr(AIOKafkaAdminClient, "_send_request", spy)
    assert await ensure_topics(settings, [TopicSpec(existing), TopicSpec(created, 4)]) == {existing: 2, created: 4}
    assert [tp.topic for tp in await topic_partition_list(settings, [existing])] == [existing] * 2
    assert sent, "no metadata request seen"
    assert all(topics is not None and not set(others) & set(topics) for topics, _ in sent), sent
    assert all(auto is False for _, auto in sent), "a request naming a topic must not let the broker create it"
    assert {existing, created} <= {t for topics, _ in sent for t in topics or ()}


async def test_without_aiokafkas_private_send_every_topic_is_asked_for_as_before(
    kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The named request goes through AIOKafkaAdminClient._send_request; an aiokafka without it
    # makes the public calls (every topic, filtered here), and still creates nothing by asking.
    monkeypatch.setattr(admin_module, "_SEND", "_send_request_renamed")
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    existing, created, absent = _name("layer.existing"), _name("layer.created"), _name("layer.absent")
    kafka.create_topic(existing, partitions=2)
    assert await ensure_topics(settings, [TopicSpec(existing), TopicSpec(created, 3)]) == {existing: 2, created: 3}
    assert await topic_partition_list(settings, [absent]) == []
    assert [tp.partition for tp in await topic_partition_list(settings, [created, absent])] == [0, 1, 2]


async def test_a_refusal_raises_or_is_logged(kafka: KafkaBroker, caplog: pytest.LogCaptureFixture) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    bad = TopicSpec(_name("layer.refused"), 1, config={"cleanup.policy": "no-such-policy"})
    with pytest.raises(TopicRefused, match=bad.name):
        await ensure_topics(settings, [bad])
    with caplog.at_level(logging.WARNING, logger="scorer.kafka.admin"):
        assert await ensure_topics(settings, [bad], refused="warn") == {}
    assert f"cannot create topic {bad.name}" in caplog.text


@pytest.mark.parametrize(("brokers", "setting", "spec", "expected"), [
    (1, None, TopicSpec("t"), (1, "1")),
    (2, None, TopicSpec("t"), (2, "1")),
    (3, None, TopicSpec("t"), (3, "2")),
    (6, None, TopicSpec("t"), (3, "2")),
    (6, 5, TopicSpec("t"), (5, "4")),
    (6, 5, TopicSpec("t", replication=1), (1, "1")),  # the caller's own count wins
    (3, None, TopicSpec("t", config={"min.insync.replicas": "3"}), (3, "3")),
], ids=["one-broker", "two", "three", "six", "setting", "spec", "spec-config"])
def test_replication_of_a_created_topic(brokers: int, setting: int | None, spec: TopicSpec,
                                        expected: tuple[int, str]) -> None:
    topic = new_topic(spec, KafkaSettings(replication_factor=setting), brokers)
    assert (topic.replication_factor, topic.topic_configs["min.insync.replicas"]) == expected


async def test_replication_on_one_broker(kafka: KafkaBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap)
    created, pinned = _name("layer.replicated"), _name("layer.pinned")
    await ensure_topics(settings, [TopicSpec(created, 2)])
    assert await _replicas(settings, created) == [1, 1]
    assert await _config(settings, created, "min.insync.replicas") == "1"
    # More replicas than brokers: refused, not created with fewer behind the user's back.
    with pytest.raises(TopicRefused, match=pinned):
        await ensure_topics(settings.model_copy(update={"replication_factor": 2}), [TopicSpec(pinned, 1)])
