"""Which profile keys an event belongs to: one definition for the stream jobs (which update
them) and the scorer (which joins them), so both always talk about the same keys.

Items are normalised before they become keys so that the profile learns *shapes*, not
instances: user directories, GUIDs, long hex runs and numbers are masked in paths and
command lines (a PowerShell policy-test file with a random name is the same thing every
time), and command lines are hashed to keep keys short.

The entity part of every key (host, source IP) is the events' partition key
(:func:`scorer.events.structs.entity_key`) verbatim: profiles are co-partitioned with their
events only if a host's events and its profile keys agree on who the host is. Folding the
case of host names here but not there split one host's profile key over two partitions
("WS1" and "ws1" are partitioned apart, so two workers wrote the same key). Any
normalisation of hosts belongs in ``entity_key``, which both sides then follow.
"""

from __future__ import annotations

import re
import zlib
from typing import NamedTuple

from scorer.events.structs import EndpointEvent, FlowRecord, SiemAlert, entity_key
from scorer.profiles.schema import key

_USER_DIR = re.compile(r"\\users\\[^\\]+\\")
_GUID = re.compile(r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?")
_HEX = re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b")
_NUM = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
MAX_SHAPE = 400


class FlowKeys(NamedTuple):
    source: str  # window per source IP: connections, destinations, ports, bytes
    pair: str  # window per (source, destination, port): repetition and regularity


class EdrKeys(NamedTuple):
    host: str  # item: how long and how often the host has been seen
    image: str | None  # item: process image path on this host
    lineage: str | None  # item: parent image -> image on this host
    command: str | None  # item: command-line shape on this host


class SiemKeys(NamedTuple):
    host: str  # item: the host's history depth
    host_window: str  # window: the host's alert rate, distinct rules, bursts
    rule: str  # item: this alert type on this host (first seen, prevalence)
    rule_window: str  # window: this alert type's rate on this host


def normalise_path(path: str) -> str:
    return _NUM.sub("0", _HEX.sub("#", _GUID.sub("{g}", _USER_DIR.sub(r"\\users\\*\\", path.lower()))))


def command_shape(command: str) -> str:
    shape = _SPACE.sub(" ", normalise_path(command)).strip()[:MAX_SHAPE]
    return f"{zlib.crc32(shape.encode('utf-8', 'replace')):08x}"


def _base(path: str) -> str:
    return path.rsplit("\\", 1)[-1].rsplit("/", 1)[-1]


def flow_keys(f: FlowRecord) -> FlowKeys:
    src = entity_key(f)
    return FlowKeys(key("src", src), key("pair", src, f.dst_ip, str(f.dst_port)))


def edr_keys(e: EndpointEvent) -> EdrKeys:
    host = entity_key(e)
    # Sysmon process-access events name the actor SourceImage, not Image (as the v1 features).
    image = normalise_path(e.image or e.fields.get("SourceImage") or "")
    parent = normalise_path(e.parent_image or "")
    command = e.command_line or e.fields.get("ScriptBlockText") or ""
    return EdrKeys(
        key("host", host),
        key("img", host, image) if image else None,
        key("lin", host, _base(parent) + ">" + _base(image)) if image and parent else None,
        key("cmd", host, command_shape(command)) if command.strip() else None,
    )


def siem_keys(a: SiemAlert) -> SiemKeys:
    host = entity_key(a)
    rule = a.rule_id or a.rule_name.lower()
    return SiemKeys(key("host", host), key("hostw", host), key("rule", host, rule), key("rulew", host, rule))
