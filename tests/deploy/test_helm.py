"""The Helm chart (deploy/helm/scorer) with a real helm (built from the Go module proxy by
deploy/helm/tools.sh, cached): lint, render every ci/ values file and validate the manifests
with kubeconform against the Kubernetes API schemas and the KEDA and prometheus-operator CRD
schemas (offline, made from those projects' module sources), and refuse bad values clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

CHART = ROOT / "deploy/helm/scorer"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SCHEMA_LOCATION = "{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json"


@pytest.fixture(scope="module")
def tools() -> Path:
    """The cache folder with bin/helm, bin/kubeconform and schemas/ (built once, then reused)."""
    out = subprocess.run(["bash", str(ROOT / "deploy/helm/tools.sh")], capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stderr[-3000:]
    return Path(out.stdout.strip().splitlines()[-1])


def helm(tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": str(tools / "helm-home"), "HELM_CONFIG_HOME": str(tools / "helm-home"),
           "HELM_DATA_HOME": str(tools / "helm-home")}
    return subprocess.run([str(tools / "bin/helm"), *args], capture_output=True, text=True, timeout=300, env=env)


def render(tools: Path, *args: str) -> list[dict[str, Any]]:
    out = helm(tools, "template", "scorer", str(CHART), "--namespace", "soc", *args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def kinds(docs: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] == kind)


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_and_validate_against_the_api_schemas(tools: Path, values: Path, tmp_path: Path) -> None:
    lint = helm(tools, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = helm(tools, "template", "scorer", str(CHART), "--namespace", "soc", "-f", str(values))
    assert out.returncode == 0, out.stderr
    (tmp_path / "manifests.yaml").write_text(out.stdout)
    check = kubeconform(tools, tmp_path / "manifests.yaml")
    print(check.stdout)
    # No -ignore-missing-schemas: a kind without a schema is an error, not a skip.
    assert check.returncode == 0 and "Errors: 0" in check.stdout and "Skipped: 0" in check.stdout, check.stdout


def kubeconform(tools: Path, manifests: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools / "bin/kubeconform"), "-strict", "-summary", "-output", "text",
         "-schema-location", f"{tools / 'schemas'}/{SCHEMA_LOCATION}", str(manifests)],
        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("kind", "mutate", "error"), [
    ("Deployment", lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSecond=30), "additional"),
    ("ScaledObject", lambda d: d["spec"].update(maxReplicaCount="many"), "integer"),
    ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(intervall="30s"), "additional"),
])
def test_the_validation_catches_a_misspelt_or_mistyped_field(
    tools: Path, tmp_path: Path, kind: str, mutate: Any, error: str,
) -> None:
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"))
    mutate(next(kinds(docs, kind)))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump_all(docs))
    check = kubeconform(tools, tmp_path / "bad.yaml")
    assert check.returncode != 0 and "Invalid: 1" in check.stdout and error in check.stdout, check.stdout


def test_every_component_and_crd_is_rendered(tools: Path) -> None:
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"))
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [("Deployment", "scorer-scorer"), ("Deployment", "scorer-scorer-triton"),
                     ("Deployment", "scorer-scorer-profiles"), ("StatefulSet", "scorer-scorer-incidents"),
                     ("Deployment", "scorer-scorer-lag-exporter"), ("PodDisruptionBudget", "scorer-scorer"),
                     ("ScaledObject", "scorer-scorer"), ("TriggerAuthentication", "scorer-scorer-kafka"),
                     ("ServiceMonitor", "scorer-scorer"), ("PrometheusRule", "scorer-scorer"),
                     ("ConfigMap", "scorer-scorer-dashboard")]:
        assert expected in names, f"{expected} not rendered"


def test_scorer_pod_probes_drain_and_secrets(tools: Path) -> None:
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"))
    scorer = next(d for d in kinds(docs, "Deployment") if d["metadata"]["name"] == "scorer-scorer")
    pod = scorer["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"  # what scorer/service/http.py serves
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] == yaml.safe_load((CHART / "values.yaml").read_text())[
        "scorer"]["terminationGracePeriodSeconds"]
    env = {e["name"]: e for e in container["env"]}
    assert "SCORER_KAFKA__SASL_PASSWORD" not in env  # the password is a file, never an env value
    assert env["SCORER_KAFKA__SASL_PASSWORD_FILE"]["value"].startswith("/run/secrets/kafka-sasl/")
    assert env["SCORER_KAFKA__SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-scorer-user"
    assert env["SCORER_KAFKA__REPLICATION_FACTOR"]["value"] == "3"  # the topics it creates, pinned for a cluster
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]


@pytest.mark.parametrize(("partitions", "max_replicas", "cap"), [(24, 48, 24), (12, 6, 6), (3, 3, 3)])
def test_keda_replicas_are_capped_by_partitions(tools: Path, partitions: int, max_replicas: int, cap: int) -> None:
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"), "--set", f"kafka.partitions={partitions}",
                  "--set", f"keda.maxReplicas={max_replicas}")
    scaled = next(kinds(docs, "ScaledObject"))
    assert scaled["spec"]["maxReplicaCount"] == cap
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka" and trigger["metadata"]["allowIdleConsumers"] == "false"
    assert trigger["metadata"]["sasl"] == "scram_sha512" and trigger["metadata"]["tls"] == "enable"


@pytest.mark.parametrize(("values", "resource"), [
    (["--set", "triton.gpu.migProfile=1g.10gb"], "nvidia.com/mig-1g.10gb"),
    (["--set", "triton.gpu.migProfile="], "nvidia.com/gpu"),
    (["--set", "triton.gpu.resourceName=nvidia.com/gpu.shared"], "nvidia.com/gpu.shared"),
])
def test_triton_gpu_resource_whole_mig_or_time_sliced(tools: Path, values: list[str], resource: str) -> None:
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"), *values)
    triton = next(d for d in kinds(docs, "Deployment") if d["metadata"]["name"].endswith("-triton"))
    limits = triton["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits.get(resource) == 1, limits


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "kafka.bootstrapServers=kafka:9092", "--set", "scorer.replica=3"], "replica"),
    (["--set", "kafka.bootstrapServers=kafka:9092", "--set", "kafka.tls.existingSecret=ca"], "existingSecret"),
    (["--set", "kafka.bootstrapServers=kafka:9092", "--set", "kafka.sasl.existingSecret=user"], "existingSecret"),
    (["--set", "kafka.sasl.existingSecret=u", "--set", "kafka.tls.existingSecret=ca"], "bootstrapServers"),
    (["--set", "kafka.bootstrapServers=kafka:9092", "--set", "kafka.securityProtocol=PLAINTEXT",
      "--set", "triton.gpu.migProfile=big"], "migProfile"),
])
def test_bad_values_fail_helm_template_with_a_clear_message(tools: Path, args: list[str], message: str) -> None:
    out = helm(tools, "template", "scorer", str(CHART), *args)
    assert out.returncode != 0, "helm template accepted bad values"
    assert message in out.stderr, out.stderr


def field_path_exists(name: str) -> bool:
    """``SCORER_KAFKA__SASL_PASSWORD_FILE`` -> Settings.kafka.sasl_password_file exists."""
    from pydantic import BaseModel

    from scorer.config import Settings

    model: type[BaseModel] = Settings
    parts = name.removeprefix("SCORER_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(parts) - 1:
            sub = field.annotation
            if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
                return False
            model = sub
    return True


LOAD_EACH = """
import json, os, sys
from scorer.config import Settings
for env in json.load(sys.stdin):
    for k in [k for k in os.environ if k.startswith("SCORER_")]:
        del os.environ[k]
    os.environ.update(env)
    Settings()
"""


def test_every_setting_the_chart_sets_is_one_the_scorer_reads(tools: Path) -> None:
    """A misspelt SCORER_ variable would be ignored by the pod; here it fails, and the
    settings load as the scorer loads them (scorer.config.Settings, from the environment)."""
    envs = []
    for values in CI_VALUES:
        docs = render(tools, "-f", str(values))
        pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
        for container in (c for pod in pods for c in pod["containers"]):
            env = {e["name"]: e.get("value", "from-a-secret") for e in container.get("env", [])}
            unknown = [n for n in env if n.startswith("SCORER_") and not field_path_exists(n)]
            assert not unknown, f"{values.name} {container['name']}: settings the scorer does not have: {unknown}"
            envs.append(env)
    load = subprocess.run([sys.executable, "-c", LOAD_EACH], input=json.dumps(envs), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert load.returncode == 0, load.stderr[-2000:]


def test_every_container_command_line_parses(tools: Path, tmp_path: Path) -> None:
    """The chart's args through the image's entrypoint to the real programs' parsers (--help
    after them: parsed, then nothing started); the SASL values render every component."""
    docs = render(tools, "-f", str(CHART / "ci/sasl-ssl-values.yaml"))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for container in (c for pod in pods for c in pod["containers"] if c["name"] != "triton"):
        args = [*container["args"], "--help"]
        out = subprocess.run(["sh", str(ROOT / "deploy/container/entrypoint.sh"), *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TMPDIR": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:"
                                  f"{os.environ['PATH']}", "SCORER_LAG_EXPORTER": str(
                                      ROOT / "deploy/prometheus/lag_exporter.py")})
        assert out.returncode == 0 and "usage:" in out.stdout, f"{container['name']} {args}: {out.stderr[-2000:]}"


@pytest.mark.parametrize(("name", "exists"), [
    ("SCORER_KAFKA__SASL_PASSWORD_FILE", True), ("SCORER_HTTP__PORT", True), ("SCORER_KAFKA__SASL_PASWORD_FILE", False),
    ("SCORER_KAFKA", True), ("SCORER_KAFKA__BOOTSTRAP_SERVERS__X", False), ("SCORER_NOPE", False),
])
def test_the_setting_check_tells_a_misspelt_name(name: str, exists: bool) -> None:
    assert field_path_exists(name) is exists
