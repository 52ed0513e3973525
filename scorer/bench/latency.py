"""Where the p99 goes: fixed-rate runs of the passthrough and the scorer, interleaved, with
every latency histogram the runners expose read from ``/metrics`` before and after.

    python -m scorer.bench.latency --rate 10000 --seconds 10 --rounds 3 [--stream realistic] [--before-tree DIR] \\
        --out docs/results/bench-latency.json

Each round runs every runner once at the offered rate (same harness as ``scorer bench``'s
fixed-rate phase: warm-up, then the measured phase on fresh topics), so background load on
a shared machine hits both alike. Printed per run: end-to-end and added latency, then the
p50 / p99 of each histogram over the measured phase: the stages of a micro-batch
(``scorer_stage_seconds``: decode .. decide, then score, send, ack), how old a batch's
oldest record was when the consumer returned it (``scorer_fetch_delay_seconds``), how late
the event loop served a timer (``scorer_event_loop_lag_seconds``) and GC pauses. The goal
line compares the scorer's added p99 with the passthrough's of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from scorer.bench import harness
from scorer.bench.cli import _command, _free_port
from scorer.bench.loadgen import payloads, templates
from scorer.bench.realistic import add_stream_arguments, stream_templates
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.metrics.batchtrace import TRACE_ENV

BEFORE = "scorer-onnxruntime"  # the runner --before-tree runs from another source tree, by default
HISTOGRAMS = ("scorer_added_latency_seconds", "scorer_stage_seconds", "scorer_fetch_delay_seconds",
              "scorer_event_loop_lag_seconds", "scorer_gc_pause_seconds")
# The scoring stages a batch's ``score`` is timed in (BatchScorer's timings; inference runs
# inside the loop's turns or overlaps the features, so it is not one of them).
STAGES = ("decode", "rules", "features", "inference_wait", "decide")
QUANTILES = (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))


def histogram_quantiles(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, dict[str, float]]:
    """Per series of the histograms in :data:`HISTOGRAMS` (``name`` or ``name{label}``): the
    count and the quantiles (ms, bucket upper bounds) of what was observed between the two
    scrapes (``runner_metrics.scrape`` samples)."""
    if before is None or after is None:
        return {}
    series: dict[str, dict[float, float]] = {}
    for sample, value in after.items():
        name, _, labels = sample.partition("{")
        base = name.removesuffix("_bucket")
        if base == name or base not in HISTOGRAMS:
            continue
        pairs = dict(p.split("=", 1) for p in labels.rstrip("}").split(",") if "=" in p)
        le = pairs.pop("le").strip('"')
        key = base + "".join(f"{{{k}={v.strip(chr(34))}}}" for k, v in sorted(pairs.items()))
        bound = float("inf") if le == "+Inf" else float(le)
        series.setdefault(key, {})[bound] = value - before.get(sample, 0.0)
    out: dict[str, dict[str, float]] = {}
    for key, buckets in series.items():
        bounds = sorted(buckets)
        cum = np.array([buckets[b] for b in bounds])
        n = float(cum[-1])
        if n <= 0:
            continue
        stats = {"count": n}
        for label, q in QUANTILES:
            idx = min(int(np.searchsorted(cum, q * n, side="left")), len(bounds) - 1)
            stats[label] = round(bounds[idx] * 1000, 3)
        out[key] = stats
    return out


def trace_rows(path: Path, window: tuple[float, float]) -> list[dict[str, float]]:
    """The batches of a runner's trace (scorer.metrics.batchtrace) fetched inside ``window``."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [row for row in rows if window[0] <= row["t"] <= window[1]]


def exact_added(rows: list[dict[str, float]]) -> dict[str, float]:
    """The records' added latency quantiles (ms) from a trace's batches, each batch's
    ``added_ms`` counted once per record: the values themselves, where the histogram gives
    the upper bound of the bucket each falls in (buckets ~12% apart)."""
    if not rows:
        return {}
    values = np.repeat([row["added_ms"] for row in rows], [int(row["records"]) for row in rows])
    return {label: round(float(np.percentile(values, q * 100)), 3) for label, q in QUANTILES}


def tail_report(rows: list[dict[str, float]]) -> str:
    """What the batches at and above the records' p99 of added latency had, against the
    median ones (p40-p60): mean of every field, and how many had a GC, an involuntary
    context switch, or were off the CPU for a third of their ``score``. Derived per batch:
    ``offcpu`` (score's wall minus the thread's CPU) and ``rest`` (score minus its stages
    and the loop's turns: building the records and the outputs, the wrapper)."""
    if len(rows) < 10:
        return f"    trace: {len(rows)} batches in the measured phase, too few"
    for row in rows:  # derived: off the CPU, and what score holds besides its stages and turns
        row["offcpu_ms"] = row["score_ms"] - row["score_cpu_ms"]
        row["rest_ms"] = row["score_ms"] - row.get("io_ms", 0.0) - sum(row.get(f"{s}_ms", 0.0) for s in STAGES)
    ordered = sorted(rows, key=lambda row: row["added_ms"])
    weights = np.cumsum([row["records"] for row in ordered])
    at = [int(np.searchsorted(weights, q * weights[-1])) for q in (0.4, 0.6, 0.99)]
    groups = {"median": ordered[at[0]:at[1] + 1], "p99+": ordered[at[2]:]}
    fields = sorted({key for row in rows for key in row} - {"t"})
    lines = [f"    trace: {len(rows)} batches; mean per batch of the median (p40-p60 of added) and the p99+ ones"]
    for name, group in groups.items():
        def mean(key: str, group: list[dict[str, float]] = group) -> float:
            return float(np.mean([row.get(key, 0.0) for row in group]))

        off_cpu = sum(row["offcpu_ms"] > row["score_ms"] / 3 for row in group)
        lines.append(f"    {name:6s} n={len(group):4d} " + " ".join(f"{key.removesuffix('_ms')}={mean(key):.3f}"
                                                           for key in fields))
        lines.append(f"    {name:6s} with gc {sum(row['gcs'] > 0 for row in group)}, with ivcsw "
                     f"{sum(row['ivcsw'] > 0 for row in group)}, off-CPU > 1/3 of score {off_cpu}")
    return "\n".join(lines)


def _runner(name: str, args: argparse.Namespace, port: int) -> harness.Command:
    """``scorer bench``'s runner; ``<runner>-before`` runs it from ``--before-tree`` (first on
    PYTHONPATH): the code before a change, in the same run as the code after it. (The name
    goes into topic, group and log file names: letters, digits, '.', '_', '-' only.)"""
    if name != f"{args.before_runner}-before":
        return _command(name, args, port)
    command = _command(args.before_runner, args, port)
    # First on the path, the rest of it kept (packages installed outside the environment).
    tree = os.pathsep.join(p for p in (str(args.before_tree.resolve()), os.environ.get("PYTHONPATH", "")) if p)

    def from_tree(*where: Any) -> tuple[list[str], dict[str, str]]:
        argv, env = command(*where)
        # -P: no working directory in front of PYTHONPATH (``python -m`` puts it first, and
        # the bench runs from the current checkout, whose scorer/ would win).
        return [argv[0], "-P", *argv[1:]], {**env, "PYTHONPATH": tree}

    return from_tree


def _line(res: harness.RunResult) -> str:
    hist = res.histograms
    head = (f"{res.runner:20s} {res.rate_offered_eps:>6.0f}/s achieved {res.rate_achieved_eps:>7.0f}/s  "
            f"e2e ms {res.e2e_ms}  added ms {res.added_ms}  records/batch {res.batch_mean.get('records')}  "
            f"CPU {res.cpu_us_per_event} us/event")
    rows = [f"    {key:48s} n={int(v['count']):>7d}  p50 {v['p50']:>8.3f}  p99 {v['p99']:>8.3f}  "
            f"p99.9 {v['p99.9']:>8.3f} ms" for key, v in sorted(hist.items())]
    return "\n".join([head, *rows])


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    kinds = tuple(EventKind(k) for k in args.kinds.split(","))
    tpl = stream_templates(args, templates(bundled_capture(), kinds))
    workdir = Path(tempfile.mkdtemp(prefix="scorer-latency-"))
    names = args.runners.split(",") + ([f"{args.before_runner}-before"] if args.before_tree else [])
    ports = {name: _free_port() for name in names}
    items = list(payloads(tpl, int(args.rate * (args.seconds + harness.WARM_UP_S))))
    rounds: list[dict[str, harness.RunResult]] = []
    exact: list[dict[str, dict[str, float]]] = [{} for _ in range(args.rounds)]  # per round, from --trace
    for r in range(args.rounds):
        got: dict[str, harness.RunResult] = {}
        for name in names:
            trace = args.trace / f"{name}-round{r + 1}.jsonl" if args.trace else None
            if trace is not None:  # the runner inherits this process's environment
                os.environ[TRACE_ENV] = str(trace.resolve())
            res = await harness.fixed_rate(name, _runner(name, args, ports[name]), args.bootstrap, items, kinds,
                                           args.partitions, workdir, args.rate, ports[name])
            got[name] = res
            print(f"round {r + 1}: {_line(res)}", flush=True)
            if trace is not None and trace.exists():
                rows = trace_rows(trace, res.measured)
                exact[r][name] = exact_added(rows)
                print(f"    added ms from the trace (exact): {exact[r][name]}\n{tail_report(rows)}", flush=True)
        rounds.append(got)
        for source, p99s in (("histogram", {name: res.added_ms.get("p99", 0.0) for name, res in got.items()}),
                             ("trace", {name: q["p99"] for name, q in exact[r].items() if q})):
            if "passthrough" not in p99s:
                continue
            floor = p99s["passthrough"]
            for name, p99 in p99s.items():
                if name != "passthrough":
                    print(f"round {r + 1}: {name} added p99 ({source}) {p99:.3f} ms vs passthrough {floor:.3f} ms "
                          f"+ 1 ms: {'met' if p99 <= floor + 1.0 else 'NOT met'}", flush=True)
    return {"rate": args.rate, "seconds": args.seconds, "stream": args.stream, "logs": str(workdir),
            "rounds": [{name: msgspec.to_builtins(res) for name, res in got.items()} for got in rounds],
            "exact_added_ms": exact}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scorer.bench.latency", description=__doc__.split("\n")[0])
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers (default: %(default)s)")
    p.add_argument("--triton-url", default="127.0.0.1:8001",
                   help="Triton gRPC, for scorer-triton (default: %(default)s)")
    p.add_argument("--model-repository", type=Path, default=Path("model_repository"),
                   help="models the scorer runners load (default: %(default)s)")
    p.add_argument("--rate", type=float, default=10_000.0, help="offered events/s (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="measured seconds per run, after warm-up (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="runs of every runner, interleaved (default: %(default)s)")
    p.add_argument("--runners", default="passthrough,scorer-onnxruntime",
                   help="runners of scorer bench, comma separated (default: %(default)s)")
    p.add_argument("--before-tree", type=Path, default=None,
                   help="also run scorer-onnxruntime from this source tree (e.g. a `git archive` of an earlier "
                        "commit's scorer/), beside the current code in the same rounds (default: none)")
    p.add_argument("--before-runner", default=BEFORE, help="the runner --before-tree runs (default: %(default)s)")
    p.add_argument("--kinds", default="netflow,edr,siem", help="event kinds offered (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=3, help="partitions per topic (default: %(default)s)")
    p.add_argument("--max-records", type=int, default=None, help="SCORER_BATCH__MAX_RECORDS (default: the scorer's)")
    p.add_argument("--trace", type=Path, default=None,
                   help="write every measured batch of every run to DIR/<runner>-round<N>.jsonl (the runners' "
                        "SCORER_BATCH_TRACE) and print what the slowest 1%% of batches had (default: off)")
    add_stream_arguments(p)
    p.add_argument("--out", type=Path, default=Path("out/bench-latency.json"),
                   help="JSON report (default: %(default)s)")
    args = p.parse_args(argv)
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
    return write_report(args.out, asyncio.run(_bench(args)))


def write_report(out: Path, report: dict[str, Any]) -> int:
    """The benchmark's JSON report to ``out``; the exit code of a finished run."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
