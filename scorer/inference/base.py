"""One inference interface, two backends (Triton over gRPC, in-process ONNX Runtime).

The tensor contract every shipped model follows:

- input ``features``: FP32, shape ``[batch, n_features]`` (Triton: ``dims: [n_features]``
  with ``max_batch_size`` > 0, so the batch dimension is implicit);
- output ``probabilities``: FP32, shape ``[batch, 2]``; column 1 is P(malicious).

Backends return column 1 as a float32 vector of length ``batch``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"

FloatMatrix = npt.NDArray[np.float32]
FloatVector = npt.NDArray[np.float32]


class ModelRef(msgspec.Struct, frozen=True):
    """A model name and the version that must score (``""`` = the server's latest)."""

    name: str
    version: str = ""


@runtime_checkable
class InferenceBackend(Protocol):
    """What the pipeline needs from an inference backend.

    Backends subclass it explicitly, which gives them :meth:`infer_with_source`.
    """

    name: str

    async def start(self) -> None:
        """Connect / load; raise BackendUnavailable if it cannot serve yet."""

    async def close(self) -> None: ...

    async def ready(self, model: ModelRef) -> bool:
        """True when ``model`` can be scored right now."""

    async def infer(self, model: ModelRef, features: FloatMatrix) -> FloatVector:
        """P(malicious) per row; raises InferenceError / BackendUnavailable."""

    async def infer_with_source(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str]:
        """:meth:`infer`, and the name of the backend that computed the scores.

        Alerts say which backend scored them (``unmapped.scorer.backend``): a backend that
        delegates (failover) names the one that answered. A plain backend that subclasses
        this protocol inherits this: itself.
        """
        return await self.infer(model, features), self.name

    def infer_now(self, model: ModelRef, features: FloatMatrix) -> tuple[FloatVector, str] | None:
        """:meth:`infer_with_source`'s answer when this backend computes it in line, waiting
        on nothing (an in-process engine, a call below its thread's threshold); None when the
        caller must await :meth:`infer_with_source` instead. Raises as that would.

        The pipeline asks this first: a micro-batch's kinds are then scored with no coroutine,
        future or gather per call (at 50 records those cost more than the trees). A backend
        that may suspend, or that overrides :meth:`infer`, inherits this: never in line.
        """
        return None
