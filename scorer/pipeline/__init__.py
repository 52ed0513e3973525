"""Micro-batch scoring pipeline: records, scoring, dead letters, the Kafka loop."""
