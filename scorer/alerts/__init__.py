"""Decisions (threshold, severity, explanation) and the OCSF Detection Finding format."""

from scorer.alerts.decide import Decider, Decision
from scorer.alerts.ocsf import detection_finding

__all__ = ["Decider", "Decision", "detection_finding"]
