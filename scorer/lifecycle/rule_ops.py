"""What ``scorer rules deploy|promote|rollback|list`` do for a rule pack, beside the model
steps of :mod:`scorer.lifecycle.ops` (which calls these for a ``rules/<pack>`` key).

The CLI runs the scorer's own checks (:func:`scorer.lifecycle.rulepacks.check_pack`) on this
machine before it writes a state, and says when the EDR model would read hits from a pack
it was not trained with; the scorers check again and never rely on it.
"""

from __future__ import annotations

from pathlib import Path

from scorer.config import Settings
from scorer.errors import ModelError
from scorer.events.structs import EventKind
from scorer.inference.repository import list_versions, load_version
from scorer.lifecycle.contract import trained_rule_pack
from scorer.lifecycle.control import DesiredState
from scorer.lifecycle.rulepacks import check_pack, identity, pack_checksum, trained_identity, untrained_warning
from scorer.rules.pack import read_pack, verify

EDR = EventKind.EDR.value


def configured_version(settings: Settings, repo: Path, pack: str) -> str:
    """The pack version a scorer starts on: the configured one, else the highest on disk."""
    found = list_versions(repo, pack)
    return settings.rules.version or (found[-1] if found else "")


def edr_card_version(settings: Settings, edr_production: str | None) -> tuple[str, str]:
    """(model name, version) of the EDR model whose training pack matters."""
    name = settings.inference.models.get(EDR, "")
    return name, edr_production or settings.inference.versions.get(EDR, "")


def accept(settings: Settings, repo: Path, state: DesiredState, current: str,
           edr_production: str | None) -> list[str]:
    """Refuse (ModelError, with file and reason) a state naming a pack version the scorers
    would refuse; return warnings: a pack the EDR model was not trained with, in production
    or (said ahead) in shadow."""
    for version in {state.production, state.shadow} - {None, current}:
        check_pack(repo, state.model, str(version))
    name, version = edr_card_version(settings, edr_production)
    candidate = state.production if state.production != current else state.shadow
    if candidate is None or not name:
        return []
    try:
        card = load_version(settings.inference.model_repository, name, version, verify=False).card
    except ModelError:
        return []  # this machine lacks the model: the scorers report the warning on their own
    served = identity(repo / state.model / candidate)
    warning = untrained_warning(card, state.model, candidate, served, trained_identity(repo, card))
    if warning is None:
        return []
    return [warning if candidate == state.production else f"once promoted: {warning}"]


def trained_with(settings: Settings, edr_production: str | None) -> tuple[str, str] | None:
    """(model:version, sha256 of the pack it was trained with), when the card names one."""
    name, version = edr_card_version(settings, edr_production)
    if not name:
        return None
    try:
        card = load_version(settings.inference.model_repository, name, version, verify=False).card
    except ModelError:
        return None
    trained = trained_rule_pack(card)
    return (f"{card.name}:{card.version}", trained.sha256) if trained else None


def version_facts(repo: Path, pack: str, version: str) -> tuple[str, str, int | None]:
    """(integrity "ok" or "REFUSED: why", pack sha256, rule count) of a version on disk."""
    directory = repo / pack / version
    problems = verify(directory)
    if problems:
        return "REFUSED: " + "; ".join(problems), "-", None
    try:
        rules = len(read_pack(directory).rules)
    except ModelError as exc:
        return f"REFUSED: {exc}", "-", None
    return "ok", pack_checksum(directory), rules
