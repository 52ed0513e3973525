"""A signed repository served for real: `scorer run` (ONNX Runtime and Triton backends) and
the Triton launcher with trusted keys configured refuse a version that was re-hashed after
tampering or re-signed with an unknown key, and serve every other (signed) model.

Reproduce: pytest -s tests/lifecycle/test_signing_backends.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scorer.inference.repository import MODEL_FILE, list_versions, write_checksums
from scorer.supply import signing
from tests.support.faults import new_topics, scorer_env, usable_kinds
from tests.support.faults.refusal import triton_refusing
from tests.support.kafka import KafkaBroker
from tests.support.paths import MODEL_REPOSITORY, ROOT, RULE_REPOSITORY
from tests.support.triton import StartTriton

REHASHED, UNKNOWN_KEY = "re-hashed after tampering", "re-signed with an unknown key"
REASON = {REHASHED: "does not verify", UNKNOWN_KEY: "signed only by untrusted key"}


# Each attack on one backend in CI (the loader is the same for both); every pairing was run
# by hand (docs/reliability.md): SCORER_SIGNING_ALL_PAIRS=1 runs the four.
PAIRS = [(REHASHED, "onnxruntime"), (UNKNOWN_KEY, "triton")]
if os.environ.get("SCORER_SIGNING_ALL_PAIRS") == "1":
    PAIRS += [(UNKNOWN_KEY, "onnxruntime"), (REHASHED, "triton")]


@pytest.mark.parametrize(("attack", "backend"), PAIRS)
async def test_scorer_and_launcher_refuse_a_badly_signed_version(
    kafka: KafkaBroker,
    tmp_path: Path,
    attack: str,
    backend: str,
    start_triton: StartTriton,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "model_repository"
    shutil.copytree(MODEL_REPOSITORY, repo)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    signing.generate(tmp_path / "release.key", trusted / "release.pub")
    signing.generate(tmp_path / "stranger.key", tmp_path / "stranger.pub")
    release = signing.load_private_key(tmp_path / "release.key")
    rules = tmp_path / "rule_repository"  # under trust the rule packs must be signed too
    shutil.copytree(RULE_REPOSITORY, rules)
    for root in (repo, rules):
        for version in (v for m in root.iterdir() if m.is_dir() for v in m.iterdir() if v.name.isdigit()):
            signing.sign(version, release)
    kind = usable_kinds()[0]
    model = f"{kind.value}_classifier"
    target = repo / model / list_versions(repo, model)[-1]
    data = bytearray((target / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (target / MODEL_FILE).write_bytes(bytes(data))
    write_checksums(target)  # the checksums pass again: only the signature can tell
    if attack == UNKNOWN_KEY:
        signing.sign(target, signing.load_private_key(tmp_path / "stranger.key"))
    monkeypatch.setenv(signing.TRUSTED_KEYS_ENV, str(trusted))  # the launcher (in this process) too

    topics = await new_topics(kafka)
    env = scorer_env(
        kafka.bootstrap,
        topics,
        repository=repo,
        SCORER_SIGNING__TRUSTED_KEYS=str(trusted),
        SCORER_RULES__REPOSITORY=str(rules),
    )
    with contextlib.ExitStack() as stack:
        if backend == "triton":
            server = triton_refusing(stack, start_triton, repo, tmp_path / "triton", capfd, kind,
                                     str(target), REASON[attack])
            env.update(SCORER_INFERENCE__BACKEND="triton", SCORER_INFERENCE__TRITON_URL=server.grpc_url)
        # The scorer refuses at start: it exits by itself, so a plain run is enough.
        run = subprocess.run(
            [sys.executable, "-m", "scorer.cli", "run"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    error = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("scorer:")]
    print(f"\n{attack} ({backend}): rc={run.returncode}: {error}")
    assert run.returncode == 2
    assert error and str(target) in error[0] and REASON[attack] in error[0]
