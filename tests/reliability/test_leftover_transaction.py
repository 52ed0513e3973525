"""The exactly-once scorer's leftover transaction at start (issue 19) covers the shadow topic: the
lifecycle's shadow publisher writes its records in each batch's transaction, so a transaction
the broker left without markers holds shadow partitions open as it holds the alert ones."""

from __future__ import annotations

import pytest

from scorer.config import LifecycleSettings
from scorer.kafka import make_reader, poll_until, topic_partition_list
from scorer.lifecycle.controller import start_lifecycle
from scorer.metrics import ScorerMetrics
from scorer.pipeline.loop import ScoringLoop
from scorer.service.build import build_scorer
from tests.support.kafka import KafkaBroker
from tests.support.pipeline import scorer_settings

pytestmark = pytest.mark.slow


async def test_the_leftover_transaction_marks_every_partition_of_the_shadow_topic(kafka: KafkaBroker) -> None:
    base = scorer_settings(kafka.bootstrap, scores=False)
    p = base.kafka.client_id
    lifecycle = LifecycleSettings(control_topic=f"{p}.control", status_topic=f"{p}.status",
                                  shadow_topic=f"{p}.shadow")
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(update={"transactional": True}),
                                       "lifecycle": lifecycle})
    scorer = build_scorer(settings, None)
    await scorer.backend.start()
    loop = ScoringLoop(settings, scorer, ScorerMetrics())
    controller = await start_lifecycle(loop)  # attaches the shadow publisher, as `scorer run` does
    assert controller is not None
    await kafka.acreate_topic(lifecycle.shadow_topic, 3)  # as the first shadow batch left it
    topics = settings.topics
    reader = make_reader(settings.kafka, "test")
    try:
        await loop.start()  # creates the other output topics, then ends the leftover over them all
        tps = await topic_partition_list(settings.kafka, [lifecycle.shadow_topic, topics.dead_letter,
                                                          *map(topics.alert_topic, settings.kinds)])
        await reader.start()
        # The coordinator writes the markers after it answers EndTxn: until they are all there,
        # or none came for 30 s (then what there is, for the assertion's message).
        ends = (await poll_until(lambda: reader.end_offsets(tps), lambda e: set(e.values()) == {1}, stall_s=30)
                or await reader.end_offsets(tps))
    finally:
        await reader.stop()
        await loop.stop()
        await controller.stop()
        await scorer.backend.close()
    # Nothing was ever produced to those new topics: offset 0 of each partition is the marker.
    assert ends == dict.fromkeys(tps, 1)
