"""The typed view of a Detection Finding: only the fields the incident digest reads.

The router decodes a finding's bytes straight into this view (:func:`decode_finding`): only
the fields the digest (:func:`scorer.incidents.entities.digest`) reads become Python objects,
the rest of the ~1.2 kB (descriptions, features, the event's other fields) is skipped by the
decoder; that and the attribute access are most of the router's CPU per finding. Where a
finding does not fit that view (a field of another JSON type than the view expects: a
hostile or broken producer), it is decoded as plain JSON and coerced to the view with the
rules the digest has always applied to such values (an object where an object belongs,
else nothing; the objects of a list), so both paths give the same digest for every input.
The leaves stay ``Any``: every leaf's type is checked where it is read.

Apart from the digest because this is about bytes and JSON types, the digest about what
the values mean; both OCSF layouts share the view (:class:`Finding` has the 1.3 top-level
objects, its ``evidences`` the 1.8 ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

import msgspec
from msgspec import UNSET


# The typed view of a finding: only what the digest reads. ``UNSET`` where the digest tells
# a missing key from a null one. gc=False: decoded trees never hold cycles.
class _Host(msgspec.Struct, gc=False):  # a device or an endpoint (which has no name)
    hostname: Any = None
    name: Any = None
    ip: Any = None


class _User(msgspec.Struct, gc=False):
    name: Any = None


class _WithUser(msgspec.Struct, gc=False):  # process, actor
    user: _User | None = None


class _Fields(msgspec.Struct, gc=False):  # a Sysmon/Wazuh event's own fields
    Initiated: Any = None  # the event's own field name
    srcip: Any = UNSET


class _Data(msgspec.Struct, gc=False):  # the scored event
    host: Any = None
    user: Any = None
    src_ip: Any = None
    dst_ip: Any = None
    event_code: Any = None
    rule_name: Any = UNSET
    fields: _Fields | None = None


class _Scope(msgspec.Struct, gc=False):
    """Where entity objects may sit: an evidence (1.8), or the finding itself (1.3)."""

    device: _Host | None = None
    src_endpoint: _Host | None = None
    dst_endpoint: _Host | None = None
    process: _WithUser | None = None
    user: _User | None = None
    actor: _WithUser | None = None
    data: _Data | None = None


class _Reference(msgspec.Struct, gc=False):  # a tactic, technique, sub-technique or analytic
    uid: Any = None
    name: Any = None
    type_id: Any = None


class _Attack(msgspec.Struct, gc=False):
    tactic: _Reference | None = None
    technique: _Reference | None = None
    sub_technique: _Reference | None = None


class _Info(msgspec.Struct, gc=False):
    uid: Any = None
    title: Any = None
    first_seen_time: Any = UNSET
    types: Any = None
    attacks: list[_Attack] | None = None
    # The model that scored the event; the detection rules that fired are the related
    # analytics of type 1 (Rule): suppressions name either.
    analytic: _Reference | None = None
    related_analytics: list[_Reference] | None = None


class _Rule(msgspec.Struct, gc=False):
    techniques: Any = None


class _ScorerPart(msgspec.Struct, gc=False):
    kind: Any = None
    rules: list[_Rule] | None = None


class _Unmapped(msgspec.Struct, gc=False):
    scorer: _ScorerPart | None = None


class _Metadata(msgspec.Struct, gc=False):
    uid: Any = None


class Finding(_Scope, gc=False):
    """What the incident stage reads of a Detection Finding (either layout)."""

    finding_info: _Info | None = None
    metadata: _Metadata | None = None
    time: Any = None
    severity_id: Any = None
    evidences: list[_Scope] | None = None
    attacks: list[_Attack] | None = None
    unmapped: _Unmapped | None = None


_TYPED = msgspec.json.Decoder(Finding)
_JSON = msgspec.json.Decoder()
S = TypeVar("S", bound=msgspec.Struct)
_SHAPES: dict[type[msgspec.Struct], list[tuple[str, str, Any]]] = {}


def _shape(cls: type[msgspec.Struct]) -> list[tuple[str, str, Any]]:
    """(field, "object" / "objects" / "leaf", struct type) of a view class."""
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = []
        for field in msgspec.structs.fields(cls):
            name = field.name
            inner = next((a for a in get_args(field.type) if a is not type(None)), None)
            if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                shape.append((name, "object", inner))
            elif get_origin(inner) is list:
                shape.append((name, "objects", get_args(inner)[0]))
            else:
                shape.append((name, "leaf", None))
        _SHAPES[cls] = shape
    return shape


def _coerce(doc: Mapping[str, Any], cls: type[S]) -> S:
    """``doc`` (plain JSON) as the view ``cls``, whatever its values: a value that is not an
    object where the view has one reads as absent, a list keeps only its objects."""
    values: dict[str, Any] = {}
    for name, how, sub in _shape(cls):
        if name not in doc:
            continue
        value = doc[name]
        if how == "leaf":
            values[name] = value
        elif how == "object":
            if type(value) is dict:
                values[name] = _coerce(value, sub)
        elif type(value) is list:
            values[name] = [_coerce(v, sub) for v in value if type(v) is dict]
    return cls(**values)


def as_finding(doc: Mapping[str, Any]) -> Finding:
    """A decoded finding (a JSON object as a dict) as the typed view."""
    try:
        return msgspec.convert(doc, Finding)
    except msgspec.ValidationError:
        return _coerce(doc, Finding)


def decode_finding(raw: bytes | None) -> Finding:
    """A finding's JSON bytes as the typed view; ``msgspec.DecodeError`` when they are not
    JSON or not a JSON object."""
    if raw is None:
        raise msgspec.DecodeError("not a JSON object")
    try:
        return _TYPED.decode(raw)
    except msgspec.DecodeError:  # not JSON, or a value the view does not expect (rare)
        doc = _JSON.decode(raw)
    if type(doc) is not dict:
        raise msgspec.DecodeError("not a JSON object")
    return _coerce(doc, Finding)
