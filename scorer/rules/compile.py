"""Sigma YAML -> rule IR, with pySigma and Sigma's own Windows processing pipelines.

Each rule is parsed by pySigma and run through a pipeline that turns its logsource into
conditions on the event (``pysigma-pipeline-sysmon``: category -> Sysmon ``EventID``;
``pysigma-pipeline-windows``: service -> ``Channel``, PowerShell categories -> EventID).
Rules of the categories the Windows audit pipeline maps onto Security events
(``process_creation`` -> 4688, ``registry_*`` -> 4657, with its field mappings) are compiled
a second time through that pipeline; the two are OR-ed (see :mod:`scorer.rules.model`).

Only this module (and :mod:`scorer.rules.lower`) imports pySigma: it runs when a pack is
built or validated, never when the service starts.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_pipeline
from sigma.pipelines.windows.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    ChangeLogsourceTransformation,
    FieldMappingTransformation,
)
from sigma.rule import SigmaRule

from scorer.rules.lower import Unsupported, lower
from scorer.rules.model import (
    RULE_KINDS,
    Atom,
    CompiledRules,
    CompileError,
    RuleMeta,
    RuleSource,
    Tree,
    tactics_of,
    techniques_of,
)

_AUDIT_CATEGORIES = frozenset({"process_creation", "registry_event", "registry_set", "registry_add"})
_LOGSOURCE_FIELDS = frozenset({"EventID", "Channel"})
# libyaml's parser under PyYAML's safe resolver and constructors, where PyYAML was built with it.
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Services SigmaHQ's logsource definitions name that the Windows pipeline does not map (yet):
# their channel, as in Sigma's own documentation of these log sources.
EXTRA_CHANNELS = {
    "iis-configuration": "Microsoft-IIS-Configuration/Operational",
    "smbserver-connectivity": "Microsoft-Windows-SMBServer/Connectivity",
    "smbclient-connectivity": "Microsoft-Windows-SmbClient/Connectivity",
    "ldap": "Microsoft-Windows-LDAP-Client/Debug",
}


def compile_rules(source_root: Path, files: Iterable[Path] | None = None) -> tuple[CompiledRules, list[CompileError]]:
    """Every rule under ``source_root`` (or ``files``, under it) compiled; the failures apart."""
    root = source_root.resolve()
    paths = sorted(root.rglob("*.yml")) if files is None else sorted(
        (p if p.is_absolute() else root / p).resolve() for p in files)
    out = CompiledRules()
    errors: list[CompileError] = []
    interned: dict[tuple[str, str, str, bool], int] = {}
    pipelines = _pipelines()
    for path in paths:
        rel = path.relative_to(root).as_posix()
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        try:
            meta, variants = compile_one(text, rel, pipelines)
        except Unsupported as exc:
            errors.append(CompileError(rel, _rule_id(text), str(exc)))
            continue
        out.rules.append(meta)
        out.conditions.append([(_intern(ls, interned, out.atoms), _intern(det, interned, out.atoms))
                               for ls, det in variants])
        out.sources.append(RuleSource(rel, hashlib.sha256(raw).hexdigest(), text))
    return out, errors


def _pipelines() -> tuple[ProcessingPipeline, ProcessingPipeline]:
    extra = ProcessingPipeline(name="scorer: more Windows channels", priority=10, items=[
        ProcessingItem(identifier=f"scorer_windows_{service}", rule_conditions=[
            LogsourceCondition(product="windows", service=service)],
            transformation=AddConditionTransformation({"Channel": channel}))
        for service, channel in EXTRA_CHANNELS.items()])
    return (sysmon_pipeline() + _file_access_audit() + windows_logsource_pipeline() + extra,
            windows_audit_pipeline() + windows_logsource_pipeline() + extra)


def _file_access_audit() -> ProcessingPipeline:
    """``file_access`` (kernel file ETW, which neither Sysmon nor Sigma's pipelines map) onto
    Security 4663, "an attempt was made to access an object", logged for files under object
    access auditing: ``FileName`` is its ``ObjectName``, ``Image`` its ``ProcessName``."""
    def when() -> list[RuleProcessingCondition]:
        return [LogsourceCondition(category="file_access", product="windows")]

    return ProcessingPipeline(name="scorer: file access as Security 4663", priority=10, items=[
        ProcessingItem(identifier="scorer_file_access_4663", rule_conditions=when(),
                       transformation=AddConditionTransformation({"EventID": 4663})),
        ProcessingItem(identifier="scorer_file_access_fields", rule_conditions=when(),
                       transformation=FieldMappingTransformation({"FileName": "ObjectName", "Image": "ProcessName"})),
        ProcessingItem(identifier="scorer_file_access_logsource", rule_conditions=when(),
                       transformation=ChangeLogsourceTransformation(product="windows", service="security")),
    ])


def compile_one(text: str, rel: str, pipelines: tuple[ProcessingPipeline, ProcessingPipeline] | None = None,
                ) -> tuple[RuleMeta, list[tuple[Any, Any]]]:
    """One rule's metadata and its variants ``(logsource, detection)`` with Atom leaves."""
    native, audit = pipelines or _pipelines()
    docs = load_yaml(text)
    # A pipeline rewrites the rule it is applied to, so each variant has a rule of its own;
    # pySigma may keep (and a pipeline change) parts of the dicts a rule is built from.
    rule = _parse(copy.deepcopy(docs))
    meta = _meta(rule, rel)
    ls = rule.logsource
    if ls.product != "windows":
        raise Unsupported(f"logsource {meta.logsource} is not Windows")
    both = ls.category in _AUDIT_CATEGORIES
    variants = [_variant(rule, native)]
    if both:
        with contextlib.suppress(Unsupported):  # e.g. a registry rule on a field 4657 lacks: Sysmon only
            variants.append(_variant(_parse(docs), audit))
    return meta, variants


def load_yaml(text: str) -> list[Any]:
    """The YAML documents of ``text`` as pySigma's ``SigmaCollection.from_yaml`` reads them
    (``yaml.safe_load_all``), with libyaml's parser where PyYAML has it: the same resolver and
    constructors, a fraction of the CPU time of the pure-Python parser."""
    # libyaml takes tabs where PyYAML's scanner refuses them (``key:<TAB>value``): a rule with
    # a tab is read by pySigma's own loader, so that it is refused as it always was.
    if "\t" not in text:
        with contextlib.suppress(Exception):
            return list(yaml.load_all(text, Loader=_FAST_LOADER))
    # libyaml words its errors otherwise, and the error is the reason a pack records for the
    # rule: pySigma's own loader says it (or reads what libyaml would not).
    try:
        return list(yaml.safe_load_all(text))
    except Exception as exc:  # yaml.YAMLError and friends
        raise Unsupported(f"unreadable rule: {type(exc).__name__}: {exc}") from None


def _parse(docs: list[Any]) -> SigmaRule:
    try:
        collection = SigmaCollection.from_dicts(docs)
    except SigmaError as exc:
        raise Unsupported(f"invalid Sigma rule: {exc}") from None
    except Exception as exc:  # a document that is not a mapping, and friends
        raise Unsupported(f"unreadable rule: {type(exc).__name__}: {exc}") from None
    if len(collection.rules) != 1:
        raise Unsupported(f"{len(collection.rules)} rules in one file")
    rule = collection.rules[0]
    if not isinstance(rule, SigmaRule):
        raise Unsupported(f"{type(rule).__name__} (correlation and filter rules are not evaluated)")
    if rule.errors:
        raise Unsupported(f"invalid Sigma rule: {rule.errors[0]}")
    return rule


def _variant(rule: SigmaRule, pipeline: ProcessingPipeline) -> tuple[Any, Any]:
    try:
        pipeline.apply(rule)
        service = rule.logsource.service
        if service not in windows_logsource_mapping and service not in EXTRA_CHANNELS:
            raise Unsupported(f"logsource {_logsource(rule)} has no Windows channel mapping")
        trees = [lower(cond.parsed) for cond in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise Unsupported(f"{type(exc).__name__}: {exc}") from None
    tree = trees[0] if len(trees) == 1 else ["or", *trees]
    conjuncts = tree[1:] if isinstance(tree, list) and tree[0] == "and" else [tree]
    head = [c for c in conjuncts if _is_logsource(c)]
    rest = [c for c in conjuncts if not _is_logsource(c)]
    return (_conj(head), _conj(rest))


def _is_logsource(tree: Any) -> bool:
    if isinstance(tree, Atom):
        return tree.field in _LOGSOURCE_FIELDS and tree.kind == "eq"
    return isinstance(tree, list) and tree[0] in ("and", "or") and all(_is_logsource(a) for a in tree[1:])


def _conj(items: list[Any]) -> Any:
    if not items:
        return True
    return items[0] if len(items) == 1 else ["and", *items]


def _intern(tree: Any, interned: dict[tuple[str, str, str, bool], int], atoms: list[Atom]) -> Tree:
    if isinstance(tree, Atom):
        key = tree.key()
        if key not in interned:
            interned[key] = len(atoms)
            atoms.append(tree)
        return interned[key]
    if isinstance(tree, bool):
        return tree
    return [tree[0], *(_intern(a, interned, atoms) for a in tree[1:])]


def _logsource(rule: SigmaRule) -> str:
    ls = rule.logsource
    return f"{ls.product or '*'}/{ls.category or ls.service or '*'}"


def _meta(rule: SigmaRule, rel: str) -> RuleMeta:
    tags = tuple(f"{t.namespace}.{t.name}" for t in rule.tags)
    return RuleMeta(
        id=str(rule.id or ""), title=rule.title, level=str(rule.level or "medium").lower(),
        status=str(rule.status or "").lower(), author=rule.author or "",
        date=rule.date.isoformat() if rule.date else "", file=rel, tags=tags,
        tactics=tactics_of(tags), techniques=techniques_of(tags),
        kind=RULE_KINDS.get(rel.split("/", 1)[0], "detection"), logsource=_logsource(rule))


def _rule_id(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("id:"):
            return line[3:].strip().strip("'\"")
    return ""
