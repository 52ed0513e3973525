"""Feature definitions, one per event kind, shared by training (models/) and serving.

``feature_set(kind)`` returns a fresh instance: stateful feature sets own their bounded,
partition-local entity state, so each consumer (and each training replay) gets its own.
``transform`` always returns finite float32 rows (see :mod:`scorer.features.base`).

Feature sets are versioned, and a model card names the one its model was trained on
(``ModelCard.feature_set``; empty = ``v1``, the cards written before versions existed):

- ``v1``: the per-event features and the scorer's exact 60 s entity state;
- ``v2``: ``v1`` followed by long-horizon entity profiles (:mod:`scorer.profiles`) joined
  from a :class:`~scorer.profiles.join.ProfileSource`: the compacted profile topic when
  serving, the same update rule run in process (:mod:`scorer.profiles.local`) when training;
- ``v3``: for EDR, ``v1`` followed by the Security-channel, object, command-line and
  rule-hit blocks (:mod:`scorer.features.edr_v3`); no profile columns (host novelty made
  the alert rate of held-out captures overshoot, docs/models.md). The rule block reads
  ``EndpointEvent.rule_hits`` (set by the rules stage before features) and needs the rule
  pack's metadata: ``feature_set("edr", "v3", profiles, rules=stage.by_id)`` (``profiles``
  is accepted and unused). Its column names do not depend on the pack. Other kinds have no
  v3 blocks yet: their v3 is their v2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from scorer.events.structs import Event, EventKind
from scorer.features.base import F32, FeatureSet
from scorer.features.edr import EdrFeatures
from scorer.features.netflow import NetflowFeatures
from scorer.features.siem import SiemFeatures

_CLASSES: dict[EventKind, type[NetflowFeatures] | type[EdrFeatures] | type[SiemFeatures]] = {
    EventKind.NETFLOW: NetflowFeatures,
    EventKind.EDR: EdrFeatures,
    EventKind.SIEM: SiemFeatures,
}


FEATURE_SETS = ("v1", "v2", "v3")

if TYPE_CHECKING:
    from scorer.features.rules import RuleSource
    from scorer.profiles.join import ProfileSource


def feature_set(kind: EventKind | str, version: str = "", profiles: ProfileSource | None = None,
                rules: RuleSource | None = None) -> FeatureSet:
    """A new feature set (with fresh state) for ``kind``, in feature-set ``version``.

    ``profiles`` is where v2 reads profiles from (and v3 of the kinds whose v3 is their v2);
    by default a fresh in-process :class:`scorer.profiles.local.LocalProfiles` (what
    training and the embedded scorer use).
    ``rules`` is the rule metadata v3's rule block reads (a mapping rule id -> ``RuleMeta``,
    e.g. ``RuleStage.by_id``, or the ``RuleEngine.rules`` sequence); ignored by v1 and v2.
    """
    base = _CLASSES[EventKind(kind)]()
    if version in ("", "v1"):
        return base
    if version not in ("v2", "v3"):
        raise ValueError(f"unknown feature set {version!r} (known: {', '.join(FEATURE_SETS)})")
    if version == "v3" and base.kind is EventKind.EDR:
        from scorer.features.edr_v3 import EdrV3Features

        return EdrV3Features(base, rules)
    # Imported here: scorer.profiles builds on scorer.features.base (no import cycle), and the
    # in-process profiles (the stream jobs' update rule) are only needed when nobody passes a source.
    from scorer.profiles.columns import COLUMNS
    from scorer.profiles.join import ProfiledFeatures

    if profiles is None:
        from scorer.profiles.local import LocalProfiles

        profiles = LocalProfiles()
    return ProfiledFeatures(base, COLUMNS[base.kind](), profiles)


def capture_matrix(
    kind: EventKind | str, events: Sequence[Event], chunk: int = 65_536, version: str = "",
    profiles: ProfileSource | None = None, rules: RuleSource | None = None,
) -> tuple[F32, npt.NDArray[np.intp]]:
    """Training features of one capture: what serving computes when it is replayed.

    Events are put in event-time order (stable), then fed through a fresh feature set in
    chunks, exactly as a consumer sees micro-batches. Returns the matrix (rows in time
    order) and ``order``, the index of each row's event in ``events``. ``version``,
    ``profiles`` and ``rules`` are :func:`feature_set`'s (pass one ``profiles`` to several
    captures to let entity profiles carry over from one capture to the next). For v3 the
    events carry their ``rule_hits`` already (the rules stage runs before features).
    """
    fs = feature_set(kind, version, profiles, rules)
    order = np.argsort(np.fromiter((e.ts for e in events), np.float64, len(events)),
                       kind="stable")
    ordered = [events[i] for i in order.tolist()]
    parts = [fs.transform(ordered[i:i + chunk]) for i in range(0, len(ordered), chunk)]
    matrix = np.concatenate(parts) if parts else np.zeros((0, len(fs.names)), np.float32)
    return matrix, order


__all__ = [
    "FEATURE_SETS",
    "EdrFeatures",
    "FeatureSet",
    "NetflowFeatures",
    "SiemFeatures",
    "capture_matrix",
    "feature_set",
]
