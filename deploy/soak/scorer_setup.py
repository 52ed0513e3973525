"""What the soaked ``scorer run`` runs: a model repository where promote and rollback have a
version to switch to, its ``SCORER_*`` environment (the private broker, Triton or in-process
scoring, exactly-once or not), and the commit of the code it imports (for the report).

Apart from the run (:mod:`deploy.soak.soak`) because it is set once and the same at every
restart of the process (:class:`deploy.soak.services.Scorer` keeps the environment), while
the run decides when faults come and what is sampled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from deploy.soak.services import ROOT, Triton, free_port
from scorer.events.structs import EventKind
from scorer.inference.repository import write_checksums


def model_repository(workdir: Path) -> Path:
    """A copy of model_repository/ with every version 1 published again as version 2 (the
    same model: promote and rollback switch between them without changing the scores)."""
    repo = workdir / "model_repository"
    if not repo.exists():
        shutil.copytree(ROOT / "model_repository", repo)
        for model in (p for p in repo.iterdir() if (p / "1").is_dir()):
            shutil.copytree(model / "1", model / "2")
            card = json.loads((model / "2" / "card.json").read_text())
            (model / "2" / "card.json").write_text(json.dumps({**card, "version": "2"}))
            write_checksums(model / "2")
    return repo


def scorer_env(bootstrap: str, repo: Path, triton: Triton | None, transactional: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    env.update(
        {
            "SCORER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SCORER_KAFKA__GROUP_ID": "soak",
            "SCORER_KAFKA__CLIENT_ID": "soak-scorer-0",
            "SCORER_KAFKA__GROUP_INSTANCE_ID": "soak-scorer-0",
            "SCORER_KAFKA__SESSION_TIMEOUT_MS": "10000",
            "SCORER_KAFKA__TRANSACTIONAL": str(transactional).lower(),
            "SCORER_TOPICS__SCORES": "scores",
            "SCORER_INFERENCE__MODEL_REPOSITORY": str(repo),
            "SCORER_INFERENCE__VERSIONS": json.dumps({k.value: "1" for k in EventKind}),
            "SCORER_INFERENCE__BACKEND": "triton" if triton else "onnxruntime",
            "SCORER_HTTP__PORT": str(free_port()),
        }
    )
    if triton is not None:
        env["SCORER_INFERENCE__TRITON_URL"] = f"127.0.0.1:{triton.grpc_port}"
        env["SCORER_LIFECYCLE__SYNC_COMMAND"] = json.dumps(triton.sync_command())
    return env


def commit() -> str:
    """HEAD of this tree; in a snapshot (git archive, no .git) the COMMIT file written beside it."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    marker = ROOT / "COMMIT"
    return out.stdout.strip() or (marker.read_text().strip() if marker.is_file() else "")
