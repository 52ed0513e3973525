"""``scorer bench``: every runner on the same broker, model and events, side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scorer.bench.realistic import add_stream_arguments

if TYPE_CHECKING:
    from scorer.bench import harness
    from scorer.events.structs import EventKind

# The runners (harness, loadgen: the pipeline, the demo capture) are imported by main(), not
# here: the parser is built for every `scorer --help`.

RUNNERS = ("passthrough", "scorer-onnxruntime", "scorer-triton", "aiokafka-loop", "faust-agent", "quix-app")
BASELINES = ("aiokafka-loop", "faust-agent", "quix-app")
# Not run by default: scorer-onnxruntime plus the profile worker, the view and the join
# (scorer/bench/profiles.py); compare it with scorer-onnxruntime in the same run.
PROFILES = "scorer-profiles"
# Not run by default, needs no broker: the Sigma rule layer in process over real OTRF EDR
# events, rules on vs off (scorer/bench/rules.py; its --rule-* options).
RULES = "rules"
# Not run by default: scorer-onnxruntime with the compiled-trees engine
# (inference.in_process_engine=compiled), or the vectorized one (=vectorized, the service's
# default where the CPU has AVX2); compare them with scorer-onnxruntime in the same run.
COMPILED = "scorer-compiled"
VECTORIZED = "scorer-vectorized"
ENGINES = {COMPILED: "compiled", VECTORIZED: "vectorized"}


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks on the real broker: scorer vs passthrough vs per-event baselines")
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka brokers to benchmark on (default: %(default)s)")
    p.add_argument("--triton-url", default="127.0.0.1:8001",
                   help="Triton gRPC for scorer-triton (default: %(default)s)")
    p.add_argument("--model-repository", type=Path, default=Path("model_repository"),
                   help="models the scorer runners load (default: %(default)s)")
    p.add_argument("--events", type=int, default=100_000,
                   help="events preloaded for the drain phase (default: %(default)s)")
    p.add_argument("--baseline-events", type=int, default=20_000,
                   help="drain size for per-event baselines (default: %(default)s)")
    p.add_argument("--rate", type=float, action="append",
                   help="offered rate(s) for the latency phase, events/s; repeat for more; 0: no latency phase, "
                        "drains only (default: 10000)")
    p.add_argument("--baseline-rate", type=float, action="append",
                   help="offered rate(s) for per-event baselines (default: --rate)")
    p.add_argument("--rate-seconds", type=float, default=10.0,
                   help="seconds each latency phase offers its rate, after the warm-up (default: %(default)s)")
    p.add_argument("--runners", default=",".join(RUNNERS),
                   help="comma-separated, any of " + ",".join((*RUNNERS, PROFILES, *ENGINES, RULES))
                   + " (default: %(default)s)")
    p.add_argument("--kinds", default="netflow,edr,siem",
                   help="event kinds to produce, comma-separated (default: %(default)s)")
    p.add_argument("--partitions", type=int, default=3,
                   help="partitions of each benchmark topic (default: %(default)s)")
    p.add_argument("--max-records", type=int, default=None,
                   help="SCORER_BATCH__MAX_RECORDS for scorer runners (default: the service's)")
    add_outputs_argument(p, "; per-event baselines need scores")
    p.add_argument("--repeat", type=int, default=1,
                   help="drains per runner, interleaved; ratios use the median (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("out/bench.json"),
                   help="results JSON to write (default: %(default)s)")
    add_stream_arguments(p)
    from scorer.bench.rules import add_arguments as rule_arguments

    rule_arguments(p)
    p.set_defaults(func=main)


def add_outputs_argument(p: argparse.ArgumentParser, note: str = "") -> None:
    """``--outputs``: what the scorer runners write, and so how a drain is counted."""
    p.add_argument("--outputs", choices=("scores", "alerts"), default="scores",
                   help="what the scorer runners write: a score record per event, counted on the output topic "
                        "(like the passthrough's copies), or alerts only, the service's default, counted by the "
                        f"offsets their group commits{note} (default: %(default)s)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scorer_env(args: argparse.Namespace, topics: dict[EventKind, str], out: str, group: str,
                bootstrap: str, port: int) -> dict[str, str]:
    from scorer.bench.harness import run_prefix

    env = {
        "SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SCORER_KAFKA__GROUP_ID": group,
        "SCORER_KINDS": json.dumps([k.value for k in topics]),
        **({"SCORER_TOPICS__SCORES": out} if getattr(args, "outputs", "scores") == "scores" else {}),
        # Under the run's prefix (``out``'s), which drop_topics deletes after the run: named by
        # the group alone they outlived it (844 topics on a dev broker, every client's
        # bootstrap metadata 110 KB, 30-110 ms of a runner's start-up each).
        "SCORER_TOPICS__ALERTS_PREFIX": f"{run_prefix(out)}{group}.alerts.",
        "SCORER_TOPICS__DEAD_LETTER": f"{run_prefix(out)}{group}.dlq",
        "SCORER_INFERENCE__TRITON_URL": args.triton_url,
        "SCORER_INFERENCE__MODEL_REPOSITORY": str(args.model_repository.resolve()),
        "SCORER_HTTP__PORT": str(port),
        # Quiet, unless asked (SCORER_BENCH_LOG_LEVEL=INFO: a runner's joins and assignments in its log).
        "SCORER_LOG_LEVEL": os.environ.get("SCORER_BENCH_LOG_LEVEL", "WARNING"),
    }
    for kind, topic in topics.items():
        env[f"SCORER_TOPICS__{kind.value.upper()}"] = topic
    if args.max_records:
        env["SCORER_BATCH__MAX_RECORDS"] = str(args.max_records)
    return env


def _command(name: str, args: argparse.Namespace, port: int) -> harness.Command:
    from scorer.bench import harness

    py = harness.python()

    def cmd(bootstrap: str, topics: dict[EventKind, str], out: str, group: str) -> tuple[list[str], dict[str, str]]:
        env = _scorer_env(args, topics, out, group, bootstrap, port)
        if name == "passthrough":  # copies every record, whatever --outputs says
            return [py, "-m", "scorer.bench.passthrough"], {**env, "SCORER_TOPICS__SCORES": out}
        if name == PROFILES:
            env.update(SCORER_INFERENCE__BACKEND="onnxruntime", SCORER_PROFILES__SOURCE="topic",
                       SCORER_PROFILES__TOPIC_PREFIX=f"{group}.profiles.",
                       SCORER_INFERENCE__MODEL_REPOSITORY=str(args.profile_models))
            return [py, "-m", "scorer.bench.profiles"], env
        if name in ENGINES:
            env.update(SCORER_INFERENCE__BACKEND="onnxruntime", SCORER_INFERENCE__IN_PROCESS_ENGINE=ENGINES[name])
            return [py, "-m", "scorer.cli", "run"], env
        if name.startswith("scorer-"):
            env["SCORER_INFERENCE__BACKEND"] = name.removeprefix("scorer-")
            # The service's default engine is auto (compiled where it can be): this runner is
            # ONNX Runtime's, scorer-compiled the compiled trees'.
            env["SCORER_INFERENCE__IN_PROCESS_ENGINE"] = "onnxruntime"
            env["SCORER_INFERENCE__ON_TRITON_OUTAGE"] = "pause"  # measure Triton, never a silent fallback
            return [py, "-m", "scorer.cli", "run"], env
        argv = [py, "-m", "scorer.bench.baselines", name, "--bootstrap", bootstrap, "--group", group, "--out", out,
                "--topics", ",".join(topics.values()), "--kinds", ",".join(k.value for k in topics),
                "--repository", str(args.model_repository.resolve())]
        return argv, {}

    return cmd


def offered_rates(asked: list[float] | None, default: list[float] | None = None) -> list[float]:
    """The latency phases' rates: those asked for (default 10,000 events/s); 0 asks for none."""
    if not asked:
        return [10_000.0] if default is None else default
    return [r for r in asked if r > 0]


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    import msgspec

    from scorer.bench import harness
    from scorer.bench.loadgen import payloads, templates
    from scorer.bench.realistic import stream_templates
    from scorer.demo import bundled_capture
    from scorer.events.structs import EventKind

    kinds = tuple(EventKind(k) for k in args.kinds.split(","))
    tpl = stream_templates(args, templates(bundled_capture(), kinds))
    rates = offered_rates(args.rate)
    workdir = Path(tempfile.mkdtemp(prefix="scorer-bench-"))
    results: list[harness.RunResult] = []
    names = args.runners.split(",")
    ports = {name: _free_port() for name in names}
    failed: set[str] = set()
    if PROFILES in names:
        from scorer.bench.profiles import profile_repository
        from scorer.config import InferenceSettings

        models = {k: InferenceSettings().models[k.value] for k in kinds}
        args.profile_models = profile_repository(args.model_repository.resolve(), workdir / "models-v2", models)

    async def attempt(name: str, phase: Any) -> None:
        try:
            res = await phase
        except RuntimeError as exc:  # one runner failing must not cost the others' numbers
            print(f"{name:20s} FAILED: {exc}", flush=True)
            failed.add(name)
            res = harness.RunResult(runner=name, events=0, throughput_eps=0.0, cpu_us_per_event=0.0,
                                    peak_rss_mb=0.0, note=f"failed: {exc}")
        results.append(res)
        print(_row(res), flush=True)

    # Drains round-robin over the runners, ``--repeat`` times: background load on a shared
    # machine drifts, and interleaving spreads it over all runners instead of one.
    for _ in range(args.repeat):
        for name in names:
            if name not in failed:
                items = list(payloads(tpl, args.baseline_events if name in BASELINES else args.events))
                await attempt(name, harness.drain(name, _command(name, args, ports[name]), args.bootstrap, items,
                                                  kinds, args.partitions, workdir, _metrics_port(name, ports),
                                                  committed=args.outputs == "alerts"))
    for name in names:
        for rate in offered_rates(args.baseline_rate, rates) if name in BASELINES else rates:
            if name not in failed:
                items = list(payloads(tpl, int(rate * (args.rate_seconds + harness.WARM_UP_S))))
                await attempt(name, harness.fixed_rate(name, _command(name, args, ports[name]), args.bootstrap,
                                                       items, kinds, args.partitions, workdir, rate,
                                                       _metrics_port(name, ports)))
    summary = _ratios(results)
    print(json.dumps(summary, indent=2))
    return {"results": msgspec.to_builtins(results), "ratios": summary, "logs": str(workdir)}


def _metrics_port(name: str, ports: dict[str, int]) -> int | None:
    return ports[name] if name.startswith("scorer-") or name == "passthrough" else None


def _row(r: harness.RunResult) -> str:
    if r.rate_offered_eps:
        return (f"{r.runner:20s} rate {r.rate_offered_eps:>8.0f}/s achieved {r.rate_achieved_eps:>8.0f}/s  "
                f"e2e ms {r.e2e_ms}  added ms {r.added_ms}  rss {r.peak_rss_mb} MB\n"
                f"{'':20s} per batch {r.batch_mean}")
    return (f"{r.runner:20s} drain {r.events} events: {r.throughput_eps:>9.0f} events/s  "
            f"cpu {r.cpu_us_per_event:>7.1f} us/event  rss {r.peak_rss_mb} MB {r.note}\n"
            f"{'':20s} per batch {r.batch_mean}")


def _ratios(results: list[harness.RunResult]) -> dict[str, float]:
    """Median drain throughput per runner (over ``--repeat`` runs), and the ratios."""
    import numpy as np

    runs: dict[str, list[float]] = {}
    for r in results:
        if not r.rate_offered_eps and r.throughput_eps:
            runs.setdefault(r.runner, []).append(r.throughput_eps)
    drain = {name: float(np.median(v)) for name, v in runs.items()}
    out: dict[str, float] = {f"{name}/median_events_per_s": round(eps) for name, eps in drain.items()}
    best_baseline = max((drain[b] for b in BASELINES if b in drain), default=0.0)
    for name, eps in drain.items():
        if drain.get("passthrough"):
            out[f"{name}/passthrough"] = round(eps / drain["passthrough"], 3)
        if name in (PROFILES, *ENGINES) and drain.get("scorer-onnxruntime"):
            out[f"{name}/scorer-onnxruntime"] = round(eps / drain["scorer-onnxruntime"], 3)
        if best_baseline and name.startswith("scorer-"):
            out[f"{name}/best_baseline"] = round(eps / best_baseline, 2)
    return out


def main(args: argparse.Namespace) -> int:
    names = args.runners.split(",")
    if args.outputs == "alerts" and (set(names) & set(BASELINES) or offered_rates(args.rate)):
        # A baseline commits on its own schedule, and the latency phase reads each event's output.
        raise SystemExit("--outputs alerts: drains only (--rate 0), of the scorer runners and the passthrough")
    rules_report: dict[str, Any] | None = None
    if RULES in names:
        from scorer.bench import rules

        rules_report = rules.bench(args.captures, args.pack, args.rule_events, args.rule_batch, args.rule_repeat)
        print(rules.format_report(rules_report), flush=True)
        names.remove(RULES)
        args.runners = ",".join(names)
    report = asyncio.run(_bench(args)) if names else {}
    if rules_report is not None:
        report["rules"] = rules_report
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"results: {args.out}")
    return 0
