"""scorer: real-time security event scoring.

Kafka in (netflow, EDR, SIEM), micro-batched features, inference on Triton or in-process
ONNX Runtime, OCSF Detection Findings out.
"""

__version__ = "0.1.0"
