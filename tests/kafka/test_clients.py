"""The client factories carry the metadata refresh age to every client they make: it bounds
how long a consumer fetches from a leader that lost its partitions without an error to tell
it (a stale leader; scorer.kafka.view re-reads metadata on the produce errors one gives, and
takes the view most brokers share: docs/reliability.md)."""

from __future__ import annotations

from scorer.config import KafkaSettings
from scorer.kafka.clients import make_consumer, make_producer, make_reader


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
