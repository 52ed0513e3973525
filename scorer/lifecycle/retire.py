"""Unloading the versions no state keeps, so memory stays bounded however often models change.

Retention, per kind: production, shadow, and the production the last switch replaced (the
rollback target: kept loaded, so a rollback loads nothing). Any other version a switch
displaces is unloaded once the switch is installed:

- its in-process ONNX Runtime session at once: the session belongs to this process alone,
  and a later use (``rollback --version`` to it) just opens it again;
- from Triton only after ``retire_grace_s``, and only if nothing in this process keeps it
  by then. Triton is shared: other scorer processes apply the same control record within
  seconds, but one may still be preparing it, or have refused it and still serve the
  version. The grace covers the first; for the second, every process checks every
  ``reconcile_s`` that Triton serves its own versions and loads them back. An unload can
  therefore cost another process a few seconds on its fallback, never its production.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from scorer.errors import ScorerError
from scorer.inference.base import ModelRef
from scorer.lifecycle.loader import RuntimeLoader

log = logging.getLogger(__name__)
RETRY_S = 5.0  # Triton unreachable: try the unload again this much later


class Retirer:
    def __init__(self, loader: RuntimeLoader, grace_s: float, kept: Callable[[], set[ModelRef]]) -> None:
        self.loader = loader
        self.grace_s = grace_s
        self.kept = kept  # what this process serves or may install next: never unloaded
        self.pending: dict[ModelRef, float] = {}  # retired version -> when Triton may drop it

    def retire(self, displaced: Iterable[ModelRef]) -> None:
        """Called right after an install with the versions it displaced; cheap (no I/O),
        since it runs between micro-batches."""
        kept = self.kept()
        for ref in set(displaced) - kept:
            self.loader.unload_local(ref)
            if self.loader.shared:
                self.pending[ref] = time.monotonic() + self.grace_s
            log.info("%s:%s retired: in-process session closed%s", ref.name, ref.version,
                     f", Triton unloads it in {self.grace_s:.0f}s" if self.loader.shared else "")

    async def unload_due(self) -> list[ModelRef]:
        """Unload from Triton the retired versions whose grace is over; returns them."""
        now, kept = time.monotonic(), self.kept()
        gone = []
        for ref, due in list(self.pending.items()):
            if ref in kept:  # back in use (a rollback to it) before its grace ended
                del self.pending[ref]
            elif due <= now:
                try:
                    await self.loader.unload_shared(ref)
                except ScorerError as exc:
                    if exc.retriable:  # Triton unreachable: the same unload may work later
                        self.pending[ref] = now + RETRY_S
                        log.info("triton unavailable, %s:%s unloaded later: %s", ref.name, ref.version, exc)
                        continue
                    # Refused: not retried, a version left loaded only costs memory.
                    log.warning("triton did not unload %s:%s: %s", ref.name, ref.version, exc)
                else:
                    log.info("%s:%s unloaded from triton (retired %.0fs ago)", ref.name, ref.version,
                             now - due + self.grace_s)
                    gone.append(ref)
                del self.pending[ref]
        return gone
