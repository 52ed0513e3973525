"""Rule packs on the live service (scorer.lifecycle, ``scorer rules deploy``): installs,
refusals, a model reading hits of a pack it was not trained with, and the rule shadow.

Per-rule changes go to the shadow topic only (thousands of rules would make thousands of
series); Prometheus gets the totals, as counters so any window can be taken in PromQL.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter


class RulePackMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r, pv = registry, ["pack", "version"]
        self.switches = PromCounter(
            "scorer_rule_pack_switches", "Rule pack installs between micro-batches: role=production|shadow",
            ["pack", "role", "version"], registry=r,
        )
        self.prepare_seconds = Histogram(
            "scorer_rule_pack_prepare_seconds", "Check and load a pack (checksums, IR, golden set) before the switch",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )
        self.switch_seconds = Histogram(
            "scorer_rule_pack_switch_seconds", "Control record issued -> new pack installed",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r,
        )
        self.refusals = PromCounter(
            "scorer_rule_pack_refusals", "Desired rule pack states refused (production pack kept)",
            [*pv, "reason"], registry=r,
        )
        self.untrained = Gauge(
            "scorer_rule_pack_untrained", "1 while a model reads rule hits of a production pack other than "
            "the one its card says it was trained with", [*pv, "model"], registry=r,
        )
        self.shadow_info = Gauge("scorer_shadow_rule_pack_info", "Candidate rule pack in shadow", pv, registry=r)
        self.shadow_events = PromCounter(
            "scorer_rule_shadow_events", "Events the candidate pack ran on beside production", pv, registry=r,
        )
        self.shadow_hits = PromCounter(
            "scorer_rule_shadow_hits", "Rule hits the candidate pack adds or removes: change=added|removed",
            [*pv, "change"], registry=r,
        )
        self.shadow_alerts = PromCounter(
            "scorer_rule_shadow_alerts", "Alerts (model or rules) the candidate pack would add or remove: "
            "change=added|removed", [*pv, "change"], registry=r,
        )
        self.shadow_score_changed = PromCounter(
            "scorer_rule_shadow_score_changed_events", "Events whose model score the candidate's hits change",
            pv, registry=r,
        )
        self.shadow_errors = PromCounter(
            "scorer_rule_shadow_errors", "Events a candidate rule raised on, or batches it failed on "
            "(production unaffected)", pv, registry=r,
        )
