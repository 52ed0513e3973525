"""``python -m streams [--config scorer.yaml] [--group G] [--metrics-port 9410] [--max-keys N]``
``python -m streams incidents [--config scorer.yaml] [--group G] [--instance I] [--metrics-port 9411]``.

The first runs the profile worker for the scorer's kinds with the scorer's Kafka settings
(``SCORER_KAFKA__*``, ``SCORER_TOPICS__*``, ``SCORER_PROFILES__TOPIC_PREFIX``); run several
with the same group to share the partitions. SIGTERM/SIGINT finish the batch in flight.
The second runs the incident job (docs/incidents.md) with the scorer's Kafka settings and
``SCORER_INCIDENTS__*``; each process of a group needs its own ``--instance``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from scorer.config import load_settings
from scorer.kafka.clients import CONNECTION_ERRORS, connection_failure
from scorer.profiles.store import DAY_S, Limits
from scorer.service.gctune import tune_gc
from scorer.service.http import HealthServer
from scorer.service.signals import stop_on_signals

from .incidents.job import STAGES, IncidentJob
from .incidents.stage import JobSettings
from .worker import ProfileWorker, WorkerSettings


class _Job(Protocol):
    registry: CollectorRegistry

    async def start(self) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    def request_stop(self) -> None: ...


async def _serve(job: _Job, ready: Callable[[], bool], args: argparse.Namespace, what: str) -> None:
    """Metrics and health, signals, then ``job`` until stopped."""
    http = HealthServer(job.registry, ready, host=args.metrics_host, port=args.metrics_port)
    await http.start()
    stop_on_signals(job.request_stop)
    try:
        await job.start()
        tune_gc()  # as the scorer does: start-up's objects frozen, a batch's garbage left to refcounts
        logging.getLogger(__name__).info("%s up; metrics on :%d", what, http.port)
        await job.run()
    finally:
        await job.stop()
        await http.close()


async def _main(args: argparse.Namespace) -> None:
    settings = load_settings(args.config)
    worker = ProfileWorker(WorkerSettings.from_settings(
        settings, group_id=args.group, max_keys=args.max_keys, max_records=args.max_records,
        limits=Limits(ttl_s=args.ttl_days * DAY_S, max_per_entity=args.max_per_entity)))
    await _serve(worker, lambda: worker.batches >= 0, args, "profile worker")


async def _incidents(args: argparse.Namespace) -> None:
    settings = load_settings(args.config)
    job = IncidentJob(JobSettings.from_settings(settings, group_id=args.group, instance=args.instance,
                                                max_records=args.max_records, idle_s=args.idle_s),
                      stages=STAGES if args.stage == "both" else (args.stage,))
    await _serve(job, lambda: job.started, args, "incident job")


def _job_parser(prog: str, group_suffix: str, metrics_port: int, max_records: int) -> argparse.ArgumentParser:
    """A job's command line with the options every job has: its settings and consumer group,
    where ``_serve`` puts /metrics, and the micro-batch size. Defaults of a job's own settings
    come from its settings class, so the command line and the class cannot disagree."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML settings file (default: none; env SCORER_* wins)")
    parser.add_argument("--group", default="", help=f"consumer group (default: <scorer group>-{group_suffix})")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=metrics_port,
                        help="port of /metrics (default: %(default)s)")
    parser.add_argument("--max-records", type=int, default=max_records,
                        help="records per micro-batch (default: %(default)s)")
    return parser


def incidents_main(argv: list[str]) -> int:
    parser = _job_parser("python -m streams incidents", "incidents", 9411, JobSettings.max_records)
    parser.add_argument("--instance", default="0",
                        help="this process's id in the group, its transactional id (default: %(default)s)")
    parser.add_argument("--stage", choices=("both", *STAGES), default="both",
                        help="the stage(s) this process runs (default both); one each in two processes "
                        "gives each its own core and event loop")
    parser.add_argument("--idle-s", type=float, default=JobSettings.idle_s,
                        help="wall seconds without input after which a partition's watermark follows wall time "
                        "(default: %(default)s)")
    return _run_job(_incidents(parser.parse_args(argv)))


def _run_job(job: Coroutine[Any, Any, None]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(job)
    except CONNECTION_ERRORS as exc:
        print(f"python -m streams: cannot talk to Kafka: {connection_failure(exc)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["incidents"]:
        return incidents_main(argv[1:])
    if argv[:1] == ["bench-incidents"]:  # streams/incidents_bench.py: Create latency at a fixed rate
        from .incidents_bench import main as bench_incidents

        return bench_incidents(argv[1:])
    parser = _job_parser("python -m streams", "profiles", 9410, WorkerSettings.max_records)
    parser.add_argument("--max-keys", type=int, default=WorkerSettings.max_keys,
                        help="profile keys held, all partitions (default: %(default)s)")
    parser.add_argument("--max-per-entity", type=int, default=Limits.max_per_entity,
                        help="items per host/source and scope (default: %(default)s)")
    parser.add_argument("--ttl-days", type=float, default=Limits.ttl_s / DAY_S,
                        help="days after which keys without events expire (default: %(default)s)")
    return _run_job(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
