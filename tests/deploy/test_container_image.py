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
from pathlib import Path

import pytest

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
