"""Validate OCSF events against the official schema itself, not a library's model of it.

The schema is the OCSF schema repository compiled by ocsf-lib into one JSON document per
release (``../shared/ocsf/ocsf-schema-X.Y.Z.json``, the sibling of the data folder, so tests
that call this are marked ``data``). Model libraries accept keys they do not know, so a
finding with an entity in the wrong place passes them; a strict consumer (a security data
lake, a SIEM's OCSF ingest) rejects it. This checks, through every object and array:

- every key is an attribute of its class or object; attributes a profile contributes only
  when ``metadata.profiles`` declares that profile (their requirement counts only then);
- required attributes are present;
- values have their type (the type chain down to string/integer/long/float/boolean/json,
  with each type's regex, range, length and values), objects are objects, arrays arrays;
- enum values are defined, and an enum's sibling (``severity`` of ``severity_id``) is its
  caption unless the value is 99 (Other, where the sibling is the source's own word);
- ``class_uid`` is a class, ``category_uid`` its category, ``type_uid`` is
  ``class_uid * 100 + activity_id``; the declared profiles exist.

Recommended attributes that are missing and deprecated attributes are not problems: the
schema allows both. Object constraints (``at_least_one``, ``just_one``) are not checked:
the compiled documents do not hold them faithfully (ocsf-lib's ``extends`` merge lets a
parent's constraint replace the object's own, so ``network_endpoint`` there demands a name
or uid while its source, ``_endpoint.json``, is satisfied by an ``ip``).
"""

from __future__ import annotations

import collections
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from scorer.config import data_dir
from tests.support import markers

SCHEMA_DIR = data_dir().parent / "ocsf"
_OTHER = 99  # enum value whose sibling holds the source's own caption
_INT_BITS = {"integer_t": 31, "long_t": 63}


def schema_path(version: str) -> Path:
    """Where the compiled schema of one OCSF release is."""
    return SCHEMA_DIR / f"ocsf-schema-{version}.json"


def schema(version: str) -> dict[str, Any] | None:
    """The compiled schema of one OCSF release (None: the project has none for it)."""
    markers.require("data", f"OCSF schema {version} read")
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"compiled OCSF schemas not found at {SCHEMA_DIR} (set SCORER_DATA_DIR)")
    return _load(version)


@functools.cache
def _load(version: str) -> dict[str, Any] | None:
    path = schema_path(version)
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    doc["_class_by_uid"] = {c["uid"]: c for c in doc["classes"].values()}
    return doc


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _listed(enum: Mapping[str, Any]) -> str:
    numeric = all(k.lstrip("-").isdigit() for k in enum)
    return ", ".join(sorted(enum, key=int) if numeric else sorted(enum))


def _declared(profile: str, profiles: frozenset[str]) -> bool:
    # Extension profiles are declared by their full name ("linux/linux_users") while their
    # attributes name them without the extension.
    return profile in profiles or any(p.rsplit("/", 1)[-1] == profile for p in profiles)


class _Walk:
    """One event's walk: the schema, the declared profiles and the problems found."""

    def __init__(self, doc: dict[str, Any], profiles: frozenset[str]) -> None:
        self.doc = doc
        self.profiles = profiles
        self.out: list[str] = []

    def problem(self, path: str, what: str) -> None:
        self.out.append(f"{path or '<event>'}: {what}")

    def object(self, spec: Mapping[str, Any], value: Mapping[str, Any], path: str, owner: str) -> None:
        attrs: Mapping[str, Any] = spec["attributes"]
        prefix = f"{path}." if path else ""
        for key, item in value.items():
            attr = attrs.get(key)
            if attr is None:
                self.problem(prefix + key, f"not an attribute of {owner}")
            elif attr["profile"] and not _declared(attr["profile"], self.profiles):
                self.problem(prefix + key, f"attribute of the {attr['profile']!r} profile, "
                                           "which metadata.profiles does not declare")
            else:
                self.value(attr, item, prefix + key)
        for key, attr in attrs.items():
            if attr["requirement"] == "required" and key not in value \
                    and (not attr["profile"] or _declared(attr["profile"], self.profiles)):
                self.problem(prefix + key, f"required by {owner}, missing")
            sibling = attr.get("sibling")
            if attr.get("enum") and sibling and key in value and sibling in value:
                entry = attr["enum"].get(str(value[key]))
                if entry is not None and value[key] != _OTHER and value[sibling] != entry["caption"]:
                    self.problem(prefix + sibling, f"{_short(value[sibling])} is not the caption "
                                                   f"{entry['caption']!r} of {key} {value[key]}")

    def value(self, attr: Mapping[str, Any], value: Any, path: str) -> None:
        if attr["is_array"]:
            if not isinstance(value, list):
                self.problem(path, f"expected an array of {attr['type']}, got {type(value).__name__}")
                return
            for item in value:
                self.single(attr, item, f"{path}[]")
        elif isinstance(value, list):
            self.problem(path, f"expected one {attr['type']}, got an array")
        else:
            self.single(attr, value, path)

    def single(self, attr: Mapping[str, Any], value: Any, path: str) -> None:
        kind = attr["type"]
        if kind in self.doc["objects"] or kind == "object":
            if not isinstance(value, Mapping):
                self.problem(path, f"expected object {kind}, got {type(value).__name__}")
            elif kind != "object":  # "object" is free-form (unmapped)
                self.object(self.doc["objects"][kind], value, path, f"object {kind}")
            return
        if (why := self.typed(kind, value)) is not None:
            self.problem(path, why)
            return
        enum = attr.get("enum")
        if enum and str(value) not in enum:
            self.problem(path, f"{_short(value)} is not a value of its enum ({_listed(enum)})")

    def typed(self, kind: str, value: Any) -> str | None:
        """Why ``value`` is not of type ``kind`` (None: it is), down the type chain."""
        spec = self.doc["types"].get(kind)
        if spec is None:
            return f"unknown type {kind}"
        base = spec.get("type")
        if base is None:
            return _base_problem(kind, value, spec)
        if (why := self.typed(base, value)) is not None:
            return why.replace(f"expected {base}", f"expected {kind}", 1)
        if isinstance(value, str):
            if spec.get("max_len") and len(value) > spec["max_len"]:
                return f"{kind} longer than {spec['max_len']}"
            if spec.get("regex") and not _regex(spec["regex"]).search(value):
                return f"{_short(value)} is not a valid {kind}"
        if spec.get("range") and not spec["range"][0] <= value <= spec["range"][1]:
            return f"{value} outside {kind}'s range {spec['range']}"
        if spec.get("values") is not None and value not in spec["values"]:
            return f"{_short(value)} is not one of {kind}'s values"
        return None


def _base_problem(kind: str, value: Any, spec: Mapping[str, Any]) -> str | None:
    if kind == "json_t":
        return None
    got = "null" if value is None else type(value).__name__
    if kind == "string_t":
        ok = isinstance(value, str)
        if ok and spec.get("max_len") and len(value) > spec["max_len"]:
            return f"string longer than {spec['max_len']}"
    elif kind in _INT_BITS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not -(1 << _INT_BITS[kind]) <= value < 1 << _INT_BITS[kind]:
            return f"{_short(value)} does not fit {kind}"
    elif kind == "float_t":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "boolean_t":
        ok = isinstance(value, bool)
    else:
        return f"unknown base type {kind}"
    return None if ok else f"expected {kind}, got {got}"


def problems(event: Mapping[str, Any], version: str | None = None) -> list[str]:
    """What the compiled schema of ``version`` (default: the event's ``metadata.version``)
    finds wrong in ``event``; empty when it is valid. Paths name array items ``[]``."""
    metadata = event.get("metadata")
    if version is None:
        version = metadata.get("version") if isinstance(metadata, Mapping) else None
        if not isinstance(version, str):
            return ["metadata.version: missing, so no schema release to check against"]
    doc = schema(version)
    if doc is None:
        return [f"metadata.version: no compiled OCSF schema for {version!r} in {SCHEMA_DIR}"]
    cls = doc["_class_by_uid"].get(event.get("class_uid"))
    if cls is None:
        return [f"class_uid: {_short(event.get('class_uid'))} is not a class of OCSF {version}"]
    declared = metadata.get("profiles", []) if isinstance(metadata, Mapping) else []
    profiles = frozenset(p for p in declared if isinstance(p, str)) if isinstance(declared, list) else frozenset()
    walk = _Walk(doc, profiles)
    for p in sorted(profiles):
        if p not in doc["profiles"]:
            walk.problem("metadata.profiles", f"{p!r} is not a profile of OCSF {version}")
    walk.object(cls, event, "", f"class {cls['name']}")
    category = doc["categories"].get(cls["category"], {}).get("uid")
    if event.get("category_uid") != category:
        walk.problem("category_uid",
                     f"{_short(event.get('category_uid'))}, but {cls['name']} is in category {category}")
    activity = event.get("activity_id")
    if isinstance(activity, int) and event.get("type_uid") != cls["uid"] * 100 + activity:
        walk.problem("type_uid", f"{_short(event.get('type_uid'))} is not class_uid * 100 + activity_id "
                                 f"({cls['uid'] * 100 + activity})")
    return walk.out


def _decoded(event: Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    if isinstance(event, bytes | str):
        doc = json.loads(event)
        assert isinstance(doc, dict), f"an OCSF event is a JSON object, got {type(doc).__name__}"
        return doc
    return event


def assert_valid(events: Iterable[Mapping[str, Any] | bytes | str], version: str | None = None) -> None:
    """Fail listing every problem (with how many events have it) when any event is invalid.

    Events may be dicts or their JSON. An empty ``events`` fails too: a check over nothing
    would pass whatever the producer emits."""
    counts: collections.Counter[str] = collections.Counter()
    total = bad = 0
    for event in events:
        total += 1
        found = set(problems(_decoded(event), version))
        bad += bool(found)
        counts.update(found)
    assert total, "no OCSF events to validate"
    if counts:
        lines = "\n".join(f"  {n} x {what}" for what, n in counts.most_common())
        raise AssertionError(f"{bad} of {total} OCSF events are invalid against the schema:\n{lines}")
