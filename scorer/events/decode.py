"""Bytes from Kafka -> a canonical event, or a :class:`DecodeFailure` value.

Nothing here raises for bad input: every record becomes exactly one of the two, which is
what keeps ``consumed = scored + dead-lettered`` true.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from scorer.errors import RecordError
from scorer.events import edr, netflow, siem
from scorer.events.fastpath import decode_canonical
from scorer.events.structs import Event, EventKind, RecordFailure, SourceRef

DEFAULT_MAX_RECORD_BYTES = 256 * 1024

_ADAPTERS: dict[EventKind, Callable[[Mapping[str, Any]], Event]] = {
    EventKind.NETFLOW: netflow.from_mapping,
    EventKind.EDR: edr.from_mapping,
    EventKind.SIEM: siem.from_mapping,
}


class DecodeFailure(RecordFailure, frozen=True):
    """A record the decoder refused (bad JSON, wrong schema, unknown kind, too big...)."""


def parse_kind(name: str | None) -> EventKind | None:
    try:
        return EventKind(name) if name else None
    except ValueError:
        return None


def decode_mapping(kind: EventKind, raw: Mapping[str, Any]) -> Event:
    """A parsed JSON object of ``kind`` -> canonical event; raises RecordError."""
    event = _ADAPTERS[kind](raw)
    if not math.isfinite(event.ts):
        raise RecordError("non_finite", f"timestamp is {event.ts}")
    return event


class EventDecoder:
    """Decodes raw Kafka values of one kind, stamping a uid where the source has none.

    >>> from scorer.events.structs import SourceRef
    >>> dec = EventDecoder()
    >>> ev = dec.decode(EventKind.SIEM, b'{"time": 1642213952, "name": "Wazuh: x", "short": "W-x"}',
    ...                 SourceRef("events.siem", 0, 7))
    >>> ev.rule_name, ev.uid
    ('Wazuh: x', 'events.siem:0:7')
    >>> dec.decode(EventKind.SIEM, b'{oops', SourceRef("events.siem", 0, 8)).reason
    'malformed_json'
    """

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.max_record_bytes = max_record_bytes
        self._json = msgspec.json.Decoder()

    def decode(
        self,
        kind: EventKind | None,
        value: bytes | None,
        ref: SourceRef,
        key: bytes | None = None,
    ) -> Event | DecodeFailure:
        # The fast path first: canonical records (nearly all of a SOC pipeline's) pay for
        # no closure and no checks beyond the ones that can fail.
        if kind is not None and value is not None and len(value) <= self.max_record_bytes:
            event = decode_canonical(kind, value)
            if event is not None:
                if event.uid:
                    return event
                return msgspec.structs.replace(event, uid=f"{ref.topic}:{ref.partition}:{ref.offset}")

        def fail(reason: str, message: str) -> DecodeFailure:
            return DecodeFailure(reason, message, ref, value, key, str(kind) if kind else None)

        if kind is None:
            return fail("unknown_kind", f"topic {ref.topic!r} maps to no event kind")
        if value is None:
            return fail("empty_record", "record has no value (tombstone)")
        if len(value) > self.max_record_bytes:
            return fail("oversized_record", f"record is {len(value)} bytes (max {self.max_record_bytes})")
        generic = self._decode_generic(kind, value, fail)
        if isinstance(generic, DecodeFailure) or generic.uid:
            return generic
        return msgspec.structs.replace(generic, uid=f"{ref.topic}:{ref.partition}:{ref.offset}")

    def _decode_generic(
        self, kind: EventKind, value: bytes, fail: Callable[[str, str], DecodeFailure]
    ) -> Event | DecodeFailure:
        """JSON -> dict -> the kind's adapters: every source form, and precise refusals."""
        try:
            raw = self._json.decode(value)
        except (msgspec.DecodeError, RecursionError) as exc:
            return fail("malformed_json", f"not valid JSON: {exc}")
        except UnicodeDecodeError as exc:  # msgspec raises it for bad UTF-8 inside a string
            return fail("invalid_utf8", f"JSON string is not valid UTF-8: {exc}")
        if not isinstance(raw, dict):
            return fail("wrong_type", f"a record must be a JSON object, got {type(raw).__name__}")
        try:
            event = decode_mapping(kind, raw)
        except RecordError as exc:
            return fail(exc.reason, str(exc))
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            # An adapter met a shape it does not expect: still a record-level failure.
            return fail("wrong_schema", f"{type(exc).__name__}: {exc}")
        return event
