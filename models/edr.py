"""edr_classifier: SigmaHQ regression events (per-event positives) against OTRF captures.

Labels, deliberately:
- Sigma regression events are true positives of a detection rule: label 1, per event.
- OTRF atomic captures are labelled per capture only (one simulated technique, mostly
  ordinary background activity). Their events are trained as 0, a *weak* negative label:
  the few attack events inside each capture are label noise the learner must tolerate,
  and the score they still get is what makes a capture alert. Positives carry 2% of the
  training weight, and the score is monotone in tradecraft indicators (command-line
  tokens, user-writable paths, risky registry keys, LSASS access...), so the noisy
  negatives cannot teach the model that tradecraft is benign.
- Except the OTRF events that the capture's own metadata ties to the attack
  (models/otrf_labels.py, never a score: the process of the C2 agent named in the
  metadata's agent table and its descendants, or the processes the metadata's commands
  start and their descendants; 63 captures, 48,429 events): these are left out of
  training (unlabelled) instead of trained as 0, so the learner is not taught that the
  attack's own steps are benign. Trained as positives instead, they cost capture
  detection on the development half of the groups (docs/models.md, EDR "Tried").
Evaluation follows the labels: Sigma events and OTRF events are split by rule / capture;
a capture counts as detected when at least one of its events alerts; every OTRF event
that alerts is counted against the budget (an upper bound on false alerts, since some of
those events are the attack itself); the alert rate on OTRF events *not* labelled attack
by the metadata is reported beside it (a closer estimate of false alerts, still an upper
bound: captures without usable metadata keep their attack events in it).
Host profiles (feature set v2): the OTRF captures were recorded on the same lab hosts over
months, so one profile state runs through all of them in time order and each capture meets
the history its hosts really had (first-seen and prevalence of images, parent->child pairs
and command-line shapes). Sigma samples have no host of their own: each is placed on the
host and time of a seeded random OTRF event and joined against that host's history then,
without updating it. Its novelty there is therefore an assumption (that tradecraft is new
on the host it runs on), not a measurement; the held-out OTRF captures are the measurement.
Novelty may only raise a score (monotone). v2 carries only the three novelty flags: item
ages, prevalence and host history depth were tried and cost detections on the development
half of the groups (docs/profiles.md).
Feature set v3 (v1 + Security-channel, object, command-line and rule-hit blocks) adds data
and the detection rules: the otrf-extra captures (seven LSASS-dumping campaigns of 40k-60k
events each, mostly host background, and APTSimulator; models/otrf_extra.py), labelled per
capture like the atomic ones, the four campaigns of host MKT01 in one split group; and the
shipped Sigma pack's hits on every event (models/edr_rules.py), the same rules stage the
service runs. A Sigma regression event fires its own rule by construction, so its own rule
and that rule's related rules are removed from its hits: it stands for a technique no rule
covers, and the rule columns cannot separate the positives trivially. Every v3 column
that can only add suspicion (scorer.features.edr_v3.INDICATORS, all rule counts among
them) is monotone. The service alerts on the model's threshold, a high/critical rule the tuning leaves
alerting, or a host's risk (distinct medium/low rules and model scores over a floor within
a window, under the risk policy the rule pack carries: scorer/rules/risk.py). One budget covers
all three, counted on OTRF events not labelled attack (the goal's words): the rules' and risk
alerts count first and the model's threshold passes what they leave, aimed at 0.8 per 1,000
so that groups whose background the others do not predict stay within the goal's 1 per 1,000
(models/edr_fusion.py, edr_eval.py; the per-fold table below says whether they do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from scorer.captures import LabeledEvent
from scorer.events.structs import EndpointEvent, Event, EventKind
from scorer.features.edr_v3 import INDICATORS as V3_INDICATORS

from . import otrf_extra
from .datasets import PER_CAPTURE, Dataset, History, build, data_dir
from .edr_eval import BUDGET_FPR, budget_benign, evaluate, fused_threshold, weak_labels
from .edr_rules import TrainingRules
from .evaluate import (
    balanced_weights,
    cap_per_key,
    hgb,
)
from .spec import Spec

log = logging.getLogger(__name__)

# Positives' share of the training weight. Sigma gives ~240 positives against ~160k
# sampled OTRF events; full class balance let a single positive of a rare event type
# (one WMI or task-scheduler event) make every such event score high.
POS_SHARE = 0.02
# Indicators that can only make an event more suspicious: the score is constrained to be
# non-decreasing in them, so tradecraft seen in OTRF but absent from the few Sigma
# positives is never learned as a sign of innocence.
INCREASING = ("cmd_", "log_b64_len", "image_user_dir", "image_renamed", "parent_office",
              "parent_script_host", "parent_user_dir", "target_", "registry_key_risky",
              "loaded_", "unsigned", "access_", "p_image_new", "p_lineage_new", "p_command_new")
DECREASING: tuple[str, ...] = ()  # (none in feature set v2; ages/prevalence would go here)
CAPTURE_CAP = 1500  # OTRF events per capture used for training (all are scored)
ATTRIBUTION = [
    "OTRF Security-Datasets (Mordor), Open Threat Research Forge, MIT licence.",
    "SigmaHQ regression data and rules, Detection Rule License (DRL) 1.1: attribution to "
    "SigmaHQ and to each rule's author (listed in each rule's rule.yml/info.yml).",
]


def labeller(item: LabeledEvent) -> tuple[int | None, str, str, str]:
    if item.event.source == "sigma-regression":
        return 1, f"sigma:{item.capture}", "sigma", item.event.label or "malicious"
    if item.event.source == "otrf":
        extra = otrf_extra.CAPTURES.get(item.capture)
        if extra is not None:  # edr/otrf-extra: split group and label from models/otrf_extra.py
            return 0, extra.group, "otrf", f"attack:{extra.technique}"
        return 0, f"otrf:{item.capture}", "otrf", item.capture_label or "attack:unknown"
    return None, "", "", ""


def _on_anchor(event: Event, anchor: Event) -> Event:
    assert isinstance(event, EndpointEvent) and isinstance(anchor, EndpointEvent)
    return msgspec.structs.replace(event, host=anchor.host, ts=anchor.ts)


HISTORY = History(name="otrf-shared/sigma-on-otrf-hosts", shared=True,
                  transplant=lambda path: "sigma-regression" in path.parts, move=_on_anchor)


def dataset(features: str = "") -> Dataset:
    root = data_dir() / "edr"
    files = [*root.glob("otrf-security-datasets/**/*.zip"),
             *root.glob("sigma-regression/**/*.json")]
    # v1 and v3 are stateless for EDR: only v2's profiles need the shared history.
    history = HISTORY if features == "v2" else PER_CAPTURE
    if features != "v3":  # (the recipe of the shipped v1/v2 models: atomic captures only)
        return build(EventKind.EDR, files, labeller, version=features, history=history)
    # v3: the otrf-extra captures too, and the shipped rule pack's hits (models/edr_rules.py).
    files += otrf_extra.files(root / "otrf-extra")
    rules = training_rules()
    ds = build(EventKind.EDR, files, labeller, version=features, history=history, rules=rules.meta,
               prepare=rules, salt=rules.salt)
    if rules.failed or rules.own_removed:
        log.info("rules stage: %d events a rule raised on left out, %d Sigma events lost their own rule",
                 rules.failed, rules.own_removed)
    return ds


_RULES: list[TrainingRules] = []


def training_rules() -> TrainingRules:
    """The shipped rule pack, loaded once per process."""
    if not _RULES:
        _RULES.append(TrainingRules.load())
    return _RULES[0]


@dataclass(frozen=True)
class Weak:
    """How the metadata-derived OTRF attack events enter training.

    ``share``: their share of the training weight as positives (0: not positives);
    ``kinds``: the event types (``channel|code`` of :func:`models.otrf_labels.capture_labels`)
    that may be positives, empty = all; ``drop``: leave the other labelled events out of the
    negatives (unlabelled) instead of training them as 0."""

    share: float = 0.0
    kinds: tuple[str, ...] = ()
    drop: bool = False


# Event types in which the attack's own content shows (a process it starts and its command
# line, a script block, a remote thread or process handle it opens, a file, registry value,
# pipe or connection it makes), as opposed to the ambient telemetry of its host process
# (module-logging records of the beacon loop, image loads, handle and WFP audit records).
ACTS = ("microsoft-windows-sysmon/operational|1", "security|4688",
        "microsoft-windows-powershell/operational|4104", "microsoft-windows-sysmon/operational|8",
        "microsoft-windows-sysmon/operational|10", "microsoft-windows-sysmon/operational|11",
        "microsoft-windows-sysmon/operational|13", "microsoft-windows-sysmon/operational|17",
        "microsoft-windows-sysmon/operational|18", "microsoft-windows-sysmon/operational|3")
# Shipped: metadata-labelled attack events are left out of the negatives, none are positives
# (chosen on the development half of the groups, checked once on the held-out half).
WEAK = Weak(drop=True)


def _weak_split(ds: Dataset, weak: Weak) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(rows trained as positives, rows left out) under ``weak``."""
    none = np.zeros(len(ds.y), bool)
    if weak.share <= 0 and not weak.drop:
        return none, none
    flags, kinds = weak_labels(ds)
    pos = flags & np.isin(kinds, weak.kinds) if weak.kinds else flags.copy()
    if weak.share <= 0:
        pos = none
    return pos, (flags & ~pos) if weak.drop else none


def train_mask(ds: Dataset, weak: Weak | None = None) -> npt.NDArray[np.bool_]:
    pos, drop = _weak_split(ds, weak or WEAK)
    mask: npt.NDArray[np.bool_] = (ds.source == "sigma") | cap_per_key(
        np.where(ds.source == "otrf", ds.capture, ""), CAPTURE_CAP)
    return (mask | pos) & ~drop


def train_labels(ds: Dataset, weak: Weak | None = None) -> npt.NDArray[np.int8]:
    pos, _ = _weak_split(ds, weak or WEAK)
    return np.asarray(ds.y | pos, dtype=np.int8)


def weights(ds: Dataset, weak: Weak | None = None) -> npt.NDArray[np.float64]:
    weak = weak or WEAK
    mask = train_mask(ds, weak)
    wpos, _ = _weak_split(ds, weak)
    pos, neg = mask & (ds.y == 1), mask & (ds.y == 0) & ~wpos
    share = weak.share if wpos.any() else 0.0
    w = np.where(ds.y == 1, POS_SHARE / max(pos.sum(), 1), (1 - POS_SHARE - share) / max(neg.sum(), 1))
    if wpos.any():
        # Equal weight per capture and event type, so one agent's thousands of records of
        # one type do not stand for the whole attack.
        bal = balanced_weights(ds.capture[wpos], weak_labels(ds)[1][wpos])
        w[wpos] = share * bal / bal.sum()
    return np.asarray(w / w[mask].mean(), dtype=np.float64)


def monotonic(names: tuple[str, ...]) -> list[int]:
    return [1 if n.startswith(INCREASING) or n in V3_INDICATORS else -1 if n in DECREASING else 0 for n in names]


SPEC = Spec(
    name="edr_classifier",
    kind="edr",
    dataset=dataset,
    fit=lambda names: hgb(max_iter=200, max_leaf_nodes=15, min_samples_leaf=20, monotonic_cst=monotonic(names)),
    budget_fpr=BUDGET_FPR,
    evaluate=evaluate,
    weights=weights,
    train_mask=train_mask,
    train_labels=train_labels,
    budget_benign=budget_benign,
    threshold=fused_threshold,
    provenance=lambda features: [training_rules().describe()] if features == "v3" else [],
    learner="scikit-learn HistGradientBoostingClassifier (200 trees, 15 leaves, monotone in "
            "tradecraft indicators), ONNX via skl2onnx",
    description="P(malicious) of one Windows endpoint event (Sysmon/Security/PowerShell) from "
                "behaviour class, process lineage classes and command-line tradecraft tokens.",
    attribution=ATTRIBUTION,
    card_notes=(__doc__ or "").split("Labels, deliberately:", 1)[-1].strip(),
)
