"""Benchmarks on the real broker: the scorer side by side with a passthrough ceiling and
the per-event baselines a user might pick instead (aiokafka loop, faust agent, Quix app).

Run ``scorer bench --help``; results and commands live in docs/benchmarks.md.
"""
