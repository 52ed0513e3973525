"""Sigma detection rules on EDR events: compiled packs, evaluated over whole micro-batches.

``compile_rules`` (pySigma, at package/validate time) turns SigmaHQ YAML into an IR of
deduplicated atoms and per-rule condition trees; ``RuleEngine.load`` reads a pack of that IR
(checksums verified, no pySigma) and ``RuleEngine.evaluate`` runs every rule on every event
of a batch, column by column. See docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scorer.rules.engine import RuleEngine
from scorer.rules.model import CompiledRules, CompileError, RuleFailure, RuleHits, RuleMeta


def compile_rules(source_root: Path, files: Iterable[Path] | None = None) -> tuple[CompiledRules, list[CompileError]]:
    """Sigma rules under ``source_root`` (all ``*.yml``, or ``files``) compiled to the IR.

    Imports pySigma: for packaging and validation, not for the service's start."""
    from scorer.rules.compile import compile_rules as compile_all

    return compile_all(source_root, files)


__all__ = ["CompileError", "CompiledRules", "RuleEngine", "RuleFailure", "RuleHits", "RuleMeta", "compile_rules"]
