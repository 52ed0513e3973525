"""The shipped pack on a whole batch gives every event the hits it gets alone: the engine's
per-value row grouping (one Python pass for a few rows, a packed numpy matrix for many) and
its row sets shared between fields must not move a hit between rows."""

from __future__ import annotations

import random

import pytest

from scorer.events import edr
from scorer.rules import RuleEngine
from scorer.rules.bitsets import _FEW_ROWS, rows_of
from scorer.rules.build import regression_cases
from tests.rules.helpers import SHIPPED
from tests.support.paths import DATA_DIR

REGRESSION = DATA_DIR / "edr" / "sigma-regression"


@pytest.mark.data
def test_batch_hits_equal_one_event_at_a_time() -> None:
    if not REGRESSION.is_dir():
        pytest.skip(f"no regression data at {REGRESSION}")
    events = [edr.from_mapping(raw) for case in regression_cases(REGRESSION) for raw in case.events]
    # Twice over, interleaved: values repeat across rows (and across batches, through the cache).
    batch = [e for pair in zip(events, reversed(events), strict=True) for e in pair]
    engine = RuleEngine.load(SHIPPED)
    result = engine.evaluate(batch)
    assert not result.errors
    assert sum(1 for h in result.hits if h) > len(events)  # the pack fires on most of them
    alone = RuleEngine.load(SHIPPED)
    assert result.hits == [alone.evaluate([e]).hits[0] for e in batch]


def test_rows_of_lists_every_set_bit_in_order_whatever_their_number() -> None:
    rng = random.Random(5)
    for n in (1, 7, 50, 64, 65, 700):
        for k in sorted({0, 1, 2, _FEW_ROWS, _FEW_ROWS + 1, n // 2, n}):
            if k > n:
                continue
            rows = sorted(rng.sample(range(n), k))
            assert list(rows_of(sum(1 << r for r in rows), n)) == rows, (n, k)
