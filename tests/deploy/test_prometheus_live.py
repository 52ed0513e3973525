"""Prometheus for real: Debian's prometheus scrapes a live ``scorer run`` (scoring on a real
tritonserver), the tritonserver itself and the consumer-group lag exporter, loads the alert
rules, and every PromQL expression of the Grafana dashboard must return series from it.

Grafana has no package here, so the dashboard is shown another way: each panel's query
results, as Prometheus returns them, go to a text table (printed, and written to
``$SCORER_DASHBOARD_SNAPSHOT`` when set, with a PNG of every panel's series over the run
beside it; docs/results/dashboard-live.txt and .png are one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from scorer.config import KafkaSettings, Settings, TopicSettings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from tests.support.dashboard_render import render_png
from tests.support.faults.process import ScorerProcess, new_topics, scorer_env
from tests.support.kafka import KafkaBroker, free_ports
from tests.support.paths import ROOT
from tests.support.prometheus import PrometheusServer, QueryError, Sample
from tests.support.stream import Stream, endless
from tests.support.triton import TritonServer

DASHBOARD = ROOT / "deploy/helm/scorer/dashboards/scorer-overview.json"
RULES = ROOT / "deploy/prometheus/scorer-rules.yml"
GRACE_S = float(yaml.safe_load((ROOT / "deploy/helm/scorer/values.yaml").read_text())["scorer"][
    "terminationGracePeriodSeconds"])
RATE_WINDOW = "15s"  # what Grafana's $__rate_interval is at a 1 s scrape (4 x scrape + margin)
NO_PROGRESS_S = 90.0  # fail when no further dashboard query starts returning series for this long
GPU_METRICS = re.compile(r"\bDCGM_FI_\w+")  # dcgm-exporter's series


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(panel title, legend, PromQL with Grafana's interval variable filled in) of every target."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["legendFormat"], t["expr"].replace("$__rate_interval", RATE_WINDOW))
            for p in panels for t in p["targets"]]


@pytest.fixture(scope="module")
def start_prometheus() -> type[PrometheusServer]:
    """How a test gets a prometheus: using it marks the test ``prometheus``."""
    return PrometheusServer


@pytest.fixture
def lag_exporter(kafka: KafkaBroker, tmp_path: Path) -> Iterator[str]:
    port = free_ports(1)[0]
    env = {**os.environ, "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap}
    with (tmp_path / "lag-exporter.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.prometheus.lag_exporter", "--host", "127.0.0.1", "--port", str(port),
             "--interval", "1", "--group", "r[0-9a-f]{8}-group"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


async def send_garbage(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    """A few records a second no decoder accepts, until ``stop``: a dead-letter rate above 0."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        n = 0
        while not stop.is_set():
            await producer.send_and_wait(topic, b"\xff not an event " + str(n).encode())
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await producer.stop()


def finite(samples: list[Sample]) -> bool:
    """Data, not just series: a quantile of no observations or a ratio of zero rates is NaN."""
    return any(math.isfinite(float(s["value"][1])) for s in samples)


async def test_every_dashboard_query_returns_series_from_a_live_scrape(
    kafka: KafkaBroker, triton: TritonServer, start_prometheus: type[PrometheusServer],
    lag_exporter: str, tmp_path: Path,
) -> None:
    topics = await new_topics(kafka, kinds=list(EventKind))
    env = scorer_env(kafka.bootstrap, topics, triton=triton)
    scorer = ScorerProcess(env, tmp_path / "scorer.log")
    scorer.start()
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap),
                        topics=TopicSettings(netflow=topics.input(EventKind.NETFLOW),
                                              edr=topics.input(EventKind.EDR), siem=topics.input(EventKind.SIEM)))
    stream = Stream(settings, endless(bundled_capture()), rate=300.0)
    prom = start_prometheus.start(
        tmp_path / "prometheus", rule_files=[RULES],
        targets={"scorer": [scorer.http.removeprefix("http://")],
                 "triton": [f"127.0.0.1:{triton.metrics_port}"], "kafka-lag": [lag_exporter]})
    started = time.monotonic()
    feeding = asyncio.create_task(stream.run())
    garbage = asyncio.create_task(send_garbage(kafka.bootstrap, topics.input(EventKind.EDR), stream.stopping))
    try:
        await scorer.wait_ready()
        queries = dashboard_queries()
        # dcgm-exporter's series: no GPU and no dcgm-exporter here, so these are only parsed
        # and evaluated by Prometheus (below), never required to have data.
        gpu_only = [q for q in queries if GPU_METRICS.search(q[2])]
        await until_every_query_has_data([q for q in queries if q not in gpu_only], prom, scorer)
        # What the panels show now, all at one instant; the GPU ones are parsed and evaluated
        # by Prometheus too, with no GPU here to give them series.
        results = {expr: prom.query(expr) for _, _, expr in queries}
        rules = prom.api("rules")["groups"]
        assert rules and all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
        write_snapshot(queries, results, gpu_only)
        if out := os.environ.get("SCORER_DASHBOARD_SNAPSHOT"):
            render_png(json.loads(DASHBOARD.read_text())["panels"], prom, RATE_WINDOW,
                       time.monotonic() - started, Path(out).with_suffix(".png"))
    finally:
        stream.stopping.set()
        await asyncio.gather(feeding, garbage)
        # SIGTERM under load: the batch in flight is finished and committed, and the process
        # exits 0 within the grace period the chart gives the pod (else stop() SIGKILLs it).
        assert scorer.stop(timeout=GRACE_S) == 0, scorer.log_tail()
        prom.stop()


async def until_every_query_has_data(
    queries: list[tuple[str, str, str]], prom: PrometheusServer, scorer: ScorerProcess,
) -> None:
    """Poll until each query has returned a finite sample; fail after NO_PROGRESS_S with none
    newly answered (progress, not a total: a slow machine only takes longer)."""
    results: dict[str, list[Sample]] = {}
    loop = asyncio.get_running_loop()
    last_progress = loop.time()
    while len(results) < len(queries):
        for _, _, expr in queries:
            if expr in results:
                continue
            try:
                samples = await asyncio.to_thread(prom.query, expr)
            except QueryError as exc:
                raise AssertionError(f"dashboard query refused by Prometheus: {exc}") from exc
            if finite(samples):
                results[expr], last_progress = samples, loop.time()
        missing = [f"{t} / {leg}: {e}" for t, leg, e in queries if e not in results]
        assert loop.time() - last_progress < NO_PROGRESS_S, (
            "dashboard queries without series:\n" + "\n".join(missing) + f"\nscorer log:\n{scorer.log_tail()}")
        await asyncio.sleep(1.0)


def write_snapshot(queries: list[tuple[str, str, str]], results: dict[str, list[Sample]],
                   gpu_only: list[tuple[str, str, str]]) -> None:
    lines: list[str] = []
    for title, legend, expr in queries:
        lines.append(f"== {title} [{legend}]\n   {expr}")
        if (title, legend, expr) in gpu_only:
            lines.append("   (no GPU and no dcgm-exporter on this machine: no series; query accepted by Prometheus)")
        for sample in results.get(expr, []):
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample["metric"].items()))
            value = float(sample["value"][1])
            lines.append(f"   {labels or '{}':<70} {value:.6g}")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if out := os.environ.get("SCORER_DASHBOARD_SNAPSHOT"):
        Path(out).write_text(text)
