"""Golden set strata as integer ranks: the rows drawn are those the "group|label" strings drew.

``from_data`` once keyed its strata by ``group + "|" + label`` strings built per row; the
ranks of those strings must give the same sample (same rows, same order) from the same seed,
whatever the groups look like: names that are prefixes of one another (``a|0`` sorts after
``ab|0``), numbers (``10`` before ``9``), ``|`` inside a name, groups in several runs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from scorer.lifecycle.golden import strata
from scorer.lifecycle.quality import cap_per_key

GROUPS = ["a", "ab", "a|b", "a|", "9", "10", "", "zz", "\u00e9t\u00e9", "ab|0"]


def _string_strata(group: npt.NDArray[np.str_], labels: npt.NDArray[np.int8]) -> npt.NDArray[np.str_]:
    """The strata as ``from_data`` built them before (the reference)."""
    return np.char.add(np.char.add(group.astype(str), "|"), labels.astype(str))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("runs", [True, False])
def test_ranks_draw_the_rows_the_strings_drew(seed: int, runs: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    names = rng.choice(GROUPS, size=n)
    group = np.sort(names) if runs else names
    labels = rng.choice(np.array([0, 1, -1], np.int8), size=n, p=[0.7, 0.25, 0.05])
    reference = _string_strata(group, labels)
    ranks = strata(group, labels)
    assert np.array_equal(ranks, np.unique(reference, return_inverse=True)[1])
    for cap in (1, 50, 700):
        expected = np.flatnonzero(cap_per_key(reference, cap, seed))
        assert np.array_equal(np.flatnonzero(cap_per_key(ranks, cap, seed)), expected)


def test_a_stratum_is_one_group_and_label() -> None:
    group = np.array(["b", "a", "b", "a", "b"])
    labels = np.array([1, 0, 1, 1, 0], np.int8)
    assert strata(group, labels).tolist() == [3, 0, 3, 1, 2]
