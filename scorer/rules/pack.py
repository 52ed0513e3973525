"""A rule pack on disk: one directory, every file checksummed.

======================  =============================================================
``pack.json``           manifest: name, version, source commit, licence and attribution,
                        rule counts by level and kind, every rule (RuleMeta + sha256 of
                        its YAML), skipped rules with their reasons, file names; the
                        tuning and the per-host risk policy (``risk``,
                        :mod:`scorer.rules.risk`) when the pack has them
``ir.json.gz``          the compiled IR (atoms + condition trees, :mod:`scorer.rules.model`)
``sources.jsonl.gz``    every packed rule's YAML: ``{file, sha256, yaml}`` (recompiled by
                        ``scorer rules validate``; the authors' attribution travels)
``golden.jsonl.gz``     events and the rule ids each must fire: ``{event, rules}``
``LICENSE``             the Detection Rule License 1.1 of the rules
``SHA256SUMS``          ``sha256  name`` of every file above
======================  =============================================================

Gzip members are written with mtime 0, so the same rules give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from scorer.errors import IntegrityError, ModelError
from scorer.rules.model import (
    Atom,
    CompiledRules,
    CompileError,
    RuleMeta,
    RuleSource,
    Variant,
    atoms_from_json,
    conditions_from_json,
)
from scorer.rules.risk import MANIFEST_KEY as RISK_KEY
from scorer.rules.risk import RiskPolicy, manifest_risk
from scorer.supply import signing

MANIFEST, IR, SOURCES, GOLDEN, LICENSE, SUMS = (
    "pack.json", "ir.json.gz", "sources.jsonl.gz", "golden.jsonl.gz", "LICENSE", "SHA256SUMS")
ATTRIBUTION = (
    "Detection rules from the SigmaHQ project (https://github.com/SigmaHQ/sigma), by SigmaHQ and "
    "each rule's author (named in the rule and in this manifest), under the Detection Rule License "
    "(DRL) 1.1 (LICENSE in this directory). The rules are compiled to this pack's IR unchanged in "
    "meaning; their sources are in sources.jsonl.gz.")
# The licence text (SigmaHQ/sigma LICENSE.Detection.Rules.md); the rules folder's own LICENSE
# only points to it, and is appended after it in the pack's LICENSE.
DRL_1_1 = """# Detection Rule License (DRL) 1.1

Permission is hereby granted, free of charge, to any person obtaining a copy of this rule set and associated \
documentation files (the "Rules"), to deal in the Rules without restriction, including without limitation the \
rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Rules, and to \
permit persons to whom the Rules are furnished to do so, subject to the following conditions:

If you share the Rules (including in modified form), you must retain the following if it is supplied within the Rules:

1. identification of the authors(s) ("author" field) of the Rule and any others designated to receive \
attribution, in any reasonable manner requested by the Rule author (including by pseudonym if designated).

2. a URI or hyperlink to the Rule set or explicit Rule to the extent reasonably practicable

3. indicate the Rules are licensed under this Detection Rule License, and include the text of, or the URI or \
hyperlink to, this Detection Rule License to the extent reasonably practicable

If you use the Rules (including in modified form) on data, messages based on matches with the Rules must retain \
the following if it is supplied within the Rules:

1. identification of the authors(s) ("author" field) of the Rule and any others designated to receive \
attribution, in any reasonable manner requested by the Rule author (including by pseudonym if designated).

THE RULES ARE PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO \
THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE \
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF \
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE RULES OR THE USE OR OTHER DEALINGS \
IN THE RULES.
"""


@dataclass
class Pack:
    """A pack read back (checksums verified)."""

    directory: Path
    manifest: dict[str, Any]
    rules: list[RuleMeta]
    atoms: list[Atom]
    conditions: list[list[Variant]]
    skipped: list[CompileError] = field(default_factory=list)
    risk: RiskPolicy | None = None  # the per-host risk policy; None: the pack raises no risk alerts


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_pack(out: Path, compiled: CompiledRules, skipped: list[CompileError], *, name: str, version: str,
               source_commit: str, license_text: str, golden: list[dict[str, Any]],
               tuning: list[dict[str, str]] | None = None,
               risk: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the pack to ``out`` (created; files replaced) and return its manifest."""
    out.mkdir(parents=True, exist_ok=True)
    sha_of = {s.file: s.sha256 for s in compiled.sources}
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "format": 1,
        "source_commit": source_commit,
        "licence": "DRL-1.1",
        "attribution": ATTRIBUTION,
        "rule_count": len(compiled.rules),
        "atom_count": len(compiled.atoms),
        "by_level": dict(sorted(Counter(r.level for r in compiled.rules).items())),
        "by_kind": dict(sorted(Counter(r.kind for r in compiled.rules).items())),
        "files": {"ir": IR, "sources": SOURCES, "golden": GOLDEN, "license": LICENSE},
        "rules": [{**r.to_json(), "sha256": sha_of.get(r.file, "")} for r in compiled.rules],
        "skipped": [{"file": e.file, "rule_id": e.rule_id, "reason": e.reason} for e in skipped],
        "golden_events": len(golden),
    }
    if tuning:  # (an untuned pack's manifest stays as it was)
        manifest["tuning"] = tuning
    if risk is not None:  # (and so does one without a risk policy)
        manifest[RISK_KEY] = risk
    files = {
        IR: _gz(json.dumps(compiled.ir_json(), separators=(",", ":")).encode()),
        SOURCES: _gz("".join(json.dumps({"file": s.file, "sha256": s.sha256, "yaml": s.yaml}) + "\n"
                             for s in compiled.sources).encode()),
        GOLDEN: _gz("".join(json.dumps(g, sort_keys=True) + "\n" for g in golden).encode()),
        LICENSE: f"{DRL_1_1}\n---\n\n{license_text}".encode(),
        MANIFEST: _manifest_text(manifest).encode(),
    }
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    (out / SUMS).write_text("".join(f"{_sha(data)}  {fname}\n" for fname, data in sorted(files.items())))
    signing.sign_if_configured(out)
    return manifest


def _manifest_text(manifest: dict[str, Any]) -> str:
    """Indented JSON, but one line per rule and per skipped rule (diffable, compact)."""
    lines = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def verify(directory: Path) -> list[str]:
    """Checksum problems of the pack in ``directory`` (empty: every file as recorded)."""
    sums = directory / SUMS
    if not sums.is_file():
        return [f"{sums}: missing"]
    problems: list[str] = []
    listed: set[str] = set()
    for line in sums.read_text().splitlines():
        digest, _, fname = line.partition("  ")
        listed.add(fname)
        path = directory / fname
        if "/" in fname or not path.is_file():
            problems.append(f"{fname}: listed in {SUMS} but missing")
        elif _sha(path.read_bytes()) != digest:
            problems.append(f"{fname}: sha256 differs from {SUMS} (tampered or corrupt)")
    for required in (MANIFEST, IR, SOURCES, GOLDEN, LICENSE):
        if required not in listed:
            problems.append(f"{required}: not in {SUMS}")
    try:  # trusted keys configured: SHA256SUMS must be signed by one of them
        signing.check(directory)
    except IntegrityError as exc:
        problems.append(str(exc))
    return problems


def read_pack(directory: Path) -> Pack:
    """The pack in ``directory``; :class:`IntegrityError` if a checksum fails."""
    problems = verify(directory)
    if problems:
        raise IntegrityError(f"rule pack {directory} refused: " + "; ".join(problems))
    try:
        # msgspec: the same objects as json.loads, the 1.7 MB manifest ~4x sooner
        manifest = msgspec.json.decode((directory / MANIFEST).read_bytes())
        ir = msgspec.json.decode(gzip.decompress((directory / IR).read_bytes()))
        rules = [RuleMeta.from_json(r) for r in manifest["rules"]]
        atoms = atoms_from_json(ir["atoms"])
        ids, conditions = conditions_from_json(ir["rules"])
        skipped = [CompileError(s["file"], s["rule_id"], s["reason"]) for s in manifest.get("skipped", [])]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ModelError(f"rule pack {directory}: malformed: {type(exc).__name__}: {exc}") from None
    try:
        risk = manifest_risk(manifest)
    except ValueError as exc:  # says which field and why
        raise ModelError(f"rule pack {directory}: {exc}") from None
    if ids != [r.id for r in rules]:
        raise ModelError(f"rule pack {directory}: IR rules differ from the manifest's")
    return Pack(directory, manifest, rules, atoms, conditions, skipped, risk)


def read_sources(directory: Path) -> list[RuleSource]:
    data = gzip.decompress((directory / SOURCES).read_bytes()).decode()
    return [RuleSource(**json.loads(line)) for line in data.splitlines() if line]


def read_golden(directory: Path) -> list[dict[str, Any]]:
    data = gzip.decompress((directory / GOLDEN).read_bytes()).decode()
    return [json.loads(line) for line in data.splitlines() if line]
