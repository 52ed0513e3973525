"""Model lifecycle on the real services while a replay is running.

The stream is a real AIT-ADS capture replayed into Kafka at 400 events/s by replay/'s
player and Kafka sink (what ``scorer replay --to kafka --rate 400`` runs), played again
(with new uids) if the test outlasts it: the stream flows until the test stops it, however
slow the machine is.

package -> validate -> deploy --shadow -> promote -> rollback of siem_classifier, with the
real ``scorer models`` CLI (subprocesses) against a scorer whose backend is a real
tritonserver serving a *copy* of model_repository (the shipped one is never touched).
Then three versions the service must refuse, production untouched: a tampered file, a
model with the wrong input width, and one Triton cannot load.

Checked at the end, over every event of the stream: consumed = scored + dead-lettered;
every event has exactly one score record naming the production version that scored it;
each score partition reads 1...1 2...2 1...1 (the switch points); only events scored while
Triton restarted were scored in process (by the score records' create times, not a guess
of how far the scorer lags the stream); every alert names the
version its score record names; shadow records compare v2, then v3, with production v1; a
withdrawn shadow (v3) is unloaded from Triton and from the process, v1 and v2 stay.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import msgspec
import numpy as np
import pytest

from scorer.config import LifecycleSettings
from scorer.events.structs import EventKind
from scorer.inference.repository import publish_version, write_checksums
from scorer.lifecycle.contract import contract_names
from scorer.lifecycle.control import DesiredState, publish, state_record
from scorer.lifecycle.controller import LifecycleController, start_lifecycle
from scorer.lifecycle.golden import GOLDEN_FILE
from scorer.metrics import ScorerMetrics
from tests.support.cli import scorer_cli
from tests.support.kafka import KafkaBroker
from tests.support.models import build_tiny_model
from tests.support.paths import DATA_DIR, MODEL_REPOSITORY, ROOT
from tests.support.pipeline import consume, kcat_consume, running_scorer, scorer_settings, wait_for
from tests.support.stream import Stream, endless
from tests.support.triton import LAUNCHER, StartTriton, TritonServer

pytestmark = [pytest.mark.data, pytest.mark.slow]

KIND = "siem"
MODEL = "siem_classifier"
UNSYNCED = "6"  # the test's sync command leaves this version out of Triton's repository
PHASE_EVENTS = 300  # events scored in each phase before the next command
AIT_CAPTURE = DATA_DIR / "siem" / "ait-ads" / "wardbeck_alerts.csv.gz"


@dataclass
class Env:
    repo: Path
    server: TritonServer | None
    prefix: str
    lifecycle: LifecycleSettings
    cli_env: dict[str, str]


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two scikit-learn models on real SIEM features: one trained on the labels, one on
    shuffled labels (what validate must reject)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    import models.train as training

    ds = training.spec_of(KIND).dataset("")
    rng = np.random.default_rng(7)
    rows = rng.choice(len(ds.y), 12_000, replace=False)
    out = tmp_path_factory.mktemp("candidates")
    for name, labels in (("good", ds.y[rows]), ("shuffled", rng.permutation(ds.y[rows]))):
        model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(ds.X[rows], labels)
        joblib.dump(model, out / f"{name}.joblib")
    return {"good": out / "good.joblib", "shuffled": out / "shuffled.joblib"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, start_triton: StartTriton) -> Iterator[Env]:
    repo = tmp_path_factory.mktemp("model_repository")
    shutil.copytree(MODEL_REPOSITORY / MODEL, repo / MODEL)  # other kinds' contracts may be in flux
    server = start_triton(repo, tmp_path_factory.mktemp("triton"))
    p = f"lc{uuid.uuid4().hex[:8]}"
    shim = server.workdir / "repository"
    sync = (f"{sys.executable} {LAUNCHER} sync --repository {repo} --workdir {server.workdir}"
            f" && rm -rf {shim / MODEL / UNSYNCED}")
    lifecycle = LifecycleSettings(control_topic=f"{p}.control", status_topic=f"{p}.status",
                                  shadow_topic=f"{p}.shadow", sync_command=["sh", "-c", sync], retire_grace_s=1.0)
    cli_env = {**os.environ, "SCORER_KAFKA__BOOTSTRAP_SERVERS": "", "SCORER_KINDS": '["siem"]',
               "SCORER_INFERENCE__MODEL_REPOSITORY": str(repo),
               "SCORER_LIFECYCLE__CONTROL_TOPIC": lifecycle.control_topic,
               "SCORER_LIFECYCLE__STATUS_TOPIC": lifecycle.status_topic}
    yield Env(repo, server, p, lifecycle, cli_env)
    server.stop()


async def cli(env: Env, kafka: KafkaBroker, *args: str) -> tuple[int, str]:
    """``scorer models ...`` as an engineer runs it (async: the scorer keeps scoring)."""
    return await scorer_cli({**env.cli_env, "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap},
                            "models", *args, "--kind", KIND)


async def scored_more(metrics: ScorerMetrics, n: int = PHASE_EVENTS) -> None:
    mark = metrics.accounting.scored[KIND]
    assert await wait_for(lambda: metrics.accounting.scored[KIND] >= mark + n, 60), "the stream stalled"


def refusals(metrics: ScorerMetrics, version: str, reason: str) -> float:
    labels = {"kind": KIND, "model": MODEL, "version": version, "reason": reason}
    return metrics.registry.get_sample_value("scorer_model_refusals_total", labels) or 0.0


async def bypass_cli(env: Env, kafka: KafkaBroker, shadow: str) -> None:
    """A control record written without the CLI's local checks (another host, another
    copy of the repository): the service must refuse on its own."""
    state = DesiredState(kind=KIND, model=MODEL, production="1", shadow=shadow, previous="2",
                         action="deploy-shadow", issued_by="test, bypassing the CLI checks",
                         issued_ms=int(time.time() * 1000))
    settings = scorer_settings(kafka.bootstrap)
    await publish(settings.kafka, state_record(env.lifecycle.control_topic, state))


def wrong_width_version(repo: Path, version: str) -> None:
    """Card in the siem contract (88 names), ONNX graph taking 87 features."""
    names = contract_names(KIND)
    tiny = build_tiny_model(MODEL, version, n_features=len(names) - 1)
    card = msgspec.structs.replace(tiny.card, kind=KIND, feature_names=list(names), threshold=0.5)
    publish_version(repo, card, tiny.onnx_bytes)


async def test_lifecycle_under_a_continuous_stream(
    kafka: KafkaBroker, env: Env, candidates: dict[str, Path]
) -> None:
    assert env.server is not None
    # Only the deliberate restart may send events to the in-process fallback: a deadline long
    # enough that a busy machine's slow answers are waited for, not taken as an outage.
    settings = scorer_settings(kafka.bootstrap, backend="triton", triton_url=env.server.grpc_url,
                               prefix=env.prefix, repository=env.repo, triton_timeout_s=60.0)
    settings = settings.model_copy(update={"kinds": (EventKind.SIEM,)})
    stream = Stream(settings, endless(AIT_CAPTURE))
    await stream.run(limit=200)  # creates the topic before the scorer subscribes
    async with running_scorer(settings) as (service, metrics):
        controller = await start_lifecycle(service, env.lifecycle)
        assert isinstance(controller, LifecycleController)
        try:
            async with stream.flowing(metrics):
                await run_lifecycle(env, kafka, metrics, candidates)
                await retire_a_shadow(env, kafka, metrics, controller)
                outage = await restart_triton(env, metrics)
                await scored_more(metrics)
        finally:
            await controller.stop()
        print("\nswitches:", *controller.switches, sep="\n  ")
    check_outputs(kafka, settings.topics, stream.uids, metrics, env, outage)


async def run_lifecycle(env: Env, kafka: KafkaBroker, metrics: ScorerMetrics, models: dict[str, Path]) -> None:
    await scored_more(metrics)
    rc, out = await cli(env, kafka, "package", str(models["good"]))
    assert rc == 0 and "siem_classifier version 2" in out
    # Production 1 carries no golden set: that package built it from the shared data (the
    # default, ~10 CPU-s of a 2M-row matrix); the rest take the one it kept, as an engineer
    # passes --golden to compare candidates on the same rows.
    golden = ("--golden", str(env.repo / MODEL / "2" / GOLDEN_FILE))
    # The latency gate measures this box under whatever else runs on it (its logic is
    # test_package_validate's); here the quality gates decide.
    rc, out = await cli(env, kafka, "validate", "--version", "2", "--latency-budget-us", "1000")
    assert rc == 0 and out.startswith("PASS"), out
    rc, out = await cli(env, kafka, "package", str(models["shuffled"]), *golden)
    assert rc == 0 and "siem_classifier version 3" in out
    rc, out = await cli(env, kafka, "validate", "--version", "3")
    assert rc == 1 and "[FAIL] roc_auc" in out and "[FAIL] recall" in out

    rc, out = await cli(env, kafka, "deploy", "--shadow", "--version", "2", "--reason", "candidate", "--wait", "60")
    assert rc == 0 and "applied by" in out and "production 1, shadow 2" in out
    await scored_more(metrics)
    rc, out = await cli(env, kafka, "promote", "--reason", "shadow agrees", "--wait", "60")
    assert rc == 0 and "production 2, shadow -" in out and "applied by" in out
    await scored_more(metrics)
    rc, out = await cli(env, kafka, "rollback", "--reason", "analysts prefer 1", "--wait", "60")
    assert rc == 0 and "production 1" in out and "previous 2" in out
    await scored_more(metrics)

    # Integrity: the CLI refuses a tampered version, and so does the service on its own.
    rc, out = await cli(env, kafka, "package", str(models["good"]), "--version", "4", *golden)
    assert rc == 0
    with (env.repo / MODEL / "4" / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    rc, out = await cli(env, kafka, "deploy", "--shadow", "--version", "4")
    assert rc == 2 and "does not match recorded" in out
    await bypass_cli(env, kafka, "4")
    assert await wait_for(lambda: refusals(metrics, "4", "integrity") == 1, 30)
    await scored_more(metrics)

    # The wrong input width: validate says so, the service refuses it.
    wrong_width_version(env.repo, "5")
    rc, out = await cli(env, kafka, "validate", "--version", "5")
    assert rc == 1 and "[FAIL] contract" in out and "expected [batch, 88]" in out
    await bypass_cli(env, kafka, "5")
    assert await wait_for(lambda: refusals(metrics, "5", "contract") == 1, 30)
    await scored_more(metrics)

    # Triton cannot load it (its files never reached Triton's repository).
    rc, out = await cli(env, kafka, "package", str(models["good"]), "--version", UNSYNCED, *golden)
    assert rc == 0
    rc, out = await cli(env, kafka, "deploy", "--shadow", "--version", UNSYNCED, "--wait", "60")
    assert rc == 1 and "REFUSED" in out and "triton" in out
    assert refusals(metrics, UNSYNCED, "triton") == 1
    await scored_more(metrics)
    rc, out = await cli(env, kafka, "list")
    assert rc == 0 and "REFUSED" in out
    # The engineer withdraws the files. The configs still name 6 (pinned by the deploy), which
    # Triton skips on restart; left in place, the restart would mirror 6 while the sync command
    # above deletes it again, racing Triton's load of it.
    shutil.rmtree(env.repo / MODEL / UNSYNCED)


async def retire_a_shadow(env: Env, kafka: KafkaBroker, metrics: ScorerMetrics,
                          controller: LifecycleController) -> None:
    """A shadow withdrawn is neither production, shadow nor the rollback target: it leaves
    the process's ONNX Runtime sessions at once and Triton after the grace; 1 and 2 stay."""
    loader = controller.switcher.loader
    assert loader.triton is not None and loader.local is not None
    rc, out = await cli(env, kafka, "deploy", "--shadow", "--version", "3", "--wait", "60")
    assert rc == 0 and "production 1, shadow 3" in out and "previous 2" in out
    await scored_more(metrics)
    assert (await loader.triton.model_versions(MODEL)).get("3") == "READY"
    rc, out = await cli(env, kafka, "deploy", "--shadow", "--version", "none", "--wait", "60")
    assert rc == 0 and "shadow -" in out

    async def ready() -> set[str]:
        assert loader.triton is not None
        return {v for v, state in (await loader.triton.model_versions(MODEL)).items() if state == "READY"}

    for _ in range(60):
        if "3" not in await ready():
            break
        await asyncio.sleep(0.5)
    assert await ready() >= {"1", "2"} and "3" not in await ready(), await ready()
    assert {r.version for r in loader.local.loaded() if r.name == MODEL} <= {"1", "2"}
    await scored_more(metrics)  # production untouched: still scoring, on 1


async def restart_triton(env: Env, metrics: ScorerMetrics) -> tuple[int, int]:
    """Triton comes back with its config's version policy (the two highest versions), not
    production 1: the fallback scores meanwhile, the controller loads 1 again, and scoring
    returns to Triton. Returns the wall-clock window (ms) from the restart to production
    seen back on Triton: what the in-process fallback scored has its create time inside."""
    assert env.server is not None
    on_triton = {"kind": KIND, "backend": "triton"}
    began_ms = int(time.time() * 1000)
    await asyncio.to_thread(env.server.restart)
    mark = metrics.registry.get_sample_value("scorer_events_scored_total", on_triton) or 0.0
    assert await wait_for(
        lambda: (metrics.registry.get_sample_value("scorer_events_scored_total", on_triton) or 0) > mark + 100, 90
    ), "production never returned to triton"
    return began_ms, int(time.time() * 1000)


def check_outputs(
    kafka: KafkaBroker, topics: Any, uids: list[str], metrics: ScorerMetrics, env: Env, outage: tuple[int, int]
) -> None:
    assert metrics.accounting.balanced(), metrics.accounting.totals()
    assert metrics.accounting.scored[KIND] == len(uids)
    records = kcat_consume(kafka.bootstrap, topics.scores)
    by_uid: dict[str, list[dict[str, Any]]] = {}
    runs: dict[int, list[str]] = {}
    fallback: list[int] = []  # create times (ms) of the score records not scored on Triton
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        score = json.loads(r["payload"])
        if score["kind"] != KIND:
            continue
        by_uid.setdefault(score["uid"], []).append(score)
        if score["backend"] != "triton":
            fallback.append(r["ts"])
        versions = runs.setdefault(r["partition"], [])
        if not versions or versions[-1] != score["version"]:
            versions.append(score["version"])
    assert set(by_uid) == set(uids), "every event has a score record"
    assert all(len(v) == 1 for v in by_uid.values()), "exactly one production version per event"
    # Triton scored everything, refusals included, but while it restarted (in-process fallback):
    # by when each score was written, so however far behind the stream the scorer ran.
    assert all(outage[0] <= ts <= outage[1] for ts in fallback), (outage, sorted(fallback)[:3], sorted(fallback)[-3:])
    for partition, versions in runs.items():  # the switch points: 1 -> 2 -> 1
        assert versions == ["1", "2", "1"], (partition, versions)
    counts = {v: sum(1 for s in by_uid.values() if s[0]["version"] == v) for v in ("1", "2")}
    alerts = [json.loads(a["payload"]) for a in kcat_consume(kafka.bootstrap, topics.alert_topic(EventKind.SIEM))]
    assert alerts
    for alert in alerts:
        uid = alert["finding_info"]["related_events"][0]["uid"]
        assert alert["finding_info"]["analytic"]["version"] == by_uid[uid][0]["version"]
    assert {a["finding_info"]["related_events"][0]["uid"] for a in alerts} == {
        u for u, s in by_uid.items() if s[0]["alerted"]}
    shadow = [json.loads(r["payload"]) for r in kcat_consume(kafka.bootstrap, env.lifecycle.shadow_topic)]
    assert {s["shadow"]["version"] for s in shadow} == {"2", "3"}
    assert all(s["production"]["version"] == "1" for s in shadow)
    for report in shadow:
        assert all(by_uid[uid][0]["version"] == "1" for uid, _, _ in report["events"])
    compared = sum(s["n"] for s in shadow)
    for version in ("2", "3"):  # Prometheus says what the shadow topic says
        labels = {"kind": KIND, "model": MODEL, "version": version}
        exported = metrics.registry.get_sample_value("scorer_shadow_events_total", labels)
        assert exported == sum(s["n"] for s in shadow if s["shadow"]["version"] == version), (version, exported)
        assert metrics.registry.get_sample_value("scorer_shadow_agreement_ratio", labels) is not None
    print(f"\nevents {len(uids)} (by v1 {counts['1']}, by v2 {counts['2']}), alerts {len(alerts)}, "
          f"shadow-compared {compared}, agreement {np.mean([s['agreement'] for s in shadow]):.4f}, "
          f"scored in process during the triton restart {len(fallback)}")


def clone_version(repo: Path, source: str, version: str) -> None:
    """The same model published again as another version (a retrain that changed nothing)."""
    src, dst = repo / MODEL / source, repo / MODEL / version
    shutil.copytree(src, dst)
    card = json.loads((dst / "card.json").read_text())
    (dst / "card.json").write_text(json.dumps({**card, "version": version}))
    write_checksums(dst)


async def test_scorer_processes_start_from_and_follow_the_control_topic(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    """Two ``scorer run`` processes (one group) start on the version the control topic names,
    not the configured one, and both follow a rollback without a restart."""
    repo = tmp_path / "model_repository"
    shutil.copytree(MODEL_REPOSITORY / MODEL, repo / MODEL)
    clone_version(repo, "1", "2")
    p = f"lp{uuid.uuid4().hex[:8]}"
    env = Env(repo, None, p, LifecycleSettings(control_topic=f"{p}.control", status_topic=f"{p}.status"), {
        **os.environ, "SCORER_KINDS": '["siem"]', "SCORER_INFERENCE__MODEL_REPOSITORY": str(repo),
        "SCORER_LIFECYCLE__CONTROL_TOPIC": f"{p}.control", "SCORER_LIFECYCLE__STATUS_TOPIC": f"{p}.status",
        "SCORER_LIFECYCLE__SHADOW_TOPIC": f"{p}.shadow", "SCORER_KAFKA__GROUP_ID": f"{p}-group",
        "SCORER_TOPICS__SIEM": f"{p}.events.siem", "SCORER_TOPICS__EDR": f"{p}.events.edr",
        "SCORER_TOPICS__ALERTS_PREFIX": f"{p}.alerts.", "SCORER_TOPICS__DEAD_LETTER": f"{p}.dlq",
        "SCORER_TOPICS__SCORES": f"{p}.scores", "SCORER_INFERENCE__BACKEND": "onnxruntime",
        "SCORER_HTTP__PORT": "0", "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap,
    })
    await kafka.acreate_topic(f"{p}.events.siem", partitions=4)
    rc, _ = await cli(env, kafka, "promote", "--version", "2", "--production", "1", "--reason", "before start")
    assert rc == 0
    procs = [
        subprocess.Popen([sys.executable, "-m", "scorer.cli", "run"], cwd=ROOT, stderr=subprocess.STDOUT,
                         stdout=(tmp_path / f"{c}.log").open("wb"), env={**env.cli_env, "SCORER_KAFKA__CLIENT_ID": c})
        for c in ("a", "b")
    ]
    stream = Stream(scorer_settings(kafka.bootstrap, prefix=p), endless(AIT_CAPTURE))  # topics.siem: f"{p}.events.siem"
    try:
        await stream.run(limit=200)
        first = len(stream.uids)
        scores = await consume(kafka.bootstrap, f"{p}.scores", first, timeout=90)
        assert {json.loads(m.value)["version"] for m in scores} == {"2"}
        rc, out = await cli(env, kafka, "rollback", "--reason", "drill", "--wait", "30")
        assert rc == 0 and "production 1" in out
        assert await wait_for_both(env, kafka, "1")
        await stream.run(limit=200)
        scores = await consume(kafka.bootstrap, f"{p}.scores", len(stream.uids), timeout=90)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    by_uid = {json.loads(m.value)["uid"]: json.loads(m.value)["version"] for m in scores}
    assert {by_uid[u] for u in stream.uids[:first]} == {"2"}
    assert {by_uid[u] for u in stream.uids[first:]} == {"1"}
    assert all(proc.returncode == 0 for proc in procs), (tmp_path / "a.log").read_text()[-2000:]


async def wait_for_both(env: Env, kafka: KafkaBroker, version: str) -> bool:
    """Until both processes report serving ``version`` (a rollback reaches every process)."""
    for _ in range(60):
        _, out = await cli(env, kafka, "list", "--json")
        (listing,) = json.loads(out[out.index("["):])
        serving = [s["production"] for s in listing["scorers"] if s["process"].startswith(env.prefix)]
        if len(serving) == 2 and set(serving) == {version}:
            return True
        await asyncio.sleep(0.5)
    return False
