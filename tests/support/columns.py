"""Checks shared by the tests of EDR feature column blocks (a block: events -> {name: column})."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from scorer.events.structs import EndpointEvent

Block = Callable[[list[EndpointEvent]], Mapping[str, npt.NDArray[np.float64]]]


def flags_set(block: Block, names: Sequence[str], event: EndpointEvent) -> set[str]:
    """The columns ``event`` alone sets to non-zero; the block has exactly its ``names``."""
    cols = block([event])
    assert set(cols) == set(names), set(cols) ^ set(names)
    return {n for n in names if cols[n][0] != 0}


def assert_batch_equals_each_alone(block: Block, names: Sequence[str], events: list[EndpointEvent]) -> None:
    """Evaluating a batch (once per distinct value) gives each event what it gets alone."""
    batch = block(events)
    for i, e in enumerate(events):
        alone = block([e])
        in_batch, by_itself = {n: batch[n][i] for n in names}, {n: alone[n][0] for n in names}
        assert in_batch == by_itself, (i, e, in_batch, by_itself)
