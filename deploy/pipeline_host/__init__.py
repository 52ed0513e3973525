"""The whole pipeline (Kafka in, scores out) on the lent 16-core device machine: its carry and study."""
