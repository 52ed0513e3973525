"""A Detection Finding's evidence: the scored event whole, and its entities in OCSF objects.

OCSF (1.3 and 1.8 alike) gives a Detection Finding no top-level endpoint, connection or
process attributes: the Evidence Artifacts object (``evidences[]``) is where a finding
names them, beside ``data``, which carries the source event as the scorer read it. The host
goes in the top-level ``device`` of the ``host`` profile (the device the finding is about),
not in the evidence: py-ocsf-models (the independent model the tests also parse findings
with) requires ip, name, region and uid of an evidence's device, which OCSF does not and
an event rarely has. Values that do not fit their OCSF type (an "IP" that is
no address, a port outside 0-65535, a pid beyond 32 bits) are left out of the objects, not
coerced: ``data`` keeps them exactly, and a crafted event cannot make a finding that a
strict OCSF consumer rejects.
"""

from __future__ import annotations

import functools
import ipaddress

import msgspec

from scorer.events.structs import EndpointEvent, Event, FlowRecord

UNSET = msgspec.UNSET
_PORT_MAX = 65535
_PID_LIMIT = 1 << 31  # OCSF integer_t is a signed 32-bit integer


class Endpoint(msgspec.Struct):
    ip: str | msgspec.UnsetType = UNSET
    port: int | msgspec.UnsetType = UNSET


class Connection(msgspec.Struct):
    protocol_name: str
    # Required by OCSF; a flow record does not say which side is inside the network.
    direction_id: int = 0
    direction: str = "Unknown"


class Device(msgspec.Struct, frozen=True):
    hostname: str
    type_id: int = 0  # required by OCSF; an event names a host, not what kind of device it is
    type: str = "Unknown"


class File(msgspec.Struct, frozen=True):
    name: str
    path: str
    type_id: int = 8
    type: str = "Executable File"


class User(msgspec.Struct, frozen=True):
    name: str


class Parent(msgspec.Struct, frozen=True):
    name: str
    file: File


class Process(msgspec.Struct):
    name: str | msgspec.UnsetType = UNSET
    pid: int | msgspec.UnsetType = UNSET
    cmd_line: str | msgspec.UnsetType = UNSET
    file: File | msgspec.UnsetType = UNSET
    parent_process: Parent | msgspec.UnsetType = UNSET
    user: User | msgspec.UnsetType = UNSET


class Evidence(msgspec.Struct):
    """One OCSF Evidence Artifacts object; ``UNSET`` entities leave no key in the JSON."""

    data: Event
    src_endpoint: Endpoint | msgspec.UnsetType = UNSET
    dst_endpoint: Endpoint | msgspec.UnsetType = UNSET
    connection_info: Connection | msgspec.UnsetType = UNSET
    process: Process | msgspec.UnsetType = UNSET


def evidence(event: Event) -> Evidence:
    """The evidence of ``event``: endpoints and protocol for flows, the process for endpoint
    events, addresses for SIEM alerts."""
    out = Evidence(event)
    if isinstance(event, FlowRecord):
        out.src_endpoint = Endpoint(address(event.src_ip), _port(event.src_port))
        out.dst_endpoint = Endpoint(address(event.dst_ip), _port(event.dst_port))
        if event.proto:
            out.connection_info = Connection(event.proto)
    elif isinstance(event, EndpointEvent):
        if event.image or event.command_line:
            out.process = _process(event)
    else:
        if event.src_ip and (ip := address(event.src_ip)) is not UNSET:
            out.src_endpoint = Endpoint(ip)
        if event.dst_ip and (ip := address(event.dst_ip)) is not UNSET:
            out.dst_endpoint = Endpoint(ip)
    return out


def device(event: Event) -> Device | msgspec.UnsetType:
    """The host an endpoint event or SIEM alert is about (flows name addresses, not hosts)."""
    host = None if isinstance(event, FlowRecord) else event.host
    return _device(host) if host else UNSET


def _process(event: EndpointEvent) -> Process:
    process = Process(cmd_line=event.command_line if event.command_line is not None else UNSET)
    if event.image:
        process.file = _file(event.image)
        process.name = process.file.name
    if event.process_id is not None and 0 <= event.process_id < _PID_LIMIT:
        process.pid = event.process_id
    if event.parent_image:
        process.parent_process = _parent(event.parent_image)
    if event.user:
        process.user = _user(event.user)
    return process


# Alerts repeat the same few thousand hosts, images, users and addresses: these objects are
# immutable and cached, which keeps building and parsing them off the hot path.
@functools.lru_cache(maxsize=1 << 14)
def _device(host: str) -> Device:
    return Device(host)


@functools.lru_cache(maxsize=1 << 14)
def _file(path: str) -> File:
    # Windows images use backslashes, Linux/macOS ones slashes; the name is the last part.
    return File(path.replace("\\", "/").rsplit("/", 1)[-1], path)


@functools.lru_cache(maxsize=1 << 14)
def _parent(path: str) -> Parent:
    file = _file(path)
    return Parent(file.name, file)


@functools.lru_cache(maxsize=1 << 14)
def _user(name: str) -> User:
    return User(name)


@functools.lru_cache(maxsize=1 << 16)
def address(text: str) -> str | msgspec.UnsetType:
    """``text`` if it is an IP address (what an OCSF endpoint's ip may hold), else UNSET (the C
    writer of findings, scorer.native._findings, asks it too)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return UNSET
    return text


def _port(port: int) -> int | msgspec.UnsetType:
    return port if 0 <= port <= _PORT_MAX else UNSET
