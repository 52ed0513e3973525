"""The weighted histograms' buckets: each observation where np.searchsorted (side "left") puts
it, as Prometheus' ``le`` reads it (a value on a bound is in that bound's bucket)."""

from __future__ import annotations

import math
import random

import numpy as np

from scorer.metrics.latency import FINE_BUCKETS, STAGE_BUCKETS, WeightedHistogram


def test_every_value_lands_in_the_bucket_searchsorted_gives() -> None:
    rnd = random.Random(5)
    for buckets in (FINE_BUCKETS, STAGE_BUCKETS):
        bounds = np.asarray(buckets, dtype=np.float64)
        values = [*buckets, *(math.nextafter(b, math.inf) for b in buckets), *(math.nextafter(b, 0) for b in buckets),
                  0.0, -1.0, math.inf, -math.inf, math.nan, 1e-9, 1e9,
                  *(10 ** rnd.uniform(-7, 2) for _ in range(2000))]
        h = WeightedHistogram("x_seconds", "x", buckets)
        expected = np.zeros(len(bounds) + 1, dtype=np.int64)
        for i, v in enumerate(values):
            h.observe(v, weight=i % 3 + 1)
            expected[int(np.searchsorted(bounds, v, side="left"))] += i % 3 + 1
        assert np.array_equal(h.counts, expected)
        assert h.counts[-1] >= 3  # inf, nan and 1e9 in the +Inf bucket
