"""The realistic stream: benign background from the shared data, attacks of the bundled
capture at the asked share, per kind, kinds interleaved."""

from __future__ import annotations

from collections import Counter

import pytest

from scorer.bench.loadgen import templates
from scorer.bench.realistic import realistic_templates
from scorer.captures.base import is_malicious
from scorer.config import data_dir
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind

pytestmark = pytest.mark.data


def test_one_percent_attacks_per_kind_over_benign_background() -> None:
    capture = templates(bundled_capture(), tuple(EventKind))
    stream = realistic_templates(capture, data_dir(), attack_share=0.01, per_kind=1980)
    counts = Counter((kind, is_malicious(ev.label) is True) for kind, ev in stream)
    for kind in EventKind:
        attacks, benign = counts[(kind, True)], counts[(kind, False)]
        assert benign == 1980 and attacks == 20, (kind, attacks, benign)
    # Every stretch of the stream holds every kind.
    assert {kind for kind, _ in stream[:3]} == set(EventKind)
    # Attacks come from the capture (the background is read from the shared data).
    capture_uids = {ev.uid for _, ev in capture}
    assert all(ev.uid in capture_uids for _, ev in stream if is_malicious(ev.label))


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="attack share"):
        realistic_templates([], data_dir(), attack_share=1.5)
