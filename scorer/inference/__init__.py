"""Inference backends behind one typed interface."""

from scorer.inference.base import INPUT_NAME, OUTPUT_NAME, InferenceBackend, ModelRef

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "InferenceBackend", "ModelRef"]
