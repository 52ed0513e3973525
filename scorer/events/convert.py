"""Small, strict converters shared by every adapter.

Each raises :class:`scorer.errors.RecordError` with a reason code, never a bare
``ValueError``: the decoder turns that into a dead-letter record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from scorer.errors import RecordError

E = TypeVar("E")

# Zeek writes "-" for unset and "(empty)" for empty. "NaN" is not missing: it is refused.
MISSING_TEXTS = {"", "-", "(empty)", "null", "None"}
MAX_TEXT = 8192
INT_LIMIT = 2**62  # integers beyond this are garbage in any field of ours


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in MISSING_TEXTS)


def to_float(value: Any, field: str, *, default: float | None = None) -> float:
    if is_missing(value):
        if default is None:
            raise RecordError("missing_field", f"required field {field!r} is missing")
        return default
    if isinstance(value, bool):
        raise RecordError("wrong_type", f"field {field!r} must be a number, got a boolean")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RecordError(
            "wrong_type", f"field {field!r} must be a number, got {_show(value)}"
        ) from None
    if not math.isfinite(out):
        raise RecordError("non_finite", f"field {field!r} is {out}, not a finite number")
    return out


def to_int(value: Any, field: str, *, default: int | None = None) -> int:
    if is_missing(value) and default is not None:
        return default
    out = to_float(value, field)
    if abs(out) > INT_LIMIT:
        raise RecordError("out_of_range", f"field {field!r} = {out} is out of range")
    return int(out)


def bounded(event: E, fields: tuple[str, ...]) -> E:
    """``event`` if its integer ``fields`` are within range (JSON ints have no size limit)."""
    for field in fields:
        value = getattr(event, field)
        if value is not None and abs(value) > INT_LIMIT:
            # bit_length, not the value: str() of a huge int is itself refused by Python.
            raise RecordError("out_of_range", f"field {field!r} is out of range ({value.bit_length()} bits)")
    return event


def opt_int(value: Any, field: str) -> int | None:
    return None if is_missing(value) else to_int(value, field)


def to_text(value: Any, field: str, *, required: bool = False) -> str | None:
    if is_missing(value):
        if required:
            raise RecordError("missing_field", f"required field {field!r} is missing")
        return None
    if isinstance(value, dict | list):
        raise RecordError("wrong_type", f"field {field!r} must be text, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise RecordError("oversized_field", f"field {field!r} is {len(text)} chars (max {MAX_TEXT})")
    return text


def req_text(value: Any, field: str) -> str:
    text = to_text(value, field, required=True)
    assert text is not None
    return text


def to_timestamp(value: Any, field: str) -> float:
    """Epoch seconds from a number or an ISO-8601 / 'YYYY-mm-dd HH:MM:SS[.f]' string (UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_float(value, field)
    text = req_text(value, field)
    try:
        return float(text)
    except ValueError:
        pass
    candidate = text.strip().replace("Z", "+00:00")
    # CICFlowMeter writes e.g. "2017-07-07 12:59:01.123456" and sometimes 7 fraction digits.
    if "." in candidate:
        head, _, frac = candidate.partition(".")
        digits = "".join(ch for ch in frac if ch.isdigit())
        rest = frac[len(digits):]
        candidate = f"{head}.{digits[:6]}{rest}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise RecordError("bad_timestamp", f"field {field!r} is not a timestamp: {_show(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def by_form(raw: Mapping[str, Any], adapters: Mapping[str, Callable[[Mapping[str, Any]], E]], refusal: str) -> E:
    """``raw`` through the adapter of the first marker field it has (a source form's
    tell-tale key, in ``adapters``' order); ``unknown_schema`` with ``refusal`` if none."""
    for marker, adapt in adapters.items():
        if marker in raw:
            return adapt(raw)
    raise RecordError("unknown_schema", refusal)


def text_fields(raw: Mapping[str, Any], skip: frozenset[str], limit: int = 64) -> dict[str, str]:
    """The leftover scalar fields of a raw record, as bounded text, for context."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key in skip or is_missing(value) or isinstance(value, dict | list):
            continue
        if len(out) >= limit:
            break
        out[str(key)[:128]] = str(value)[:1024]
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
