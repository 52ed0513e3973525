"""The Triton model repository on disk: versions, cards, checksums, production configs.

Layout (Triton's own, plus a card and checksums per version)::

    model_repository/<model>/config.pbtxt          production: native onnxruntime, KIND_GPU
    model_repository/<model>/configs/cpu.pbtxt     CPU variant (tritonserver --model-config-name=cpu)
    model_repository/<model>/<version>/model.onnx
    model_repository/<model>/<version>/card.json   feature contract, threshold, severity, metrics
    model_repository/<model>/<version>/SHA256SUMS  sha256 of every other file in the version

Loading a version verifies its checksums first: a tampered file raises IntegrityError. The
configs are :mod:`scorer.inference.triton_config`'s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

from scorer.errors import IntegrityError, ModelError
from scorer.supply import signing

CHECKSUMS = "SHA256SUMS"
CARD = "card.json"
MODEL_FILE = "model.onnx"


class ModelCard(msgspec.Struct, kw_only=True):
    """What the scorer must know about a model to serve it, and what a reader wants to know."""

    name: str
    kind: str
    version: str
    feature_names: list[str]
    threshold: float
    # The feature-set version the model was trained on (scorer.features.FEATURE_SETS); the
    # scorer computes exactly that one for it. Empty: v1, the definition before versions.
    feature_set: str = ""
    # Severity (OCSF severity name) -> lowest calibrated score that earns it, highest first.
    severity_cutoffs: dict[str, float] = {}
    description: str = ""
    learner: str = ""
    trained_on: list[str] = []
    attribution: list[str] = []
    metrics: dict[str, float] = {}
    created: str = ""
    # Per-feature contribution weights for explanations: the alert names the features
    # whose standardized value times weight pushed the score up most.
    explain_weights: list[float] = []
    explain_center: list[float] = []
    explain_scale: list[float] = []


class ModelVersion(msgspec.Struct, frozen=True):
    name: str
    version: str
    path: Path
    card: ModelCard

    @property
    def onnx_path(self) -> Path:
        return self.path / MODEL_FILE


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(version_dir: Path) -> None:
    lines = [
        f"{sha256_file(p)}  {p.name}\n"
        for p in sorted(version_dir.iterdir())
        if p.is_file() and p.name != CHECKSUMS
    ]
    (version_dir / CHECKSUMS).write_text("".join(lines))


def listed_checksums(version_dir: Path) -> dict[str, str]:
    """File name -> sha256 as the version's SHA256SUMS records them."""
    listed: dict[str, str] = {}
    for line in (version_dir / CHECKSUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name.strip()] = digest.strip()
    return listed


def verify_checksums(version_dir: Path) -> None:
    """Raise IntegrityError unless every file listed matches and the model file is listed,
    and, when trusted keys are configured, SHA256SUMS is signed by one (scorer.supply.signing)."""
    sums = version_dir / CHECKSUMS
    if not sums.is_file():
        raise IntegrityError(f"{version_dir}: no {CHECKSUMS}; refusing an unverified model")
    # With trusted keys configured, SHA256SUMS itself must be signed by one of them: checksums
    # alone do not stop someone who rewrites a model and its SHA256SUMS together.
    signing.check(version_dir)
    listed = listed_checksums(version_dir)
    if MODEL_FILE not in listed:
        raise IntegrityError(f"{version_dir}: {CHECKSUMS} does not cover {MODEL_FILE}")
    for name, digest in listed.items():
        path = version_dir / name
        if not path.is_file():
            raise IntegrityError(f"{path}: listed in {CHECKSUMS} but missing")
        actual = sha256_file(path)
        if actual != digest:
            raise IntegrityError(
                f"{path}: sha256 {actual[:16]}... does not match recorded {digest[:16]}..."
            )


def list_versions(repo: Path, name: str) -> list[str]:
    model_dir = repo / name
    if not model_dir.is_dir():
        return []
    versions = [p.name for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(versions, key=int)


def load_version(repo: Path, name: str, version: str = "", *, verify: bool = True) -> ModelVersion:
    """The given version (or the highest) of ``name``, checksums verified."""
    versions = list_versions(repo, name)
    if not versions:
        raise ModelError(f"model {name!r} has no versions under {repo}")
    chosen = version or versions[-1]
    if chosen not in versions:
        raise ModelError(f"model {name!r} has no version {chosen!r} (have {versions})")
    path = repo / name / chosen
    if verify:
        verify_checksums(path)
    try:
        card = msgspec.json.decode((path / CARD).read_bytes(), type=ModelCard)
    except (OSError, msgspec.DecodeError) as exc:
        raise ModelError(f"{path / CARD}: {exc}") from None
    return ModelVersion(name, chosen, path, card)


def publish_version(
    repo: Path, card: ModelCard, onnx_bytes: bytes, *, extra_files: dict[str, bytes] | None = None,
    configs: bool = True,
) -> ModelVersion:
    """Write a new version (model, card, extras, checksums) and, unless ``configs`` is
    False, the model's configs (which every version of the model shares)."""
    model_dir = repo / card.name
    version_dir = model_dir / card.version
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / MODEL_FILE).write_bytes(onnx_bytes)
    (version_dir / CARD).write_bytes(msgspec.json.format(msgspec.json.encode(card)) + b"\n")
    for fname, data in (extra_files or {}).items():
        (version_dir / fname).write_bytes(data)
    write_checksums(version_dir)
    if not configs:
        return ModelVersion(card.name, card.version, version_dir, card)
    # Here, not at import: tritonclient's gRPC stubs and protobuf's text format (~70 ms) are
    # for packaging a version, not for every process that reads a repository (a scorer's start).
    from scorer.inference.triton_config import write_onnx_configs

    write_onnx_configs(model_dir, card.name, len(card.feature_names))
    return ModelVersion(card.name, card.version, version_dir, card)
