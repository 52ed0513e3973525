"""The scorer's one Kafka layer over aiokafka (quix-streams style: one module per role).

- :mod:`~scorer.kafka.clients`: consumers, group-less readers, producers and admin clients
  built from :class:`scorer.config.KafkaSettings`, with the TLS/SASL options;
- :mod:`~scorer.kafka.redact`: the SASL password masked in every log record;
- :mod:`~scorer.kafka.producer`: many records at once, batched per partition, acks awaited;
- :mod:`~scorer.kafka.transactions`: an exactly-once producer's start, ending what its
  predecessor left open as the transaction coordinator decided it;
- :mod:`~scorer.kafka.partitioner`: Kafka's default key placement for a whole batch;
- :mod:`~scorer.kafka.admin`: which topics exist, creating the missing ones;
- :mod:`~scorer.kafka.compacted`: reading a compacted topic to its end; the end a
  read_committed reader reaches once the transactions written so far are decided.

The service, the lifecycle control plane, the profile view and worker, replay, the
benchmarks and the tests' broker helper all go through it; none builds a client itself.
"""

from scorer.kafka.admin import COMPACTED, TopicRefused, TopicSpec, ensure_topics, topic_partition_list
from scorer.kafka.clients import admin_client, make_consumer, make_producer, make_reader, security_options
from scorer.kafka.compacted import (
    assign_from_start,
    fetching,
    poll_until,
    read_latest,
    read_to_end,
    read_until,
    settled_end_offsets,
)
from scorer.kafka.producer import Record, produce_batched, send_batched
from scorer.kafka.redact import redact_in_logs

__all__ = [
    "COMPACTED",
    "Record",
    "TopicRefused",
    "TopicSpec",
    "admin_client",
    "assign_from_start",
    "ensure_topics",
    "fetching",
    "make_consumer",
    "make_producer",
    "make_reader",
    "poll_until",
    "produce_batched",
    "read_latest",
    "read_to_end",
    "read_until",
    "redact_in_logs",
    "security_options",
    "send_batched",
    "settled_end_offsets",
    "topic_partition_list",
]
