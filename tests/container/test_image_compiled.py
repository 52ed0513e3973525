"""The built images score with compiled trees: the scorer image has no C compiler and no
tl2cgen, the models image's versions carry ``compiled_trees.so`` (``build.sh models``), and
the scorer run from its own file system, as its user with its environment and the models
image's repository at /models (where the chart's init container copies it), loads every
shipped version with the compiled engine (asked for: the service's default ``auto`` takes the
vectorized engine first where the CPU has AVX2, which needs no library), scores the
capture's real rows as ONNX Runtime does, and says so on ``/metrics`` while it consumes a
real broker. Opt-in and slow: building the images needs root, podman and minutes
(``deploy/container/build.sh models`` and ``scorer``), beyond CI's budget::

    SCORER_CONTAINER_IMAGE=localhost/scorer:0.1.0 SCORER_MODELS_IMAGE=localhost/scorer-models:0.1.0 \\
      pytest -m slow tests/container/test_image_compiled.py

As tests/deploy/test_container_image.py: ``podman run`` cannot start containers on this
machine, so the images' file systems are mounted and run with chroot (and /proc mounted into
the container's root, as a container runtime does).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from scorer.config import KafkaSettings, Settings, TopicSettings
from scorer.demo import bundled_capture
from scorer.events.structs import EventKind
from scorer.inference.compiled_shipped import LIBRARY, MANIFEST
from scorer.inference.repository import listed_checksums
from tests.deploy import test_gpu_compiled
from tests.support.faults.process import ScorerProcess, new_topics, scorer_env
from tests.support.kafka import KafkaBroker
from tests.support.stream import Stream, endless

IMAGE = os.environ.get("SCORER_CONTAINER_IMAGE", "")
MODELS_IMAGE = os.environ.get("SCORER_MODELS_IMAGE", "")
MODELS = ("netflow_classifier", "edr_classifier", "siem_classifier")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (IMAGE and MODELS_IMAGE) or shutil.which("podman") is None,
    reason="runs only with SCORER_CONTAINER_IMAGE and SCORER_MODELS_IMAGE set to built images (and podman)")]
capture = test_gpu_compiled.capture

# Run inside the image: the service's backend built from its settings as `scorer run` builds
# it, each model's rows scored by it and by ONNX Runtime, and the engine metrics.
CHECK = """
import json, sys, asyncio, numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from scorer.config import Settings
from scorer.inference.base import ModelRef
from scorer.inference.onnxruntime import OnnxRuntimeBackend
from scorer.service.build import build_runtimes, load_rules, build_backend, register_engine_metrics, split_backend
s = Settings()
runtimes = build_runtimes(s, None, load_rules(s))
backend = build_backend(s, runtimes)
registry = CollectorRegistry()
register_engine_metrics(backend, registry)
_, local = split_backend(backend)
asyncio.run(local.start())
reference = OnnxRuntimeBackend(s.inference.model_repository)
rows = np.load(sys.argv[1])
out = {"metrics": generate_latest(registry).decode(), "models": {}}
for model in rows.files:
    loaded = local.load(ModelRef(model))
    x = np.ascontiguousarray(rows[model], np.float32)
    got = local._run(loaded, x)
    want = reference._run(reference.load(ModelRef(model)), x)
    out["models"][model] = {"engine": loaded.engine, "source": getattr(loaded.trees, "source", None),
                            "rows": len(x), "max_abs_diff": float(np.max(np.abs(got - want)))}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def image() -> tuple[Path, dict[str, Any]]:
    inspect = json.loads(subprocess.run(["podman", "image", "inspect", IMAGE], capture_output=True, text=True,
                                        check=True).stdout)[0]
    root = Path(subprocess.run(["podman", "image", "mount", IMAGE], capture_output=True, text=True,
                               check=True).stdout.strip())
    return root, inspect["Config"]


@pytest.fixture(scope="module")
def repository() -> Path:
    root = Path(subprocess.run(["podman", "image", "mount", MODELS_IMAGE], capture_output=True, text=True,
                               check=True).stdout.strip())
    return root / "model_repository"


@pytest.fixture
def container_root(repository: Path) -> Iterator[Path]:
    """A scorer container's writable root with the models at /models and /proc mounted."""
    cid = subprocess.run(["podman", "create", IMAGE], capture_output=True, text=True, check=True).stdout.strip()
    root = Path(subprocess.run(["podman", "mount", cid], capture_output=True, text=True, check=True).stdout.strip())
    try:
        shutil.copytree(repository, root / "models", dirs_exist_ok=True)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        yield root
    finally:
        subprocess.run(["umount", str(root / "proc")], capture_output=True, check=False)
        subprocess.run(["podman", "rm", "-f", cid], capture_output=True, check=False)


def _chroot(root: Path, config: dict[str, Any], env: dict[str, str]) -> list[str]:
    return ["chroot", f"--userspec={config['User']}", str(root), "/usr/bin/env", "-i",
            *(f"{k}={v}" for k, v in env.items())]


def _image_env(config: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, _, v in (str(e).partition("=") for e in cast(list[str], config["Env"]))} | {"HOME": "/tmp"}


def test_the_images_ship_libraries_and_no_compiler(image: tuple[Path, dict[str, Any]], repository: Path) -> None:
    root, _ = image
    for tool in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/clang"):
        assert not (root / tool).exists(), f"{tool} in the scorer image"
    assert not list((root / "opt/venv/lib").glob("python3*/site-packages/tl2cgen")), "tl2cgen in the scorer image"
    for model in MODELS:
        listed = listed_checksums(repository / model / "1")
        assert LIBRARY in listed and MANIFEST in listed, f"{model}: no library listed in its SHA256SUMS"


def test_the_image_scores_with_the_compiled_trees_as_onnx_runtime_does(
    image: tuple[Path, dict[str, Any]], container_root: Path, capture: Any,
) -> None:
    _, config = image
    np.savez(container_root / "tmp/rows.npz", **{m: np.asarray(capture[m][:4000], np.float32) for m in MODELS})
    (container_root / "tmp/check.py").write_text(CHECK)
    env = _image_env(config) | {"SCORER_INFERENCE__BACKEND": "onnxruntime",
                                "SCORER_INFERENCE__IN_PROCESS_ENGINE": "compiled"}
    run = subprocess.run([*_chroot(container_root, config, env), "/opt/venv/bin/python", "/tmp/check.py",
                          "/tmp/rows.npz"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.splitlines()[-1])
    for model in MODELS:
        found = report["models"][model]
        assert found["engine"] == "compiled" and found["source"] == "version", (model, found, run.stderr[-3000:])
        assert found["rows"] > 1000 and found["max_abs_diff"] <= 1e-5, (model, found)
        assert f'scorer_inference_engine{{engine="compiled",model="{model}",version="1"}} 1.0' in report["metrics"]
    assert "scorer_inference_engine_fallbacks_total{" not in report["metrics"]


async def test_scorer_run_from_the_image_says_compiled_on_metrics(
    image: tuple[Path, dict[str, Any]], container_root: Path, kafka: KafkaBroker, tmp_path: Path,
) -> None:
    topics = await new_topics(kafka, kinds=list(EventKind))
    _, config = image
    image_env = _image_env(config)
    service = scorer_env(kafka.bootstrap, topics, repository=Path("/models"))
    env = {**image_env, **{k: v for k, v in service.items() if k.startswith("SCORER_")},
           "SCORER_RULES__REPOSITORY": image_env["SCORER_RULES__REPOSITORY"],
           "SCORER_INFERENCE__IN_PROCESS_ENGINE": "compiled"}
    scorer = ScorerProcess(env, tmp_path / "scorer.log")
    with scorer.log.open("wb") as log:
        scorer.proc = subprocess.Popen([*_chroot(container_root, config, env), "/usr/local/bin/scorer-entrypoint",
                                        "run"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        await scorer.wait_ready(timeout=120)
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap),
                            topics=TopicSettings(netflow=topics.input(EventKind.NETFLOW),
                                                 edr=topics.input(EventKind.EDR), siem=topics.input(EventKind.SIEM)))
        scored = asyncio.ensure_future(scorer.scored_more(1000))
        await asyncio.sleep(0)  # its count to start from is read now, before anything is sent
        await Stream(settings, endless(bundled_capture()), rate=2000.0).run(limit=2000)
        await scored
        _, metrics = scorer.get("/metrics")
    finally:
        code = scorer.stop()
    assert code == 0, scorer.log_tail()
    for model in MODELS:
        assert f'scorer_inference_engine{{engine="compiled",model="{model}",version="1"}} 1.0' in metrics, \
            scorer.log_tail()
    assert "scored by compiled trees: /models/netflow_classifier/1/compiled_trees.so (the version's own)" in \
        scorer.log_tail(1_000_000)
