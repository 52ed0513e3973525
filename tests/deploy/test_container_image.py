"""The built scorer image, run from its own file system: opt-in, because building it needs
root, podman and minutes (``deploy/container/build.sh scorer``), too slow for CI.

    SCORER_CONTAINER_IMAGE=localhost/scorer:0.1.0 pytest tests/deploy/test_container_image.py

``podman run`` cannot start a container on this machine (crun may not set rlimits here), so
the image's root file system is mounted (``podman image mount``) and its programs run with
chroot as the image's user, with the image's environment: the same files, user and entry
point a container would run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from scorer.config import KafkaSettings, Settings, TopicSettings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from tests.support.faults.process import ScorerProcess, new_topics, scorer_env
from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY
from tests.support.stream import Stream, endless

IMAGE = os.environ.get("SCORER_CONTAINER_IMAGE", "")
pytestmark = pytest.mark.skipif(not IMAGE or shutil.which("podman") is None,
                                reason="runs only with SCORER_CONTAINER_IMAGE set to a built image (and podman)")


@pytest.fixture(scope="module")
def image() -> tuple[Path, dict[str, object]]:
    inspect = json.loads(subprocess.run(["podman", "image", "inspect", IMAGE], capture_output=True, text=True,
                                        check=True).stdout)[0]
    config = {**inspect["Config"], "Healthcheck": inspect.get("Healthcheck")}  # podman puts it beside Config
    root = Path(subprocess.run(["podman", "image", "mount", IMAGE], capture_output=True, text=True,
                               check=True).stdout.strip())
    return root, config


def run_in(image: tuple[Path, dict[str, object]], *argv: str) -> subprocess.CompletedProcess[str]:
    root, config = image
    env = [e for e in config["Env"]] + ["HOME=/tmp", "HOSTNAME=scorer-incidents-2"]  # type: ignore[attr-defined]
    return subprocess.run(["chroot", f"--userspec={config['User']}", str(root), "/usr/bin/env", "-i", *env, *argv],
                          capture_output=True, text=True, timeout=300)


def test_non_root_entry_point_and_health_check(image: tuple[Path, dict[str, object]]) -> None:
    _, config = image
    assert str(config["User"]).split(":")[0] not in ("", "0", "root")
    assert config["Entrypoint"] == ["/usr/local/bin/scorer-entrypoint"] and config["Cmd"] == ["run"]
    assert config.get("Healthcheck"), "HEALTHCHECK lost (build with --format docker)"


def test_no_build_tools_and_no_pip(image: tuple[Path, dict[str, object]]) -> None:
    root, _ = image
    for tool in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make", "usr/bin/pip3", "opt/venv/bin/pip"):
        assert not (root / tool).exists(), f"{tool} in the final image"


def test_every_role_starts_from_the_image(image: tuple[Path, dict[str, object]]) -> None:
    cli = run_in(image, "/usr/local/bin/scorer-entrypoint", "scorer", "--help")
    assert cli.returncode == 0 and "capacity" in cli.stdout, cli.stderr
    for role in ("profiles", "incidents", "lag-exporter"):
        out = run_in(image, "/usr/local/bin/scorer-entrypoint", role, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout, (role, out.stderr)
    assert "--instance 2" in run_in(image, "/usr/local/bin/scorer-entrypoint", "incidents", "--help").stderr


def test_the_shipped_rule_pack_loads_inside_the_image(image: tuple[Path, dict[str, object]]) -> None:
    out = run_in(image, "/opt/venv/bin/scorer", "rules", "list", "/opt/scorer/rule_repository/sigma_windows/2")
    assert out.returncode == 0 and "credential_access" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.fixture
def container_root() -> Iterator[Path]:
    """A container's writable root (podman create + mount): the models go in at /models,
    where the chart's init container puts them."""
    cid = subprocess.run(["podman", "create", IMAGE], capture_output=True, text=True, check=True).stdout.strip()
    try:
        root = Path(subprocess.run(["podman", "mount", cid], capture_output=True, text=True,
                                   check=True).stdout.strip())
        shutil.copytree(MODEL_REPOSITORY, root / "models", dirs_exist_ok=True)
        yield root
    finally:
        subprocess.run(["podman", "rm", "-f", cid], capture_output=True, check=False)


async def test_scorer_run_from_the_image_scores_kafka_events(
    image: tuple[Path, dict[str, object]], container_root: Path, kafka: KafkaBroker, tmp_path: Path,
) -> None:
    """`scorer run` of the image (its venv, rule pack, entrypoint, user) against a real
    broker: it becomes ready, scores what is replayed into its topics, drains on SIGTERM."""
    topics = await new_topics(kafka, kinds=list(EventKind))
    env = scorer_env(kafka.bootstrap, topics, repository=Path("/models"))
    _, config = image
    image_env = {k: v for k, _, v in (str(e).partition("=") for e in cast(list[str], config["Env"]))}
    run_env = {**image_env, **{k: v for k, v in env.items() if k.startswith("SCORER_")}, "HOME": "/tmp",
               "SCORER_RULES__REPOSITORY": image_env["SCORER_RULES__REPOSITORY"]}
    scorer = ScorerProcess(run_env, tmp_path / "scorer.log")
    with scorer.log.open("wb") as log:
        scorer.proc = subprocess.Popen(
            ["chroot", f"--userspec={config['User']}", str(container_root), "/usr/bin/env", "-i",
             *(f"{k}={v}" for k, v in run_env.items()), "/usr/local/bin/scorer-entrypoint", "run"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await scorer.wait_ready(timeout=120)
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap),
                            topics=TopicSettings(netflow=topics.input(EventKind.NETFLOW),
                                                 edr=topics.input(EventKind.EDR), siem=topics.input(EventKind.SIEM)))
        before = scorer.metric("scorer_events_scored_total")  # a fast scorer scores while they are sent
        await Stream(settings, endless(bundled_capture()), rate=2000.0).run(limit=2000)
        await scorer.scored_more(1000, since=before)
    finally:
        code = scorer.stop()
    assert code == 0, scorer.log_tail()
    assert "scorer-entrypoint: exec scorer run" in scorer.log_tail(100_000)
