"""``scorer replay``, ``scorer record`` and ``scorer eval`` (registered by scorer.cli)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scorer.captures import CaptureFormat, ReadError, capture_files
from scorer.captures.recorded import read_envelopes

from .outgoing import Outgoing, capture_items
from .player import Pacing, ProgressBar, planned


def register(sub: Any) -> None:
    rp = sub.add_parser("replay", help="replay captures into Kafka or the embedded scorer")
    rp.add_argument(
        "captures",
        nargs="+",
        type=Path,
        metavar="CAPTURE",
        help="capture files or folders (any format of scorer.captures), or `scorer record` dumps",
    )
    rp.add_argument(
        "--to",
        choices=("embedded", "kafka"),
        default="embedded",
        help="embedded: score in this process; kafka: produce to the input topics (default: %(default)s)",
    )
    rp.add_argument(
        "--out",
        type=Path,
        default=Path("out/replay"),
        help="folder for truth.jsonl, summary.json (and alerts/scores) (default: %(default)s)",
    )
    timing = rp.add_mutually_exclusive_group()
    timing.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="xN",
        help="as recorded, N times faster (x1000 or 1000); default x1",
    )
    timing.add_argument("--rate", type=float, metavar="N", help="fixed rate, N events per second (default: --speed)")
    timing.add_argument("--fast", action="store_true", help="as fast as possible (default: off, --speed)")
    rp.add_argument("--max-gap", type=float, metavar="S",
                    help="cut idle capture gaps to S seconds (default: keep them)")
    rp.add_argument("--limit", type=int, metavar="N", help="replay the first N events only (default: all)")
    rp.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    _kafka_options(rp)
    rp.add_argument(
        "--topic",
        help="kafka: produce every record to this topic (for recorded dumps: "
        "same partition numbers) (default: each kind's input topic)",
    )
    rp.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=300.0,
        metavar="S",
        help="kafka: wait up to S s (default 300) for the scorer, then collect alerts and scores; "
        "with --incidents (default) and an incident job running, then wait until it has "
        "correlated those alerts (giving up after S s without progress)",
    )
    rp.add_argument(
        "--group", help="kafka --wait: the scorer's consumer group (default: settings' group id)"
    )
    rp.add_argument("--batch", type=int, default=512, help="embedded: micro-batch size (default: %(default)s)")
    rp.add_argument(
        "--incidents",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="embedded: run the incident stage after the scorer (incidents.jsonl; settings "
        "SCORER_INCIDENTS__*); kafka: run `python -m streams incidents` beside the scorer "
        "(default: on)",
    )
    rp.add_argument(
        "--model-repository",
        type=Path,
        help="embedded: models to load (default: settings, SCORER_INFERENCE__MODEL_REPOSITORY)",
    )
    rp.set_defaults(func=_replay)

    rec = sub.add_parser("record", help="dump Kafka topics to a JSON-lines file")
    rec.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to dump, from their start")
    rec.add_argument("--out", type=Path, required=True, help="JSON-lines file to write (required)")
    _kafka_options(rec)
    rec.set_defaults(func=_record)

    ev = sub.add_parser("eval", help="evaluate a replay: report.json and report.html")
    ev.add_argument(
        "--truth", type=Path, required=True, help="truth.jsonl written by scorer replay"
    )
    ev.add_argument("--scores", type=Path, help="scores.jsonl, plain or a recorded scores topic (default: none)")
    ev.add_argument("--alerts", type=Path, help="alerts.jsonl, plain or recorded alert topics (default: none)")
    ev.add_argument(
        "--summary", type=Path, help="the replay's summary.json (default: next to --truth)"
    )
    ev.add_argument(
        "--out", type=Path, default=Path("out/report"), help="report folder (default: %(default)s)"
    )
    ev.add_argument(
        "--incidents",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="correlate the alerts into incidents in process, needs --alerts (default: on)",
    )
    ev.add_argument(
        "--quiet-s", type=float, default=3600.0, help="incidents: episode quiet period, seconds (default: %(default)s)"
    )
    ev.add_argument(
        "--max-span-s", type=float, default=86_400.0, help="incidents: longest episode, seconds (default: %(default)s)"
    )
    ev.set_defaults(func=_eval)


def _kafka_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap", help="Kafka brokers (default: settings, SCORER_KAFKA__BOOTSTRAP_SERVERS)"
    )
    p.add_argument(
        "--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)"
    )


def _speed(text: str) -> float:
    value = float(text.lower().removeprefix("x"))
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive")
    return value


def _settings(args: argparse.Namespace, **inference: Any) -> Any:
    from scorer.config import load_settings

    settings = load_settings(args.config)
    kafka: dict[str, Any] = {"bootstrap_servers": args.bootstrap} if args.bootstrap else {}
    if getattr(args, "group", None):
        kafka["group_id"] = args.group
    if kafka:
        settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update=kafka)})
    if inference:
        settings = settings.model_copy(
            update={"inference": settings.inference.model_copy(update=inference)}
        )
    return settings


def items(paths: list[Path], settings: Any) -> Iterator[Outgoing | ReadError]:
    """Captures and recorded dumps alike, in the order given."""
    return capture_items(paths, settings.topics.input_topics(settings.kinds))


def _replay(args: argparse.Namespace) -> int:
    from .sinks import replay_embedded

    overrides: dict[str, Any] = {}
    if args.to == "embedded":
        overrides["backend"] = "onnxruntime"
        if args.model_repository:
            overrides["model_repository"] = args.model_repository
    settings = _settings(args, **overrides)
    pacing = Pacing(speed=args.speed, rate=args.rate, fast=args.fast, max_gap=args.max_gap)
    options: dict[str, Any] = {"limit": args.limit}
    if args.progress or (args.progress is None and sys.stderr.isatty()):
        # A dry pass over the inputs gives the total and the schedule's length for the ETA.
        options["progress"] = ProgressBar(
            *planned(items(args.captures, settings), pacing, args.limit)
        )
    source = items(args.captures, settings)
    if args.to == "embedded":
        coro = replay_embedded(
            settings, source, pacing, args.out, batch_size=args.batch, incidents=args.incidents, **options
        )
    else:
        coro = _to_kafka(args, settings, source, pacing, options)
    summary = asyncio.run(coro)
    print(summary.text())
    return 0 if summary.events else 1


async def _to_kafka(
    args: argparse.Namespace,
    settings: Any,
    source: Iterator[Outgoing | ReadError],
    pacing: Pacing,
    options: dict[str, Any],
) -> Any:
    from .record import ensure_partitions
    from .sinks import replay_to_kafka

    for topic, needed in partitions_needed(args.captures, args.topic).items():
        await ensure_partitions(settings, topic, needed)
    return await replay_to_kafka(
        settings, source, pacing, args.out, topic=args.topic, wait_s=args.wait, incidents=args.incidents,
        **options,
    )


def partitions_needed(paths: list[Path], override: str | None) -> dict[str, int]:
    """Partitions each destination topic of the recorded dumps must have."""
    needed: dict[str, int] = {}
    for path in paths:
        for found in capture_files(path):
            if isinstance(found, ReadError) or found.format is not CaptureFormat.RECORD:
                continue
            for env in read_envelopes(found.path):
                if not isinstance(env, ReadError):
                    topic = override or env.topic
                    needed[topic] = max(needed.get(topic, 0), env.partition + 1)
    return needed


def _record(args: argparse.Namespace) -> int:
    from .record import record_topics

    n = asyncio.run(record_topics(_settings(args), args.topics, args.out))
    print(f"recorded {n} records of {', '.join(args.topics)} to {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from scorer.incidents import Policy

    from .eval.evaluate import evaluate

    policy = Policy(quiet_s=args.quiet_s, max_span_s=args.max_span_s) if args.incidents else None
    report = evaluate(args.truth, args.scores, args.alerts, args.out, args.summary, policy)
    rec, overall = report["reconciliation"], report["overall"]["all"]
    print(
        f"events {rec['events']} (known truth {rec['known_truth']}, "
        f"unknown {rec['unknown_truth']}), alerted {rec['alerted']}, not scored {rec['not_scored']}"
    )
    print(f"precision {overall['precision']}  recall {overall['recall']}  f1 {overall['f1']}")
    if "incidents" in report:
        inc = report["incidents"]
        print(
            f"incidents {inc['incidents']} from {inc['alerts']} alerts "
            f"({inc['alerts_per_incident']} alerts per incident), benign-only {inc['benign_only']}"
        )
    for name in ("report.json", "report.html"):
        print(f"{name:<12} {args.out / name}")
    return 0
