"""Retirement from a shared Triton: after the grace, never what is kept, retried when down."""

from __future__ import annotations

from scorer.errors import BackendUnavailable, ModelError
from scorer.inference.base import ModelRef
from scorer.lifecycle.retire import Retirer

V1, V2, V3 = (ModelRef("m", v) for v in "123")


class SharedLoader:
    """The two calls Retirer makes, recorded; ``fail`` raises from the Triton unload."""

    shared = True

    def __init__(self) -> None:
        self.local: list[ModelRef] = []
        self.triton: list[ModelRef] = []
        self.fail: Exception | None = None

    def unload_local(self, ref: ModelRef) -> None:
        self.local.append(ref)

    async def unload_shared(self, ref: ModelRef) -> None:
        if self.fail is not None:
            raise self.fail
        self.triton.append(ref)


async def test_triton_unloads_after_the_grace_and_never_a_kept_version() -> None:
    loader, kept = SharedLoader(), {V3}
    retirer = Retirer(loader, 3600.0, lambda: kept)  # type: ignore[arg-type]
    retirer.retire([V1, V2, V3])
    assert sorted(loader.local, key=str) == [V1, V2] and set(retirer.pending) == {V1, V2}
    assert await retirer.unload_due() == [] and loader.triton == [], "in its grace"
    retirer.grace_s = 0.0
    retirer.pending = dict.fromkeys(retirer.pending, 0.0)
    kept.add(V2)  # rolled back to before the grace ended
    assert await retirer.unload_due() == [V1] and loader.triton == [V1]
    assert retirer.pending == {}, "V2 is in use again: no longer pending"


async def test_an_unreachable_triton_is_retried_and_a_refusal_is_not() -> None:
    loader = SharedLoader()
    retirer = Retirer(loader, 0.0, set)  # type: ignore[arg-type]
    retirer.retire([V1])
    loader.fail = BackendUnavailable("down")
    assert await retirer.unload_due() == [] and V1 in retirer.pending
    retirer.pending[V1] = 0.0
    loader.fail = ModelError("triton refused")
    assert await retirer.unload_due() == [] and retirer.pending == {}
    loader.fail = None
    retirer.retire([V2])
    assert await retirer.unload_due() == [V2]
