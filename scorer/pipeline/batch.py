"""What scores one kind (:class:`KindRuntime`), and one micro-batch on its way through the
steps (:class:`Batch`).

A ``Batch`` is what the steps hand on: decode fills it, the rules and features steps turn
each kind's events into a matrix, inference and decide read it. It is kept when inference
fails, so a retry of the same records reuses it: features update per-entity state and must
run once per record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from scorer.alerts.decide import Decider
from scorer.errors import ModelError
from scorer.events.structs import Event, EventKind, RecordFailure
from scorer.features.base import F32, FeatureSet
from scorer.inference.base import ModelRef
from scorer.inference.repository import ModelCard
from scorer.pipeline.records import InputRecord
from scorer.rules.annotate import RuleStage

if TYPE_CHECKING:
    from scorer.pipeline.rules import RuleShadow

# A decoded event and the record it came from (for its key, offset and original bytes).
Item = tuple[Event, InputRecord]


class KindRuntime(msgspec.Struct, frozen=True):
    """Everything needed to score one kind; swapped whole between micro-batches."""

    kind: EventKind
    features: FeatureSet
    model: ModelRef
    card: ModelCard
    decider: Decider
    # The detection rules run on this kind's events before features (EDR), or None.
    rules: RuleStage | None = None

    @classmethod
    def build(
        cls, kind: EventKind, features: FeatureSet, card: ModelCard, rules: RuleStage | None = None
    ) -> KindRuntime:
        if tuple(card.feature_names) != tuple(features.names):
            raise ModelError(
                f"model {card.name}:{card.version} expects features {len(card.feature_names)} "
                f"{card.feature_names[:3]}..., the scorer computes {len(features.names)} "
                f"{list(features.names[:3])}...: feature contract mismatch"
            )
        return cls(kind, features, ModelRef(card.name, card.version), card, Decider(card), rules)


Runtimes = dict[EventKind, KindRuntime]


class Batch:
    """One micro-batch between decode and decide, with the models it is scored by.

    ``runtimes`` and ``shadows`` are snapshots taken when the batch is decoded: no batch
    straddles a model swap, and a retry scores with the models the features were made for.
    """

    def __init__(self, records: Sequence[InputRecord], runtimes: Runtimes, shadows: Runtimes) -> None:
        self.records = records
        self.runtimes = runtimes
        self.shadows = shadows
        self.consumed: dict[str, int] = defaultdict(int)  # kind (or "unknown") -> records
        self.failures: list[RecordFailure] = []  # every record dead-lettered, in step order
        self.by_kind: dict[EventKind, list[Item]] = defaultdict(list)  # decoded, not yet featurised
        self.matrices: dict[EventKind, tuple[F32, list[Item]]] = {}  # features, row-aligned items
        self.rule_hits: dict[str, int] = defaultdict(int)  # rule level -> hits in this batch
        self.rule_shadows: dict[EventKind, RuleShadow] = {}  # a shadow's candidate rule pack, per kind
        # Seconds per step of the current attempt (a retry decodes and featurises nothing).
        self.timings: dict[str, float] = {}

    def retry_of(self, records: Sequence[InputRecord], runtimes: Runtimes) -> bool:
        """Whether scoring ``records`` now can reuse this batch: the very same records object,
        and no model swapped in since (a new model may compute other features)."""
        return self.records is records and self.runtimes is runtimes

    def restart(self) -> None:
        """A new attempt at inference: nothing is decoded or featurised again."""
        self.timings = {"decode": 0.0, "rules": 0.0, "features": 0.0}
