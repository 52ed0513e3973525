"""The load generator's payloads: every cycle of the templates is a later stretch of time."""

from __future__ import annotations

import msgspec

from scorer.bench.loadgen import payloads, templates
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind

WEEK = 7 * 86400


def test_each_cycle_moves_later_by_whole_weeks_beyond_the_templates_span() -> None:
    tpl = templates(bundled_capture(), tuple(EventKind))[:300]
    sent = [msgspec.json.decode(value) for _, _, value in payloads(tpl, 3 * len(tpl))]
    span = {
        kind: max(e.ts for k, e in tpl if k is kind) - min(e.ts for k, e in tpl if k is kind)
        for kind in {k for k, _ in tpl}
    }
    for i, (kind, event) in enumerate(tpl):
        first, second, third = (sent[i + c * len(tpl)]["ts"] for c in range(3))
        assert first == event.ts  # the first cycle is the templates as they are
        shift = second - first
        # Whole weeks (hour of day and weekday kept), past the kind's span (no window reaches back).
        assert round(shift) % WEEK == 0 and shift > span[kind]
        assert abs(third - second - shift) < 1e-3
    assert [e["uid"] for e in sent] == [f"b{i}" for i in range(len(sent))]
