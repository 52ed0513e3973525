"""``scorer models validate``: may this version replace production? A verdict with reasons.

Three gates, each a :class:`Check` with a sentence a detection engineer can act on:

1. integrity and contract: checksums verify; card and ONNX fit the kind's feature contract
   in the feature set the card declares (:mod:`scorer.lifecycle.contract`, the same checks
   the running scorer applies), and that feature set is production's: the scorers refuse to
   switch to another one;
2. quality on the golden set, against the production version scored on the same rows:
   ROC-AUC, recall at each model's own card threshold, and the share of benign rows that
   alert (alert volume is an analyst budget, so a model that buys recall with twice the
   alerts fails too);
3. latency, relative to production measured in the same run on the same machine (machines
   of one kind differ about 3x in speed, so a fixed number fails a good model on a slow
   one): in-process ONNX Runtime at the production micro-batch size, the two models run
   in turn on batches of their own width; the median of the paired ratios (candidate's
   time over production's on the run moments apart) may be at most ``latency_ratio``. The
   median, because a fixed batch of a fixed model takes a fixed time and what varies
   between runs is the machine (a p99 of 30 runs is the slowest run, i.e. whichever model
   a scheduler hiccup hit); p99 is reported beside it. An absolute p99 budget is checked
   only when the user sets one.

Beside them, the version's own artefacts of its trees: nvForest's checkpoint reproduces the
model on the golden rows (``gpu_artefact``), and the compiled library it carries, if any,
is one a scorer would load and scores as ONNX Runtime does (``compiled_trees``), and the
service's default engine scores its trees as ONNX Runtime does (``vectorized_trees``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from scorer.errors import ModelError
from scorer.inference.base import INPUT_NAME, OUTPUT_NAME
from scorer.inference.compiled import shipped_check
from scorer.inference.repository import ModelVersion, load_version
from scorer.inference.vectorized import vectorized_check
from scorer.lifecycle.contract import feature_set_mismatch, feature_set_name, version_problems
from scorer.lifecycle.golden import GoldenSet
from scorer.lifecycle.quality import ranking_metrics
from scorer.lifecycle.tree_export import gpu_check


class Check(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str


class Verdict(msgspec.Struct):
    model: str
    version: str
    against: str | None
    passed: bool
    checks: list[Check]
    metrics: dict[str, float]
    seconds: float

    def text(self) -> str:
        head = f"{self.model} version {self.version}" + (f" vs production {self.against}" if self.against else "")
        lines = [f"{'PASS' if self.passed else 'FAIL'}: {head}"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines.append(f"  ({self.seconds:.1f} s)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Margins:
    roc_auc: float = 0.01  # candidate ROC-AUC may be at most this much below production
    recall: float = 0.02  # recall at the card threshold, absolute
    alert_rate: float = 0.25  # benign alert share may grow by at most this fraction (relative)
    latency_us_per_event: float | None = None  # absolute p99 budget per event: only when set
    batch: int = 4096
    runs: int = 30
    latency_ratio: float = 1.25  # candidate median time per event <= production's x this


@dataclass
class Scored:
    """One version's scores on the golden set and what they mean at its threshold."""

    version: ModelVersion
    scores: npt.NDArray[np.float32]
    metrics: dict[str, float] = field(default_factory=dict)


def scores(model: bytes | Path, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                   providers=["CPUExecutionProvider"])
    (probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, np.float32)})
    return np.asarray(probs, np.float32)[:, 1]


def quality(s: npt.NDArray[np.float32], y: npt.NDArray[np.int8], threshold: float) -> dict[str, float]:
    # The same ranking metrics the training cards report: card metrics and verdicts compare.
    out = {k: float(v) for k, v in ranking_metrics(y, s.astype(np.float64)).items()}
    alerted = s >= threshold
    out["recall_at_threshold"] = float(alerted[y == 1].mean()) if (y == 1).any() else float("nan")
    out["alert_rate_benign"] = float(alerted[y == 0].mean()) if (y == 0).any() else float("nan")
    return out


class Latency(msgspec.Struct, frozen=True):
    """Microseconds per event at one batch size, one thread, as the scorer's in-process
    backend runs."""

    p50: float
    p99: float


def latencies(paths: list[tuple[Path, int]], batch: int, runs: int) -> tuple[list[Latency], list[list[float]]]:
    """Each (model, input width) run ``runs`` times in turn with the others, so all see the
    same machine at the same moments (three warm-up rounds excluded): each one's
    microseconds per event (median, p99), and its times aligned with the others' (entry k
    of every list timed moments apart)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    models = [(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]),
               rng.normal(size=(batch, width)).astype(np.float32)) for path, width in paths]
    times: list[list[float]] = [[] for _ in models]
    for i in range(runs + 3):
        # Alternate who goes first: neither model always follows the other's cache traffic.
        order = range(len(models)) if i % 2 == 0 else reversed(range(len(models)))
        for j in order:
            session, x = models[j]
            t0 = time.perf_counter()
            session.run([OUTPUT_NAME], {INPUT_NAME: x})
            if i >= 3:
                times[j].append((time.perf_counter() - t0) * 1e6 / batch)
    return [latency_of(t) for t in times], times


def latency_of(times: list[float]) -> Latency:
    """The median and p99 of one model's (or rule engine's) microseconds per event."""
    return Latency(*(float(v) for v in np.percentile(times, [50, 99])))


def paired_ratio(candidate: list[float], production: list[float]) -> float:
    """The median of the candidate's time over production's, run by run: on a shared
    machine the load drifts within a run, and a ratio of the two medians carries that drift
    (a rule pack against an identical one measured 1.25 x at load 8 on 2 cores; a model
    against itself 1.30 x at sub-microsecond times)."""
    return float(np.median(np.divide(candidate, np.maximum(production, 1e-9))))


def validate(
    repo: Path, name: str, version: str, kind: str,
    golden: GoldenSet | Callable[[tuple[str, ...]], GoldenSet], *,
    production: str | None, margins: Margins = Margins(),
) -> Verdict:
    """``golden`` may be a callable, given the feature sets the golden set must hold
    (candidate's, production's): building one from the shared data takes seconds, and a
    version that fails its contract needs none."""
    started = time.perf_counter()
    checks: list[Check] = []
    try:
        candidate = load_version(repo, name, version)
    except ModelError as exc:  # IntegrityError included: a tampered model gets no further
        return Verdict(name, version, production, False, [Check("integrity", False, str(exc))], {},
                       time.perf_counter() - started)
    checks.append(Check("integrity", True, f"sha256 of {len(_listed(candidate))} files match SHA256SUMS"))
    problems = version_problems(candidate, kind)
    checks.append(Check("contract", not problems, "; ".join(problems) or
                        f"{kind} {feature_set_name(candidate.card.feature_set)} feature contract "
                        f"({len(candidate.card.feature_names)} features), "
                        "FP32 [batch, n] -> [batch, 2]"))
    if problems:
        return Verdict(name, version, production, False, checks, {}, time.perf_counter() - started)
    try:
        # Production may be the candidate itself (validating what is live): compared all the same.
        prod_version = load_version(repo, name, production) if production is not None else None
        if prod_version is not None:
            checks.append(_feature_set_check(kind, candidate, prod_version))
        sets = tuple(mv.card.feature_set for mv in (candidate, prod_version) if mv is not None)
        gold = golden(sets) if callable(golden) else golden
        cand_rows = gold.select(candidate.card.feature_names)
        prod_rows = gold.select(prod_version.card.feature_names) if prod_version is not None else None
    except ModelError as exc:  # no golden set, or production itself is broken: no comparison
        checks.append(Check("quality", False, f"cannot compare: {exc}"))
        return Verdict(name, version, production, False, checks, {}, time.perf_counter() - started)
    cand = Scored(candidate, scores(candidate.onnx_path, cand_rows.features))
    cand.metrics = quality(cand.scores, gold.labels, candidate.card.threshold)
    metrics = {f"candidate_{k}": v for k, v in cand.metrics.items()}
    if prod_version is not None and prod_rows is not None:
        prod = Scored(prod_version, scores(prod_version.onnx_path, prod_rows.features))
        prod.metrics = quality(prod.scores, gold.labels, prod_version.card.threshold)
        metrics.update({f"production_{k}": v for k, v in prod.metrics.items()})
        checks += _quality_checks(cand, prod, margins, gold)
    else:
        checks.append(Check("quality", True, f"no production version to compare with; golden "
                                             f"ROC-AUC {cand.metrics.get('roc_auc', float('nan')):.4f}"))
    checks.append(Check(*gpu_check(candidate.path, cand_rows.features, cand.scores, candidate.card.threshold)))
    checks.append(Check("compiled_trees", *shipped_check(candidate, lambda rows: scores(candidate.onnx_path, rows))))
    checks.append(Check("vectorized_trees", *vectorized_check(candidate,
                                                             lambda rows: scores(candidate.onnx_path, rows))))
    checks += _latency_checks(candidate, prod_version, margins, metrics)
    passed = all(c.ok for c in checks)
    return Verdict(name, version, production, passed, checks, metrics, time.perf_counter() - started)


def _latency_checks(
    candidate: ModelVersion, production: ModelVersion | None, m: Margins, metrics: dict[str, float],
) -> list[Check]:
    models = [candidate, *([production] if production is not None else [])]
    measured, times = latencies([(mv.onnx_path, len(mv.card.feature_names)) for mv in models], m.batch, m.runs)
    cand = measured[0]
    metrics.update(latency_p50_us_per_event=cand.p50, latency_p99_us_per_event=cand.p99)
    where = f"at batch {m.batch}, {m.runs} runs each"
    checks = []
    if production is not None:
        prod = measured[1]
        metrics.update(production_latency_p50_us_per_event=prod.p50, production_latency_p99_us_per_event=prod.p99)
        ratio = paired_ratio(times[0], times[1])
        metrics.update(latency_ratio=ratio)
        checks.append(Check("latency", ratio <= m.latency_ratio,
                            f"median {cand.p50:.2f} us/event vs production {production.version}'s {prod.p50:.2f}: "
                            f"{ratio:.2f} x (median of paired runs; limit {m.latency_ratio:.2f} x; p99 "
                            f"{cand.p99:.2f} vs {prod.p99:.2f}) {where}, same run"))
    return budget_checks(checks, cand, m.latency_us_per_event, where, "us/event")


def budget_checks(checks: list[Check], cand: Latency, budget: float | None, where: str, unit: str) -> list[Check]:
    """``checks`` (the comparison with production, if any) and the absolute p99 budget when
    the user set one; with neither, one line of what was measured. Models and rule packs."""
    if budget is not None:
        checks.append(Check("latency_budget", cand.p99 <= budget,
                            f"p99 {cand.p99:.2f} {unit} (median {cand.p50:.2f}) {where}, budget {budget:.1f} us/event"))
    if not checks:
        checks.append(Check("latency", True, f"median {cand.p50:.2f} {unit}, p99 {cand.p99:.2f} {where}; "
                                             "no production to compare with and no budget set"))
    return checks


def _feature_set_check(kind: str, candidate: ModelVersion, production: ModelVersion) -> Check:
    why = feature_set_mismatch(kind, candidate.card, production.card.feature_names)
    fs = feature_set_name(candidate.card.feature_set)
    return Check("feature_set", why is None, why or f"{fs}, as production {production.version}: a switch can serve it")


def _quality_checks(cand: Scored, prod: Scored, m: Margins, golden: GoldenSet) -> list[Check]:
    c, p = cand.metrics, prod.metrics
    where = f"on golden set: {golden.describe()}"
    auc_c, auc_p = c.get("roc_auc", float("nan")), p.get("roc_auc", float("nan"))
    rec_c, rec_p = c["recall_at_threshold"], p["recall_at_threshold"]
    alert_c, alert_p = c["alert_rate_benign"], p["alert_rate_benign"]
    alert_limit = alert_p * (1 + m.alert_rate) + 1e-3  # +0.1 point: a near-zero rate may move a little
    return [
        Check("roc_auc", bool(auc_c >= auc_p - m.roc_auc),
              f"{auc_c:.4f} vs production {auc_p:.4f} (margin {m.roc_auc}) {where}"),
        Check("recall", bool(rec_c >= rec_p - m.recall),
              f"{rec_c:.4f} at threshold {cand.version.card.threshold:.6g} vs production {rec_p:.4f} "
              f"at {prod.version.card.threshold:.6g} (margin {m.recall})"),
        Check("alert_volume", bool(alert_c <= alert_limit),
              f"{alert_c:.2%} of benign golden rows alert vs production {alert_p:.2%} "
              f"(limit {alert_limit:.2%})"),
    ]


def _listed(version: ModelVersion) -> list[str]:
    return [line for line in (version.path / "SHA256SUMS").read_text().splitlines() if line.strip()]
