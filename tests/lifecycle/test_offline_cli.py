"""The detection engineer's commands with no Kafka (issue 20's transcript): on a laptop or in
the CI of a model repository, ``scorer models list`` and ``validate`` work from the
repository and say in one line that the live state is not shown; validating the production
version against itself passes whatever the machine's speed (latency is judged against
production measured in the same run); and every command that needs the broker fails with one
clear line, every Kafka client closed (no "Unclosed AIOKafka..." on stderr).

The broker is "stopped": a port nothing listens on. Every command is a real ``scorer``
subprocess with the default log level, as the engineer runs it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import joblib
from sklearn.ensemble import RandomForestClassifier

from scorer.lifecycle.package import PackageRequest, package
from scorer.lifecycle.validate import Margins, validate
from tests.support.cli import clean_stderr, offline_env, run_scorer
from tests.support.lifecycle import KIND, MODEL, Repo
from tests.support.paths import MODEL_REPOSITORY, ROOT, RULE_REPOSITORY


def _scorer(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return run_scorer(env, *args, timeout=300)


def test_list_without_kafka_shows_the_repository_and_one_note() -> None:
    rc, out, err = _scorer(offline_env(SCORER_INFERENCE__MODEL_REPOSITORY=str(MODEL_REPOSITORY)), "models", "list")
    assert rc == 0, err
    assert clean_stderr(err) == []
    for kind in ("netflow", "edr", "siem"):
        assert f"{kind}: {kind}_classifier (repository)" in out
    assert "features" in out and " v1 " in out  # each version's feature set, from its card
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "live serving state not shown" in notes[0], out
    assert "live (" not in out


def test_list_json_without_kafka(repo: Repo) -> None:
    rc, out, err = _scorer(offline_env(), "models", "list", "--kind", KIND, "--repo", str(repo.path), "--json")
    assert rc == 0 and clean_stderr(err) == []
    (listing,) = json.loads(out)
    assert [v["version"] for v in listing["versions"]] == ["1"]
    row = listing["versions"][0]
    assert row["integrity"] == "ok" and row["feature_set"] == "v1" and len(row["sha256"]) == 64
    assert row["roles"] == [] and listing["live"] == "" and "live serving state not shown" in listing["note"]


def test_validate_production_against_itself_passes_without_kafka(repo: Repo) -> None:
    for against in (("--against", "1"), ()):  # named, or taken as what a scorer would serve
        rc, out, err = _scorer(offline_env(), "models", "validate", "--kind", KIND, "--version", "1",
                               "--repo", str(repo.path), *against)
        assert rc == 0, out + err
        assert out.startswith(f"PASS: {MODEL} version 1 vs production 1"), out
        assert "no production version to compare with" not in out
        (latency,) = [line for line in out.splitlines() if "] latency:" in line]
        assert "vs production 1's" in latency and "budget" not in latency, latency
        lines = clean_stderr(err)
        assert lines == ([] if against else [lines[0]]) and (against or "taking 1" in lines[0]), err


def test_every_command_against_a_stopped_broker_fails_in_one_line(repo: Repo) -> None:
    # The lifecycle's commands, and the core's other commands that talk to Kafka (record,
    # replay --to kafka); `scorer run` is the service, which waits for its broker.
    env = offline_env(SCORER_RULES__REPOSITORY=str(RULE_REPOSITORY))
    model = ("--kind", KIND, "--repo", str(repo.path))
    needs_kafka = [
        ("models", "deploy", *model, "--shadow", "--version", "1"),
        ("models", "promote", *model),
        ("models", "rollback", *model, "--version", "1"),
        ("rules", "deploy", "sigma_windows", "2", "--shadow"),
        ("rules", "promote"),
        ("rules", "rollback"),
        ("record", "scorer.input.netflow", "--out", str(repo.tmp / "record.jsonl")),
        ("replay", str(ROOT / "scorer" / "data" / "demo_capture.jsonl.gz"), "--to", "kafka", "--limit", "10",
         "--out", str(repo.tmp / "replay")),
    ]
    offline = [("models", "list", *model), ("rules", "list")]
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda args: _scorer(env, *args), needs_kafka + offline))
    for args, (rc, out, err) in zip(needs_kafka + offline, results, strict=True):
        lines = clean_stderr(err)
        if args in offline:
            assert rc == 0 and lines == [] and "live serving state not shown" in out, (args, out, err)
        else:
            assert rc == 1 and len(lines) == 1 and lines[0].startswith("scorer: cannot talk to Kafka: "), (args, err)
            assert "Unable to bootstrap" in lines[0] and "KafkaConnectionError: KafkaConnectionError" not in lines[0]


def test_package_without_kafka_takes_production_from_the_repository(repo: Repo) -> None:
    model = repo.tmp / "candidate.joblib"
    joblib.dump(joblib.load(repo.tmp / "v1.joblib"), model)
    rc, out, err = _scorer(offline_env(), "models", "package", "--kind", KIND, "--repo", str(repo.path), str(model))
    assert rc == 0, out + err
    assert f"packaged {MODEL} version 2" in out and "triton configs pinned to versions [1]" in out
    lines = clean_stderr(err)
    assert len(lines) == 1 and lines[0].startswith("note: production version not known from Kafka"), err


def test_latency_gate_is_relative_to_production(repo: Repo) -> None:
    # A forest of deep trees against production's logistic regression: many times slower in
    # any run on any machine, so the relative gate must refuse it (quality may be fine).
    forest = RandomForestClassifier(n_estimators=60, max_depth=10, random_state=0)
    forest.fit(repo.golden.features, repo.golden.labels)
    joblib.dump(forest, repo.tmp / "forest.joblib")
    slow = package(repo.path, PackageRequest(KIND, repo.tmp / "forest.joblib", MODEL, repo.golden, repo.production))
    verdict = validate(repo.path, MODEL, slow.version, KIND, repo.golden, production="1",
                       margins=Margins(batch=512, runs=5))
    (latency,) = [c for c in verdict.checks if c.name == "latency"]
    assert not latency.ok and "vs production 1's" in latency.detail, latency
    assert verdict.metrics["latency_ratio"] > 1.25, verdict.metrics
    assert verdict.metrics["latency_p50_us_per_event"] > 1.25 * verdict.metrics["production_latency_p50_us_per_event"]
    assert not any(c.name == "latency_budget" for c in verdict.checks)  # no absolute budget unless set

