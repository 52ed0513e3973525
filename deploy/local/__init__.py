"""The local Kafka and Triton launchers (triton.py is also a script: python deploy/local/triton.py)."""
