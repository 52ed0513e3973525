"""The assignment gauges and counter the scoring loop's rebalance listener keeps (on the broker:
tests/pipeline/test_consumer_group.py, three processes joining and one killed)."""

from __future__ import annotations

from aiokafka import TopicPartition

from scorer.metrics import ScorerMetrics
from scorer.pipeline.rebalance import AssignmentMetrics


async def test_owned_partitions_go_to_zero_while_revoked_and_each_assignment_counts() -> None:
    metrics = ScorerMetrics()
    listener = AssignmentMetrics(metrics)

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    assert sample("scorer_assigned_partitions") == 0 and sample("scorer_partition_assignments_total") == 0
    await listener.on_partitions_assigned({TopicPartition("t", p) for p in range(4)})
    assert sample("scorer_assigned_partitions") == 4 and sample("scorer_partition_assignments_total") == 1
    await listener.on_partitions_revoked({TopicPartition("t", p) for p in range(4)})
    assert sample("scorer_assigned_partitions") == 0
    await listener.on_partitions_assigned({TopicPartition("t", 1)})
    assert sample("scorer_assigned_partitions") == 1 and sample("scorer_partition_assignments_total") == 2
