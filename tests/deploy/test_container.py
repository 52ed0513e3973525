"""The scorer image without building it: its entrypoint runs each role with the real
programs (as the image would, the venv on PATH), its health check follows the running role,
and the Containerfiles keep their promises (multi-stage, non-root, no build tools or pip in
the final stage, a HEALTHCHECK, every COPY source present). Building the images needs root
and minutes (deploy/container/build.sh; docs/production.md says what was built here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.kafka import KafkaBroker, free_ports
from tests.support.paths import ROOT

CONTAINER = ROOT / "deploy/container"
ENTRYPOINT = CONTAINER / "entrypoint.sh"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|build-essential|make|python3-dev|python3-venv|python3-pip|git)\b")


def entrypoint(*args: str, env: dict[str, str] | None = None, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                               "TMPDIR": str(tmp), **(env or {})})


def test_roles_exec_the_real_programs(tmp_path: Path) -> None:
    scorer = entrypoint("scorer", "capacity", "--events-per-second", "1e5", tmp=tmp_path)
    assert scorer.returncode == 0 and "capacity for 100,000" in scorer.stdout
    profiles = entrypoint("profiles", "--help", tmp=tmp_path)
    assert profiles.returncode == 0 and "python -m streams" in profiles.stdout  # the worker's own help
    assert "exec python -m scorer_streams --metrics-host 0.0.0.0 --help" in profiles.stderr


@pytest.mark.parametrize(("hostname", "instance"), [("scorer-incidents-3", "3"), ("scorer-incidents-12", "12"),
                                                     ("laptop", "0")])
def test_incidents_take_the_statefulset_ordinal_as_instance(tmp_path: Path, hostname: str, instance: str) -> None:
    out = entrypoint("incidents", "--help", env={"HOSTNAME": hostname}, tmp=tmp_path)
    assert out.returncode == 0 and "--instance" in out.stdout
    assert f"--instance {instance} --help" in out.stderr


def test_healthcheck_follows_the_running_role(kafka: KafkaBroker, tmp_path: Path) -> None:
    port = free_ports(1)[0]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "TMPDIR": str(tmp_path),
           "SCORER_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap,
           "SCORER_HEALTH_PORT": str(port),
           # the image has it in /opt/scorer
           "SCORER_LAG_EXPORTER": str(ROOT / "deploy/prometheus/lag_exporter.py")}
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), "lag-exporter", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        last_change, healthy = time.monotonic(), False
        while not healthy:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() - last_change < 60, "lag exporter never answered /healthz"
            healthy = entrypoint("healthcheck", tmp=tmp_path).returncode == 0
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(20)
    assert entrypoint("healthcheck", tmp=tmp_path).returncode != 0  # nothing listens any more


def stages(containerfile: Path) -> list[str]:
    return re.split(r"^FROM ", containerfile.read_text(), flags=re.M)[1:]


@pytest.mark.parametrize("name", ["scorer", "models", "triton"])
def test_containerfiles_are_multi_stage_non_root_with_a_health_check(name: str) -> None:
    path = CONTAINER / f"Containerfile.{name}"
    parts = stages(path)
    assert len(parts) >= 2, f"{path.name}: not multi-stage"
    final = parts[-1]
    users = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root"), f"{path.name}: final stage runs as root"
    assert re.search(r"^HEALTHCHECK ", final, flags=re.M), f"{path.name}: no HEALTHCHECK"
    installs = " ".join(re.findall(r"apt-get install[^&]*", final))
    assert not BUILD_TOOLS.search(installs), f"{path.name}: build tools in the final stage: {installs}"
    for src in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", final + "".join(parts[:-1]), flags=re.M):
        if not src.startswith("var/"):  # var/container/wheels: made by build.sh
            assert (ROOT / src).exists(), f"{path.name}: COPY {src} does not exist"


def test_the_scorer_image_drops_pip_and_keeps_the_venv_self_contained() -> None:
    build, final = stages(CONTAINER / "Containerfile.scorer")[-2:]
    assert "--no-index" in build and "uninstall -y -q pip" in build  # offline from build.sh's wheels; no pip left
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert 'ENTRYPOINT ["/usr/local/bin/scorer-entrypoint"]' in final
