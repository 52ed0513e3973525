"""From the current desired state of a kind to the next one: deploy --shadow, promote, rollback.

Pure functions (no Kafka) so the rules are tested on their own:

- deploy --shadow V: production unchanged, V scored beside it.
- promote [V]: V (default: the shadow) becomes production; the old production is kept as
  ``previous``; no shadow.
- rollback [V]: ``previous`` (or V) becomes production again; what was production becomes
  ``previous``, so a rollback can itself be undone by another rollback.
"""

from __future__ import annotations

import msgspec

from scorer.errors import ModelError
from scorer.lifecycle.control import DesiredState, ServingStatus, now_iso


class Issue(msgspec.Struct, frozen=True):
    """Who asks for a change of which kind, and why."""

    kind: str
    model: str
    issued_by: str
    reason: str
    issued_ms: int


def current_production(
    desired: DesiredState | None, statuses: list[ServingStatus], configured: str
) -> tuple[str, str]:
    """The production version of a kind and where that answer came from.

    The control topic wins; without a record there, the most recent report of a running
    scorer; without one, the configured version (``SCORER_INFERENCE__VERSIONS``).
    """
    if desired is not None:
        return desired.production, f"{desired.production} per the control topic"
    if statuses:
        latest = max(statuses, key=lambda s: s.at)
        return latest.production, f"{latest.production} as reported by {latest.process} at {latest.at}"
    if configured:
        return configured, f"{configured}, the configured version"
    raise ModelError(
        "cannot tell the production version: no control record, no scorer status and no "
        "configured version (pass --production VERSION)"
    )


def _state(issue: Issue, desired: DesiredState | None, production: str, shadow: str | None,
           previous: str | None, action: str) -> DesiredState:
    return DesiredState(
        kind=issue.kind, model=desired.model if desired else issue.model, production=production,
        shadow=shadow, previous=previous, action=action, issued_by=issue.issued_by,
        reason=issue.reason, issued_at=now_iso(), issued_ms=issue.issued_ms,
    )


def _not_production(issue: Issue, version: str, production: str) -> None:
    if version == production:
        raise ModelError(f"{issue.model} version {version} is already in production")


def deploy_shadow(issue: Issue, desired: DesiredState | None, production: str, version: str) -> DesiredState:
    _not_production(issue, version, production)
    return _state(issue, desired, production, version, desired.previous if desired else None, "deploy-shadow")


def promote(issue: Issue, desired: DesiredState | None, production: str, version: str | None = None) -> DesiredState:
    target = version or (desired.shadow if desired else None)
    return _replace_production(issue, desired, production, target, "promote",
                               "no shadow version to promote (deploy one with --shadow, or name --version)")


def rollback(issue: Issue, desired: DesiredState | None, production: str, version: str | None = None) -> DesiredState:
    target = version or (desired.previous if desired else None)
    return _replace_production(issue, desired, production, target, "rollback",
                               "nothing to roll back to (no previous production version; name --version)")


def _replace_production(issue: Issue, desired: DesiredState | None, production: str, target: str | None,
                        action: str, none_left: str) -> DesiredState:
    """``target`` in production, no shadow, the current production kept as ``previous``."""
    if not target:
        raise ModelError(f"{issue.kind}: {none_left}")
    _not_production(issue, target, production)
    return _state(issue, desired, target, None, production, action)


def clear_shadow(issue: Issue, desired: DesiredState | None, production: str) -> DesiredState:
    return _state(issue, desired, production, None, desired.previous if desired else None, "clear-shadow")
