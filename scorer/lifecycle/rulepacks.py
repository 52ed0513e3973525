"""Rule packs in the lifecycle: what a pack must pass before a batch depends on it, and how
a pack is fitted into the EDR runtime.

Rule packs follow the same control plane as models (``scorer.lifecycle.control``), under
the control key ``rules/<pack>`` (models use the event kind). The checks here run in the
CLI before a state is written, and again in every scorer before it installs the state
(the scorer never relies on the CLI), each refusing with a reason that is a metric label:

- ``missing``: no such pack version directory;
- ``integrity``: a file does not match ``SHA256SUMS`` (or SHA256SUMS is missing);
- ``load``: the manifest or IR does not read, or names another pack or version than its
  directory (each problem with its file), or its per-host risk policy
  (``pack.json``'s ``risk``) is malformed, with the field and why;
- ``golden``: the pack's own golden events no longer fire the rules they recorded.

Recompiling the Sigma sources (pySigma, ~20 s) is ``scorer rules validate``'s: the scorer
loads the compiled IR only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import msgspec

from scorer.errors import IntegrityError, ModelError
from scorer.features.base import FeatureSet
from scorer.features.edr_v3 import EdrV3Features
from scorer.inference.repository import ModelCard
from scorer.lifecycle.contract import trained_rule_pack
from scorer.lifecycle.loader import Refused
from scorer.pipeline.batch import KindRuntime
from scorer.rules.annotate import RuleStage
from scorer.rules.pack import IR, MANIFEST
from scorer.rules.validate import golden_problems

PREFIX = "rules/"
SHOWN_PROBLEMS = 5


def control_key(pack: str) -> str:
    """The control-topic key (and status-topic suffix) of a rule pack."""
    return PREFIX + pack


def pack_of(key: str) -> str | None:
    """The pack a control key names; None for a model's key (an event kind)."""
    return key.removeprefix(PREFIX) if key.startswith(PREFIX) else None


def pack_checksum(path: Path) -> str:
    """sha256 over the pack's files (relative names and bytes), in name order: the checksum a
    model card names for the pack it was trained with (models/edr_rules.py writes it)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def check_pack(repository: Path, pack: str, version: str) -> RuleStage:
    """Pack ``repository/pack/version`` loaded and passing its golden set, or :class:`Refused`.
    Blocking file and CPU work (~1 s for the shipped pack): callers in the service run it in a
    thread."""
    directory = repository / pack / version
    if not (directory / MANIFEST).is_file():
        raise Refused("missing", version, f"{directory}: no rule pack version there ({MANIFEST} missing)")
    try:
        stage = RuleStage.load(repository, pack, version)
    except IntegrityError as exc:
        raise Refused("integrity", version, str(exc)) from None
    except (ModelError, ValueError, TypeError, KeyError, OSError) as exc:
        raise Refused("load", version, f"{directory}: {exc}") from None
    problems = _manifest_problems(directory, pack, version)
    problems += golden_problems(directory, stage.engine)
    if problems:
        reason = "load" if problems[0].startswith(MANIFEST) else "golden"
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
        raise Refused(reason, version, f"{directory}: " + "; ".join(problems[:SHOWN_PROBLEMS]) + more)
    stage.features  # noqa: B018 - built here, off the hot path, not at the first shadow batch
    return stage


def _manifest_problems(directory: Path, pack: str, version: str) -> list[str]:
    manifest = msgspec.json.decode((directory / MANIFEST).read_bytes())
    problems = []
    if str(manifest.get("name")) != pack:
        problems.append(f"{MANIFEST}: names pack {manifest.get('name')!r}, its directory is {pack!r}")
    if str(manifest.get("version")) != version:
        problems.append(f"{MANIFEST}: names version {manifest.get('version')!r}, its directory is {version!r}")
    return problems


class PackIdentity(NamedTuple):
    checksum: str  # pack_checksum: how a model card names the pack it was trained with
    features: str  # sha256 of what feature set v3 reads of a pack: the IR, each rule's id, level, kind, tactics


def identity(directory: Path) -> PackIdentity:
    manifest = msgspec.json.decode((directory / MANIFEST).read_bytes())
    digest = hashlib.sha256((directory / IR).read_bytes())
    read = [[r.get("id"), r.get("level"), r.get("kind"), r.get("tactics")] for r in manifest.get("rules", [])]
    digest.update(msgspec.json.encode(read))
    return PackIdentity(pack_checksum(directory), digest.hexdigest())


def trained_identity(repository: Path, card: ModelCard) -> PackIdentity | None:
    """The identity of the pack ``card`` names, when ``repository`` holds it unchanged."""
    trained = trained_rule_pack(card)
    directory = repository / trained.pack / trained.version if trained is not None else None
    if trained is None or directory is None or not (directory / MANIFEST).is_file():
        return None
    found = identity(directory)
    return found if found.checksum == trained.sha256 else None


def untrained_warning(card: ModelCard, pack: str, version: str, served: PackIdentity,
                      trained_as: PackIdentity | None) -> str | None:
    """Why the model of ``card`` reads hits from a pack (``served``) other than the one it was
    trained with (``trained_as``, when at hand), or None: the trained pack itself, a pack
    giving the same features (say, one that only changes which rules alert on their own),
    or a model that reads no rule hits."""
    trained = trained_rule_pack(card)
    if trained is None or served.checksum == trained.sha256:
        return None
    if trained_as is not None and trained_as.features == served.features:
        return None
    return (f"{card.name}:{card.version} was trained on rule pack {trained.pack}:{trained.version} "
            f"(sha256 {trained.sha256[:12]}..), {pack}:{version} is sha256 {served.checksum[:12]}.. and "
            "gives other rule-hit features: compare on the rule shadow, retrain on this pack")


def features_for(features: FeatureSet, stage: RuleStage) -> FeatureSet:
    """``features`` reading hits with ``stage``'s rule metadata. Feature set v3's per-entity
    state lives in its v1 base, which the new set shares: a pack switch keeps it, as a model
    switch does. Other feature sets read no rule metadata."""
    if isinstance(features, EdrV3Features):
        return EdrV3Features(features.base, stage.by_id)
    return features


def with_rules(runtime: KindRuntime, stage: RuleStage, features: FeatureSet) -> KindRuntime:
    """``runtime`` (its model, card and decider) with another pack and the features over it."""
    return msgspec.structs.replace(runtime, rules=stage, features=features)
