"""The running service: assembly, metrics, HTTP health endpoints."""
