"""Topics the service creates itself on a three-broker cluster: replicated on three brokers
with min.insync.replicas 2 by default, as ``SCORER_KAFKA__REPLICATION_FACTOR`` says otherwise
(opt-in with the other cluster tests: ``SCORER_CLUSTER_TESTS=1``)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from scorer.config import KafkaSettings, LifecycleSettings
from scorer.kafka import admin_client
from scorer.lifecycle.control import ensure_topics
from tests.support.cluster import KafkaCluster

pytestmark = pytest.mark.slow


async def _replication(kafka: KafkaSettings, topic: str) -> tuple[list[int], str]:
    """The replica count of each partition of ``topic``, and its min.insync.replicas."""
    async with admin_client(kafka) as admin:
        (described,) = await admin.describe_topics([topic])
        (configs,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    ((_, _, _, _, entries),) = configs.resources
    return ([len(p["replicas"]) for p in described["partitions"]],
            next(str(value) for name, value, *_ in entries if name == "min.insync.replicas"))


@pytest.mark.parametrize(("setting", "expected"), [(None, ([3], "2")), (2, ([2], "1"))], ids=["default", "two"])
async def test_the_control_topics_are_replicated_as_set(cluster: KafkaCluster, setting: int | None,
                                                        expected: tuple[list[int], str]) -> None:
    p = f"r{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap, replication_factor=setting)
    lifecycle = LifecycleSettings(control_topic=f"{p}.control", status_topic=f"{p}.status")
    await ensure_topics(kafka, lifecycle)  # the lifecycle control plane's own creation
    assert await _replication(kafka, lifecycle.control_topic) == expected
    assert await _replication(kafka, lifecycle.status_topic) == expected
