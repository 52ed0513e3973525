"""An alert's OCSF Detection Finding written straight as JSON bytes: the service's path.

:func:`scorer.alerts.ocsf.detection_finding` builds a finding from ~15 msgspec Structs, then
:func:`scorer.alerts.ocsf.encode` encodes it: most of what an alert cost (docs/benchmarks.md,
sections 21 and 25). A :class:`FindingWriter` holds, encoded once, the JSON every finding of
one kind, model and backend shares; :func:`_rule_json` what a set of rules adds, once per set;
one call of ``scorer.native._findings.finding`` writes a finding from those pieces and what it
reads of the event, decision and record. The bytes are those of
``encode(detection_finding(...))``, which stays the format's readable definition and the path
when the C module is off: tests compare the two on every alert of the bundled capture and on
hostile events. A canonical flow is not decoded whole a second time (its 81 statistics were
~7 µs of a netflow alert): its other fields are decoded without them and its statistics are
rewritten from the record's own JSON (:func:`scorer.native.findings.flow_split`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from scorer.alerts.decide import SEVERITY_IDS, Decision
from scorer.alerts.evidence import address
from scorer.alerts.ocsf import (
    _PRODUCT,
    _TITLES,
    OCSF_VERSION,
    PROFILES,
    PROFILES_HOST,
    DetectionFinding,
    _model_parts,
    _rule_parts,
    detection_finding,
    encode,
)
from scorer.alerts.textsafe import visible
from scorer.events.columnar import VIEWS, expand
from scorer.events.edrrows import EndpointRow, canonical
from scorer.events.flowviews import CIC_STATISTICS
from scorer.events.structs import EndpointEvent, EventKind, FlowRecord, SiemAlert, entity_key
from scorer.native import findings as native
from scorer.pipeline.records import InputRecord
from scorer.rules import RuleMeta

_enc = msgspec.json.Encoder().encode
RulesOf = Callable[[EndpointEvent], Sequence[RuleMeta]]

# A flow's fields without its ground truth (a finding never carries the label) and with its
# statistics left as the record's JSON: what a canonical flow's finding is written from.
FlowData: type[msgspec.Struct] = msgspec.defstruct(
    "FlowData",
    [(f.name, msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) if f.name == "extra"
     else (f.name, f.type, msgspec.field(default=f.default)) if f.required is False
     else (f.name, f.type) for f in msgspec.structs.fields(FlowRecord) if f.name != "label"],
    kw_only=True, frozen=True, omit_defaults=True, gc=False,
)
_FLOW_DATA: msgspec.json.Decoder[Any] = msgspec.json.Decoder(FlowData)
_STAT_NAMES = tuple(name.encode() for name in CIC_STATISTICS)
_NO_STATS = b"{}"


def _head() -> bytes:
    """``{"activity_id":1, ... ,"type_name":"Detection Finding: Create"``: the finding's first
    fields, constants (DetectionFinding's defaults up to its severity)."""
    head = {}
    for f in msgspec.structs.fields(DetectionFinding):
        if f.name == "severity_id":
            break
        head[f.encode_name] = f.default
    return _enc(head)[:-1]


_HEAD = _head()


def _severity_json(severity: str) -> bytes:
    return b'%s,"severity_id":%d,"severity":%s,"status_id":1,"status":"New","time":' % (
        _HEAD, SEVERITY_IDS.get(severity, 0), _enc(severity))


def _feature_json(name: str) -> tuple[bytes, bytes]:
    """A top feature's head, as the first of the list and after another."""
    head = b'{"name":%s,"value":' % _enc(name)
    return head, b"," + head


@functools.lru_cache(maxsize=4096)
def _rule_json(rules: tuple[RuleMeta, ...], pack: str) -> tuple[str, str, bytes, bytes]:
    """What a set of rules adds to a finding (from :func:`scorer.alerts.ocsf._rule_parts`):
    title, the head of the reasons, ``related_analytics`` (and ``attacks``), and the rule hits
    with the pack's name for ``unmapped.scorer``."""
    parts = _rule_parts(rules, pack)
    related = b',"related_analytics":' + _enc(parts.related)
    if parts.attacks is not msgspec.UNSET:
        related += b',"attacks":' + _enc(parts.attacks)
    return parts.title, parts.reasons, related, b',"rules":%s,"rule_pack":%s' % (_enc(parts.hits), _enc(pack))


# What scorer.alerts.ocsf._what and device() say of each event type, as _findings.c numbers it.
_WHAT_FLOW, _WHAT_ENDPOINT = 0, 1
_WHAT: dict[type, int] = {FlowRecord: _WHAT_FLOW, EndpointEvent: _WHAT_ENDPOINT, SiemAlert: 2}


class FindingWriter:
    """The findings of one kind scored by one model version on one backend, as JSON bytes."""

    def __init__(self, kind: EventKind, model_name: str, model_version: str, threshold: float, backend: str) -> None:
        analytic, model_id = _model_parts(model_name, model_version)
        self.kind, self.model_name, self.model_version, self.threshold, self.backend = (
            kind, model_name, model_version, threshold, backend)
        name = kind.value
        # The constants every finding of the writer shares, in _findings.c's order (enum C_*).
        self._consts: tuple[Any, ...] = (
            f"{model_name}:{model_version}:", _TITLES.get(name, "Suspicious event"),
            b',"types":[%s]' % _enc(name), b',"analytic":%s,"related_events":[{"uid":' % _enc(analytic),
            b',"type":%s}]' % _enc(name),
            b',"threshold":%s,"backend":%s,"model":%s,"top_features":[' % (_enc(threshold), _enc(backend),
                                                                            _enc(model_id)),
            b',"kind":%s,"raised_by":' % _enc(name), {}, _severity_json, {}, _feature_json, visible, _enc,
            b',"metadata":{"version":%s,"uid":' % _enc(OCSF_VERSION),
            b',"product":%s,"original_time":' % _enc(_PRODUCT),
            b',"profiles":%s},"finding_info":{"uid":' % _enc(PROFILES),
            b',"profiles":%s},"finding_info":{"uid":' % _enc(PROFILES_HOST), address, msgspec.UNSET,
        )
        self._flows = kind is EventKind.NETFLOW

    def write(
        self, items: Sequence[tuple[Any, InputRecord]], decisions: Sequence[Decision], rules_of: RulesOf | None,
        pack: str, now_ms: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """The finding of each decision's row (``items[d.row]``: a decoded event or a flow view,
        and its record), with the key of its record on the alerts topic."""
        c = native.module()
        if c is None:
            return [self._reference(*items[d.row], d, rules_of, pack, now_ms) for d in decisions]
        out: list[tuple[bytes, bytes]] = []
        append, consts, flows, finding = out.append, self._consts, self._flows, c.finding
        now = now_ms if now_ms is not None else int(time.time() * 1000)  # when the batch's findings are written
        for d in decisions:
            row, rec = items[d.row]
            event = row
            if type(row) in VIEWS:  # a flow not decoded whole: its statistics cut out, else decoded now
                flow = self._flow(row, rec) if flows else None
                if flow is not None:
                    value = finding(consts, flow, _WHAT_FLOW, rec, d, now, (_enc(flow),), None)
                    append((value, rec.key if rec.key is not None else flow.src_ip.encode()))
                    continue
                event = expand(self.kind, row, rec.value or b"", rec.ref)
            elif type(row) is EndpointRow:  # its fields a FieldMap, which msgspec does not encode
                event = canonical(row)
            what = _WHAT.get(type(event))
            rules = rules_of(event) if rules_of is not None and isinstance(event, EndpointEvent) else ()
            data = event if event.label is None else msgspec.structs.replace(event, label=None)
            value = None if what is None else finding(
                # the evidence (endpoints, connection, process) is written in C around the event's data;
                # the record gives its topic, partition and offset (no SourceRef made for them)
                consts, event, what, rec, d, now, (_enc(data),),
                _rule_json(rules if type(rules) is tuple else tuple(rules), pack) if rules else None,
            )
            # None: a score or time that is not a float (no decoder makes one); the reference writes it
            append((value, rec.key if rec.key is not None else entity_key(event).encode()) if value is not None
                   else self._reference(event, rec, d, rules_of, pack, now))
        return out

    def _reference(
        self, row: Any, rec: InputRecord, d: Decision, rules_of: RulesOf | None, pack: str, now_ms: int | None,
    ) -> tuple[bytes, bytes]:
        """The finding by :mod:`scorer.alerts.ocsf`'s structs: the format's definition, and the
        path when the C module is off."""
        event = expand(self.kind, row, rec.value or b"", rec.ref)
        rules = rules_of(event) if rules_of is not None and isinstance(event, EndpointEvent) else ()
        value = encode(detection_finding(
            kind=self.kind.value, event=event, decision=d, model_name=self.model_name,
            model_version=self.model_version, threshold=self.threshold, backend=self.backend, ref=rec.ref,
            now_ms=now_ms, rules=rules, rule_pack=pack,
        ))
        return value, rec.key if rec.key is not None else entity_key(event).encode()

    @staticmethod
    def _flow(row: Any, rec: InputRecord) -> Any:
        """A canonical flow's fields for its finding: decoded without its statistics (msgspec
        reads the rest of the record), which are written from the record's JSON; None where
        that is not the plain case (the flow is then decoded whole)."""
        split = None if rec.value is None else native.flow_split(rec.value, _STAT_NAMES)
        if split is None:
            return None
        head, stats = split
        try:
            flow = _FLOW_DATA.decode(head)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        extra = msgspec.UNSET if stats is None or stats == _NO_STATS else msgspec.Raw(stats)
        return msgspec.structs.replace(flow, extra=extra, uid=flow.uid or row.uid)


@functools.lru_cache(maxsize=64)
def finding_writer(
    kind: EventKind, model_name: str, model_version: str, threshold: float, backend: str,
) -> FindingWriter:
    """The writer of a kind's findings (one per model version and backend a process scores with)."""
    return FindingWriter(kind, model_name, model_version, threshold, backend)
