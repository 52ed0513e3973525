"""Sigma field names resolved on :class:`EndpointEvent`, as batch columns.

A Sigma rule names EventData fields (``Image``, ``CommandLine``, ``TargetUserName``...) and
System fields (``EventID``, ``Channel``, ``Provider_Name``, ``Computer``). The EDR adapters
(:mod:`scorer.events.edr`) move the common ones onto canonical attributes and keep the rest
in ``fields``; this module reads them back by the rule's name:

* System fields and canonical attributes: ``EventID`` -> ``event_code``, ``Channel`` ->
  ``channel``, ``Image``/``NewProcessName`` -> ``image``, ... (the table below, the inverse of
  ``_ALIASES`` in :mod:`scorer.events.edr`). An alias the event carries beside the one the
  adapter chose stays in ``fields`` and is read from there; an alias the event does not
  carry reads the canonical value (Sigma's Windows audit pipeline maps ``Image`` onto
  ``NewProcessName`` the same way).
* ``TargetUserName``, ``SubjectUserName``, ``AccountName``, ``UserName``: from ``fields``
  only (different accounts; the adapter keeps them there). ``User`` is the canonical user.
* anything else: ``fields[name]``.
* ``*``: every text value of the event, for field-less Sigma keywords.

Values are text: integers as decimal, booleans as ``true``/``false``; a missing value is
``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from scorer.events.structs import EndpointEvent

KEYWORDS = "*"

# Sigma field name -> EndpointEvent attribute.
CANONICAL: dict[str, str] = {
    "EventID": "event_code",
    "Channel": "channel",
    "Provider_Name": "provider",
    "Computer": "host",
    "Hostname": "host",
    "User": "user",
    "Image": "image", "NewProcessName": "image", "ProcessName": "image", "Application": "image",
    "CommandLine": "command_line", "ProcessCommandLine": "command_line",
    "ParentImage": "parent_image", "ParentProcessName": "parent_image",
    "ParentCommandLine": "parent_command_line",
    "TargetFilename": "target_filename", "ObjectName": "target_filename", "FileName": "target_filename",
    "TargetObject": "target_object",
    "ImageLoaded": "image_loaded",
    "SourceIp": "src_ip", "IpAddress": "src_ip", "SourceAddress": "src_ip",
    "DestinationIp": "dst_ip", "DestAddress": "dst_ip",
    "IntegrityLevel": "integrity_level", "MandatoryLabel": "integrity_level",
    "ProcessId": "process_id",
    "DestinationPort": "dst_port",
    "LogonType": "logon_type",
    "Signed": "signed",
}
# Header fields the adapter always consumes: never in ``fields``.
_HEADER = frozenset({"EventID", "Channel", "Provider_Name", "Computer", "Hostname", "ProcessId",
                     "DestinationPort", "LogonType", "Signed"})
_TEXT_ATTRS = ("host", "channel", "provider", "user", "image", "command_line", "parent_image",
               "parent_command_line", "target_filename", "target_object", "image_loaded", "src_ip",
               "dst_ip", "integrity_level")

Getter = Callable[[EndpointEvent], str | None]


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def getter(key: str) -> Getter:
    """How to read column ``key`` (a Sigma field name, or ``*``) from one event."""
    if key == KEYWORDS:
        return all_text
    attr = CANONICAL.get(key)
    if attr is None:
        return lambda ev: ev.fields.get(key)
    if attr == "event_code":
        return lambda ev: str(ev.event_code)
    if key in _HEADER:
        return lambda ev: _text(getattr(ev, attr))

    def alias(ev: EndpointEvent) -> str | None:
        own = ev.fields.get(key)
        return own if own is not None else _text(getattr(ev, attr))

    return alias


def all_text(ev: EndpointEvent) -> str | None:
    """Every text value of the event, one per line (what a keyword search looks through)."""
    parts = [v for v in (getattr(ev, a) for a in _TEXT_ATTRS) if v]
    parts.extend(ev.fields.values())
    return "\n".join(parts) if parts else None


Column = Callable[[Sequence[EndpointEvent], Sequence[int]], list[str | None]]


def column_reader(key: str) -> Column:
    """A reader of column ``key`` at given rows, specialised by where the field lives (the
    same values as :func:`getter`, read without a call per row)."""
    attr = CANONICAL.get(key)
    if key != KEYWORDS and attr is None:
        def leftover(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[str | None]:
            return [events[r].fields.get(key) for r in rows]

        return leftover
    if attr == "event_code":
        def code(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[str | None]:
            return [str(events[r].event_code) for r in rows]

        return code
    if attr in _TEXT_ATTRS and key in _HEADER | {"User"}:
        def text(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[str | None]:
            return [getattr(events[r], attr) or None for r in rows]

        return text
    if attr in _TEXT_ATTRS:
        def alias(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[str | None]:
            return [events[r].fields.get(key) or getattr(events[r], attr) or None for r in rows]

        return alias
    get = getter(key)

    def read(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[str | None]:
        return [get(events[r]) for r in rows]

    return read


RawColumn = tuple[Callable[[Sequence[EndpointEvent], Sequence[int]], list[Any]], Callable[[Any], str | None],
                  frozenset[type]]


def raw_column_reader(key: str) -> RawColumn | None:
    """For a field read straight off one attribute (``EventID``, ``Channel``...): a reader of
    the attribute's raw values (one C-level ``map``, no conversion per row), how a raw value
    becomes the column's text, and the raw types that conversion gives :func:`column`'s text
    for (a value of another type: read with :func:`column_reader`). None: no raw form."""
    attr = CANONICAL.get(key)
    if attr == "event_code":
        return _attribute(attr), str, frozenset({int})
    if attr in _TEXT_ATTRS and key in _HEADER | {"User"}:
        return _attribute(attr), _present_text, frozenset({str, type(None)})
    return None


def canonical_column_reader(key: str) -> RawColumn | None:
    """For a Sigma name that is an alias of a canonical text attribute (``Image``,
    ``CommandLine``...): the attribute's raw reader, which gives :func:`column`'s values
    whenever no event of the batch carries the name in ``fields`` (the caller knows)."""
    attr = CANONICAL.get(key)
    if attr in _TEXT_ATTRS and key not in _HEADER | {"User"}:
        return _attribute(attr), _present_text, frozenset({str, type(None)})
    return None


# How scorer.native._rules.fold reads a column (its READ_* constants).
READ_FIELD, READ_ATTR, READ_FIELD_ATTR, READ_TEXT, READ_STR, READ_GET = range(6)


def native_read(key: str) -> tuple[str | None, int] | None:
    """``(attribute, how)``: how the C pass reads column ``key``, giving :func:`column_reader`'s
    values; None for the keywords."""
    attr = CANONICAL.get(key)
    if key == KEYWORDS:
        return None
    if attr is None:
        return None, READ_FIELD
    if attr == "event_code":
        return attr, READ_STR
    if attr in _TEXT_ATTRS:
        return attr, READ_ATTR if key in _HEADER | {"User"} else READ_FIELD_ATTR
    return (attr, READ_TEXT) if key in _HEADER else None


def native_get(key: str) -> tuple[str | None, int] | None:
    """``(attribute, how)``: how the C pass reads ``key`` as :func:`getter` does (a fieldref's
    other field); None for the keywords."""
    attr = CANONICAL.get(key)
    if key == KEYWORDS or attr is None or attr == "event_code":
        return native_read(key)  # the keywords, a field, the event code: read as their column is
    return attr, READ_TEXT if key in _HEADER else READ_GET


def _present_text(value: str | None) -> str | None:
    return value or None


def _attribute(attr: str) -> Callable[[Sequence[EndpointEvent], Sequence[int]], list[Any]]:
    get = attrgetter(attr)

    def read(events: Sequence[EndpointEvent], rows: Sequence[int]) -> list[Any]:
        if isinstance(rows, range) and len(rows) == len(events):
            return list(map(get, events))
        return list(map(get, map(events.__getitem__, rows)))

    return read


def column(events: Sequence[EndpointEvent], key: str, rows: Sequence[int]) -> list[str | None]:
    """Column ``key`` of ``events`` at ``rows``."""
    return column_reader(key)(events, rows)
