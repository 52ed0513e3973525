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
        pv = ("pack", "version")

        def counter(name: str, doc: str, *labels: str) -> PromCounter:
            return PromCounter(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, buckets=buckets, registry=registry)

        self.switches = counter("scorer_rule_pack_switches",
                                "Rule pack installs between micro-batches: role=production|shadow",
                                "pack", "role", "version")
        self.prepare_seconds = histogram("scorer_rule_pack_prepare_seconds",
                                         "Check and load a pack (checksums, IR, golden set) before the switch",
                                         (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.switch_seconds = histogram("scorer_rule_pack_switch_seconds",
                                        "Control record issued -> new pack installed",
                                        (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.refusals = counter("scorer_rule_pack_refusals",
                                "Desired rule pack states refused (production pack kept)", *pv, "reason")
        self.untrained = Gauge("scorer_rule_pack_untrained", "1 while a model reads rule hits of a production pack "
                               "other than the one its card says it was trained with", (*pv, "model"),
                               registry=registry)
        self.shadow_info = Gauge("scorer_shadow_rule_pack_info", "Candidate rule pack in shadow", pv,
                                 registry=registry)
        self.shadow_events = counter("scorer_rule_shadow_events",
                                     "Events the candidate pack ran on beside production", *pv)
        self.shadow_hits = counter("scorer_rule_shadow_hits",
                                   "Rule hits the candidate pack adds or removes: change=added|removed", *pv, "change")
        self.shadow_alerts = counter("scorer_rule_shadow_alerts", "Alerts (model or rules) the candidate pack would "
                                     "add or remove: change=added|removed", *pv, "change")
        self.shadow_score_changed = counter("scorer_rule_shadow_score_changed_events",
                                            "Events whose model score the candidate's hits change", *pv)
        self.shadow_errors = counter("scorer_rule_shadow_errors", "Events a candidate rule raised on, or batches "
                                     "it failed on (production unaffected)", *pv)
