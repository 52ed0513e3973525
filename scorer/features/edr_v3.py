"""Feature set v3 for EDR: v1, then the Security-channel, object, command-line and rule-hit
blocks. (Not v2's host-novelty profile columns: every Sigma positive is novel on the OTRF
host it is transplanted onto, and the held-out alert rate overshot with them; docs/models.md.)

``names`` = v1's names, then :data:`BLOCK_NAMES` (in this order: :mod:`edr_security`,
:mod:`edr_objects`, :mod:`edr_cmdline`, :mod:`rules`). The rule block reads
``EndpointEvent.rule_hits``, which the rules stage sets before features, and the rule
metadata passed as ``rules``; without it (``None``) hits count in ``rule_hits`` only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scorer.events.structs import EndpointEvent, Event, EventKind
from scorer.features import edr, edr_cmdline, edr_objects, edr_security, rules
from scorer.features.base import F32, FeatureSet, basename, column
from scorer.features.edr import EdrFeatures
from scorer.features.edr_batch import EdrBatch, Plan
from scorer.features.edr_cmdline import put_cmdline
from scorer.features.edr_objects import put_objects
from scorer.features.edr_security import put_security
from scorer.features.rules import RuleFeatures, RuleSource

BLOCK_NAMES: tuple[str, ...] = edr_security.NAMES + edr_objects.NAMES + edr_cmdline.NAMES + rules.NAMES
# Columns that can only make an event more suspicious (models may constrain scores to be
# non-decreasing in them); the others describe the event.
INDICATORS: tuple[str, ...] = (edr_security.INDICATORS + edr_objects.INDICATORS + edr_cmdline.INDICATORS
                               + rules.INDICATORS)


class EdrV3Features:
    """``base`` (the v1 feature set) followed by the v3 blocks."""

    kind = EventKind.EDR
    reads_views = True  # EndpointRow events too (scorer.events.edrrows), as v1's

    def __init__(self, base: FeatureSet, rule_source: RuleSource | None = None) -> None:
        if base.kind is not EventKind.EDR:
            raise ValueError("EdrV3Features wraps an EDR feature set")
        self.base = base
        self.rules = RuleFeatures(rule_source)
        self.names: tuple[str, ...] = base.names + BLOCK_NAMES
        self.plan = Plan(edr.GROUPS + edr_security.GROUPS + edr_objects.GROUPS + edr_cmdline.GROUPS, self.names)

    def transform(self, events: Sequence[Event]) -> F32:
        if isinstance(self.base, EdrFeatures):  # v1's columns and the blocks in one matrix
            sheet = self.plan.sheet(events)
            if sheet is not None:
                if any(column(events, "rule_hits")):  # else nothing fired: RuleFeatures.put writes nothing
                    self.rules.put(sheet, events)  # type: ignore[arg-type]  # checked by the plan
                return sheet.matrix()
            b = EdrBatch(events, self.names, "EdrFeatures.transform")  # the reference
            images, parents = self.base.put(b)
            put_blocks(b, self.rules, images, parents)
            return b.sheet.matrix()
        x = self.base.transform(events)  # validates the event type too
        return np.hstack([x, block_matrix(events, self.rules)])  # type: ignore[arg-type]  # checked by base


def block_matrix(evs: Sequence[EndpointEvent], rule_features: RuleFeatures) -> F32:
    """The v3 block columns (:data:`BLOCK_NAMES`) of a batch."""
    b = EdrBatch(evs, BLOCK_NAMES, "block_matrix")
    images = [basename((i or f.get("SourceImage") or "").lower()) for i, f in zip(column(evs, "image"), b.fields,
                                                                                   strict=True)]
    parents = [basename((p or "").lower()) for p in column(evs, "parent_image")]
    put_blocks(b, rule_features, images, parents)
    return b.sheet.matrix()


def put_blocks(b: EdrBatch, rule_features: RuleFeatures, images: list[str], parents: list[str]) -> None:
    """The v3 block columns (:data:`BLOCK_NAMES`), into ``b.sheet``. ``images`` / ``parents``:
    each event's lower-case image and parent basename."""
    put_security(b)
    put_objects(b)
    put_cmdline(b, images, parents)
    rule_features.put(b.sheet, b.events)
