"""``scorer capacity --events-per-second 1e6 --alert-rate 0.01 [--gpu h200|h100|l40s]``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from scorer.capacity.measured import GPU_KINDS, load_measured
from scorer.capacity.plan import Plan, PlanError, Prices, plan
from scorer.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("capacity", help="processes, cores, Kafka partitions, Triton GPUs and monthly cost for an "
                                        "event rate, from the measured benchmarks in docs/results")
    p.add_argument("--events-per-second", type=float, required=True,
                   help="events per second over all kinds at peak (required)")
    p.add_argument("--alert-rate", type=float, default=0.01,
                   help="alerts per event, 0..1: sizes the incident job and alert topics (default 0.01)")
    p.add_argument("--gpu", choices=GPU_KINDS, default="h200",
                   help="GPU kind for Triton; only h200 was measured serving many scorers (default h200)")
    p.add_argument("--gpu-rows-per-second", type=float, default=None,
                   help="rows/s one GPU serves, from your own deploy/gpu/bench.sh run (default: the measured one)")
    p.add_argument("--utilisation", type=float, default=0.6,
                   help="share of each process's measured rate to plan for; 1 - headroom (default 0.6)")
    p.add_argument("--growth", type=float, default=2.0,
                   help="times today's rate the partition counts must carry without repartitioning (default 2)")
    p.add_argument("--spare-gpus", type=int, default=1, help="GPUs beyond what the load needs (default 1)")
    p.add_argument("--prices", type=Path, default=None,
                   help="JSON/YAML file of prices overriding the example rates (keys: see --json output; default none)")
    p.add_argument("--results", type=Path, default=Path("docs/results"),
                   help="folder of the benchmark JSON the plan reads (default docs/results)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table (default: table)")
    p.set_defaults(func=_capacity)


def _prices(path: Path | None) -> Prices:
    if path is None:
        return Prices()
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--prices {path}: {exc}") from exc
    if not isinstance(values, dict):
        raise PlanError(f"--prices {path}: a mapping of price key -> number expected")
    return Prices.override(values)


def render(p: Plan, prices: Prices) -> str:
    lines = [f"capacity for {p.events_per_s:,.0f} events/s, {p.alert_rate:g} alerts/event "
             f"({p.events_per_s * p.alert_rate:,.0f} alerts/s), GPU {p.gpu}", ""]
    lines.append(f"{'role':<18} {'processes':>9} {'cores':>7} {'GiB':>7}")
    for r in p.roles:
        lines.append(f"{r.name:<18} {r.processes:>9} {r.processes * r.cores:>7.0f} {r.processes * r.gib:>7.0f}")
    lines.append(f"{'total':<18} {sum(r.processes for r in p.roles):>9} {p.cores:>7.0f} "
                 f"{sum(r.processes * r.gib for r in p.roles):>7.0f}")
    lines.append("")
    lines.append(f"Kafka partitions per input topic (netflow, edr, siem): {p.partitions_per_topic}"
                 f"  (= KEDA's replica cap)")
    lines.append(f"Kafka partitions per alert topic: {p.alert_partitions}")
    if p.gpus is None:
        lines.append(f"Triton GPUs ({p.gpu}): NOT MEASURED (see notes)")
    else:
        lines.append(f"Triton GPUs ({p.gpu}): {p.gpus} (one Triton pod each, 2 model instances per GPU), "
                     f"load {p.gpu_busy:.0%} of the measured rate of the non-spare ones")
    lines.append("")
    lines.append("monthly cost, USD (example rates; override with --prices):")
    for item, usd in p.monthly.items():
        lines.append(f"  {item:<24} {usd:>12,.0f}")
    lines.append(f"  {'total':<24} {sum(p.monthly.values()):>12,.0f}"
                 + ("  (GPUs not included: not measured)" if p.gpus is None else ""))
    lines.append("")
    lines.append("measured rates used:")
    lines += [f"  - {n}" for n in p.notes]
    lines.append(f"prices: {json.dumps(asdict(prices))}")
    return "\n".join(lines)


def _capacity(args: argparse.Namespace) -> int:
    prices = _prices(args.prices)
    result = plan(load_measured(args.results), args.events_per_second, args.alert_rate, gpu=args.gpu,
                  utilisation=args.utilisation, growth=args.growth, spare_gpus=args.spare_gpus,
                  gpu_rows_per_s=args.gpu_rows_per_second, prices=prices)
    if args.json:
        print(json.dumps({**asdict(result), "cores": result.cores, "prices": asdict(prices)}, indent=2))
    else:
        print(render(result, prices))
    return 0
