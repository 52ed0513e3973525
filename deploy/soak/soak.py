"""Soak: the service at a fixed rate for hours, with periodic faults, sampled every minute.

    .venv/bin/python -m deploy.soak.soak --hours 2.5 --rate 1000     # report: docs/results/soak-<date>.json/.png

Run it from a snapshot when others edit the tree meanwhile (every scorer restart imports
the code again)::

    git archive HEAD | tar -x -C /tmp/soak && git rev-parse HEAD >/tmp/soak/COMMIT
    cd /tmp/soak && SCORER_DATA_DIR=... python -m deploy.soak.soak --report ... --workdir ...

A private Kafka broker, tritonserver and ``scorer run`` (Triton backend, exactly-once
unless ``--at-least-once``) score real events of every kind (one in 40 hostile). Every
``--fault-every`` seconds the next fault of the cycle: scorer ``kill -9`` (and start),
broker restart (alternately clean and ``kill -9``), Triton restart, model promote, model
rollback. No scorer kill in the last ``--steady-s`` seconds, so the last hour's RSS and fd
growth is measured on one process lifetime (a kill -9 resets RSS and would hide a leak).

Every minute: scorer RSS and open fds, broker and Triton RSS, pending events (produced
without an outcome yet: the end-to-end lag), added latency p99 over the minute (from
/metrics), and the accounting: no duplicate, no misrouted outcome (a good event
dead-lettered or a hostile one scored), no output for an unknown input, and the scorer's
own consumed = scored + dead-lettered within what one process can hold in flight.
At the end the stream stops, the scorer drains, and every event must have its outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from deploy.soak.faults import Faults
from deploy.soak.report import Report, p99, parse_metrics
from deploy.soak.scorer_setup import commit, model_repository, scorer_env
from deploy.soak.services import ROOT, Broker, Scorer, Triton, free_port, open_fds, rss_bytes
from deploy.soak.traffic import Ledger, Producer, load_templates, records
from scorer.config import KafkaSettings, data_dir
from scorer.events.structs import EventKind
from scorer.kafka import TopicSpec, ensure_topics

DATA = data_dir()  # ../shared/data, or $SCORER_DATA_DIR (set it when running from a snapshot)
CAPTURES = {
    EventKind.NETFLOW: DATA / "netflow/stratosphere-zeek/010-conn.log.labeled",
    EventKind.EDR: DATA / "edr/otrf-security-datasets/windows/collection/host/msf_record_mic.zip",
    EventKind.SIEM: DATA / "siem/ait-ads/shaw_alerts.csv.gz",
}
MB = 2**20


_NUMBERS = (
    ("--hours", 2.5, "how long the stream flows"),
    ("--rate", 1000.0, "events per second, all kinds"),
    ("--fault-every", 300.0, "seconds between faults"),
    ("--steady-s", 3600.0, "no scorer kill in this many last seconds of the run"),
    ("--sample-every", 60.0, "seconds between samples"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default, meaning in _NUMBERS:
        p.add_argument(flag, type=float, default=default, help=f"{meaning} (default {default:g})")
    p.add_argument("--at-least-once", action="store_true", help="not transactional (default: exactly-once)")
    p.add_argument("--backend", choices=("triton", "onnxruntime"), default="triton", help="default triton")
    p.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / "var" / "soak" / today,
        help="broker data, Triton workdir, logs (default var/soak/<date>)",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=ROOT / "docs" / "results" / f"soak-{today}.json",
        help="report JSON, the plot beside it as .png (default docs/results/soak-<date>.json)",
    )
    return p.parse_args(argv)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        work: Path = args.workdir
        work.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(free_port(), work / "kafka" / "data")
        repo = model_repository(work)
        self.triton = Triton(repo, work / "triton") if args.backend == "triton" else None
        self.topics = {k: f"events.{k.value}" for k in EventKind}
        self.scorer = Scorer(
            scorer_env(self.broker.bootstrap, repo, self.triton, not args.at_least_once), work / "scorer.log"
        )
        self.producer = Producer(self.broker.bootstrap, self.topics, args.rate)
        self.ledger = Ledger(self.broker.bootstrap, "scores", "events.dlq", [f"alerts.{k.value}" for k in EventKind])
        self.report = Report(
            args.report,
            {
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": commit(),
                "rate": args.rate,
                "hours": args.hours,
                "fault_every_s": args.fault_every,
                "mode": "at-least-once" if args.at_least_once else "exactly-once",
                "backend": args.backend,
                "command": " ".join(sys.argv),
                "machine": f"{os.cpu_count()} cores, shared",
                "workdir": str(work),
            },
        )
        self.faults = Faults(self.scorer, self.broker, self.triton, self.report, repo)
        self.t0 = time.monotonic()
        self._buckets: list[tuple[float, float]] = []
        self._stop = asyncio.Event()

    async def setup(self) -> None:
        self.broker.start()
        names = [*self.topics.values(), "scores", "events.dlq", *self.ledger.alerts]
        # An hour of retention in small segments: hours at 1,000 events/s would otherwise keep
        # ~2 kB per event on a shared disk; the ledger reads every output within seconds.
        retention = {"retention.ms": "3600000", "segment.bytes": str(32 * MB)}
        specs = [TopicSpec(n, 3, 1, retention) for n in names]
        await ensure_topics(KafkaSettings(bootstrap_servers=self.broker.bootstrap), specs)
        if self.triton is not None:
            await asyncio.to_thread(self.triton.start)
        self.scorer.start()
        await self.faults.wait_ready()

    def sample(self) -> dict[str, Any]:
        sums, buckets = parse_metrics(self.scorer.metrics())
        latency = p99(buckets, self._buckets) if buckets else None
        self._buckets = buckets or self._buckets
        pid = self.scorer.pid
        consumed = sums.get("scorer_events_consumed_total", 0.0)
        done = sums.get("scorer_events_scored_total", 0.0) + sums.get("scorer_events_dead_lettered_total", 0.0)
        # One process holds at most max_inflight + 1 batches between consuming and counting.
        in_flight = consumed - done
        led = self.ledger
        sent = self.producer.sent
        ok = led.duplicates == 0 or self.args.at_least_once
        ok = ok and led.misrouted == 0 and led.unknown == 0 and led.distinct <= sent and in_flight >= 0
        return {
            "t": round(time.monotonic() - self.t0, 1),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "produced": sent,
            "produce_failed": len(self.producer.failed),
            "outcomes": led.distinct,
            "pending": sent - led.distinct,
            "duplicates": led.duplicates,
            "misrouted": led.misrouted,
            "unknown": led.unknown,
            "alerting": led.alerting_distinct,
            "alerts": led.alerts_distinct,
            "scorer_pid": pid,
            "scorer_starts": self.scorer.starts,
            "scorer_rss_mb": round(rss_bytes(pid) / MB, 1),
            "scorer_fds": open_fds(pid),
            "broker_rss_mb": round(rss_bytes(self.broker.pid()) / MB, 1),
            "triton_rss_mb": round(rss_bytes(self.triton.pid()) / MB, 1) if self.triton else 0.0,
            "scorer_consumed": consumed,
            "scorer_in_flight": in_flight,
            # Past the histogram's last bucket (10 s, e.g. across a broker restart): no number.
            "p99_s": latency if latency is not None and math.isfinite(latency) else None,
            "p99_over_10s": latency is not None and not math.isfinite(latency),
            "paused": sums.get("scorer_consumption_paused", 0.0),
            # Of this process's scored events, the share Triton scored (the rest: in-process fallback).
            "triton_share": round(
                sums.get("scored_by_triton", 0.0) / max(1.0, sums.get("scorer_events_scored_total", 0.0)), 3
            ),
            "accounting_ok": ok,
        }

    async def sampler(self) -> None:
        for n in itertools.count(1):
            try:
                await asyncio.wait_for(self._stop.wait(), self.args.sample_every)
                return
            except TimeoutError:
                pass
            self.report.samples.append(await asyncio.to_thread(self.sample))
            await asyncio.to_thread(self.report.write, plot=n % 10 == 0)

    async def drain(self) -> dict[str, Any]:
        """Until every produced event has an outcome, or 300 s without progress."""
        last, since = -1, time.monotonic()
        while self.ledger.distinct < self.producer.sent and time.monotonic() - since < 300:
            if self.ledger.distinct != last:
                last, since = self.ledger.distinct, time.monotonic()
            await asyncio.sleep(1)
        await asyncio.sleep(10)  # late duplicates and alerts
        sent = self.producer.sent
        lost = self.ledger.lost(sent, set(self.producer.failed))
        return {
            "produced": sent,
            "outcomes": self.ledger.distinct,
            "lost": len(lost),
            "lost_first": lost[:20],
            "duplicates": self.ledger.duplicates,
            "misrouted": self.ledger.misrouted,
            "unknown": self.ledger.unknown,
            "alerts_missing_or_stray": self.ledger.alerts_missing(sent),
            "produce_failed": len(self.producer.failed),
            "scorer_starts": self.scorer.starts,
        }

    async def run(self) -> int:
        await self.setup()
        stop_ledger = asyncio.Event()
        tasks = [
            asyncio.create_task(self.producer.run(records(load_templates(CAPTURES, 500)))),
            asyncio.create_task(self.ledger.run(stop_ledger)),
            asyncio.create_task(self.sampler()),
        ]
        end = self.t0 + self.args.hours * 3600
        try:
            await self.faults.cycle(end, self.args.fault_every, self.args.steady_s)
            self.producer.stopping.set()
            await tasks[0]
            self.report.final = await self.drain()
        finally:
            self.producer.stopping.set()
            self._stop.set()
            stop_ledger.set()
            # A producer blocked on a broker that never came back must not hold the report.
            _, stuck = await asyncio.wait(tasks, timeout=90)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.report.final["scorer_exit"] = self.scorer.stop()
            if self.triton is not None:
                self.triton.stop()
            self.broker.stop()
            self.report.write(plot=True)
        f = self.report.final
        good = f.get("lost") == 0 and f.get("misrouted") == 0 and f.get("unknown") == 0
        good = good and (self.args.at_least_once or f.get("duplicates") == 0)
        print(json.dumps({"summary": self.report.summary(), "final": f}, indent=1))
        return 0 if good and self.report.summary()["accounting_true_every_sample"] else 1


def main(argv: list[str] | None = None) -> int:
    # Every child (scorer run, scorer models, the Triton launcher's sync) imports the scorer
    # from this tree, not from an editable install that others may be editing meanwhile:
    # run the soak from a snapshot (git archive) and hours of restarts load one version.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return asyncio.run(Soak(parse_args(argv)).run())


if __name__ == "__main__":
    sys.exit(main())
