"""Deployment launchers, not installed with the scorer.

deploy/local: the local Kafka broker and Triton server; deploy/gpu: the GPU Triton model
repository. A package so that tests and deploy/gpu import the launchers instead of loading
them by file path.
"""
