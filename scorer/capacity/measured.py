"""The measured rates a capacity plan rests on, each read from a committed benchmark JSON
with the file and the numbers it came from, so a plan can say what every figure rests on.

- scorer process: ``scorer bench`` (bench-all.json), runner ``scorer-triton``: median
  events/s of one process over the runs in the file.
- profile worker: bench-profiles.json, ``worker.events_per_s``.
- incident job: bench-incidents.json: the offered finding rate every run sustained
  (achieved within 1% of offered); a floor, not the job's limit.
- GPU: rows/s one GPU served to many scorer processes over gRPC with the production
  config (two GPU instances), deploy/gpu's scorers bench: H200 only
  (gpu_nvforest_h200.json). H100 has one request in flight only, on the superseded torch
  backend (gpu_triton_h100.json): a lower bound. L40S: nothing measured.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scorer.errors import ConfigError

GPU_KINDS = ("h200", "h100", "l40s")
PRODUCTION_BATCH = 4096  # SCORER_BATCH__MAX_RECORDS default: the rows of one request at load


@dataclass(frozen=True)
class Measurement:
    value: float  # per process / per GPU, per second
    source: str  # file and how the value was taken from it
    caveat: str = ""  # how far the measurement is from the deployment it is used for


@dataclass(frozen=True)
class Measured:
    scorer_eps: Measurement
    scorer_cpu_us: Measurement
    profiles_eps: Measurement
    incidents_fps: Measurement
    gpu_rows: dict[str, Measurement | None]  # None: not measured


def _read(results: Path, name: str) -> Any:
    path = results / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"capacity: cannot read measured results {path}: {exc}") from exc


def _scorer(results: Path) -> tuple[Measurement, Measurement]:
    rows = [r for r in _read(results, "bench-all.json")["results"]
            if r["runner"] == "scorer-triton" and r["throughput_eps"] > 0]
    if not rows:
        raise ConfigError(f"capacity: no scorer-triton run in {results / 'bench-all.json'}")
    eps = statistics.median(r["throughput_eps"] for r in rows)
    cpu = statistics.median(r["cpu_us_per_event"] for r in rows)
    src = f"bench-all.json: median of {len(rows)} scorer-triton runs"
    caveat = "measured on a shared 2-core VM with the broker on the same cores"
    return Measurement(eps, src, caveat), Measurement(cpu, src, caveat)


def _incidents(results: Path) -> Measurement:
    runs = _read(results, "bench-incidents.json")["runs"]
    sustained = [p["offered_per_s"] for r in runs.values() for p in r["phases"]
                 if p["phase"] == "incidents" and p["achieved_per_s"] >= 0.99 * p["offered_per_s"]]
    if not sustained:
        raise ConfigError(f"capacity: no incidents phase that kept up in {results / 'bench-incidents.json'}")
    return Measurement(min(sustained), f"bench-incidents.json: offered rate kept up with in {len(sustained)} runs",
                       "a floor: the bench offers a fixed rate, it does not search for the limit")


def _h200(results: Path) -> Measurement:
    points = [(run["id"], p) for run in _read(results, "gpu_nvforest_h200.json")["runs"]
              for key in ("scorers_nvforest",) if key in run for p in run[key]["points"]]
    best = {rid: max(p["rows_per_s"] for r, p in points if r == rid) for rid, _ in points}
    if not best:
        raise ConfigError(f"capacity: no many-scorers gRPC point in {results / 'gpu_nvforest_h200.json'}")
    return Measurement(min(best.values()), "gpu_nvforest_h200.json: scorers_nvforest (gRPC, 2 GPU instances), "
                       f"lower of runs {sorted(best)}")


def _h100(results: Path) -> Measurement:
    run = _read(results, "gpu_triton_h100.json")["runs"]["run_2026_11_28_0341"]
    rows = [p["rows_per_s"] for p in run["gpu_vs_cpu_python_client"]["server"]
            if p["engine"] == "torch" and p["transport"] == "grpc" and p["batch"] == PRODUCTION_BATCH]
    if not rows:
        raise ConfigError(f"capacity: no {PRODUCTION_BATCH}-row gRPC point in {results / 'gpu_triton_h100.json'}")
    return Measurement(min(rows), f"gpu_triton_h100.json: slowest model, {PRODUCTION_BATCH} rows, one in flight",
                       "lower bound: one request in flight, torch backend since replaced by nvForest")


def load_measured(results: Path) -> Measured:
    scorer_eps, scorer_cpu = _scorer(results)
    worker = _read(results, "bench-profiles.json")["worker"]
    profiles = Measurement(float(worker["events_per_s"]), "bench-profiles.json: worker.events_per_s",
                           f"one {worker['seconds']:.1f} s run")
    return Measured(scorer_eps, scorer_cpu, profiles, _incidents(results),
                    {"h200": _h200(results), "h100": _h100(results), "l40s": None})
