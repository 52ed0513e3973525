"""JSON bytes and display text with no raw control character, for every OCSF record we publish.

Host, user and command-line strings come from the events, so a crafted field could carry
DEL, a C1 control (the 8-bit CSI) or a Unicode line separator into an analyst's terminal or
split a line-based consumer's record. Findings and incidents are encoded with msgspec (valid
UTF-8 JSON: those byte sequences can only be the characters themselves, inside strings), so
replacing them with their ``\\u`` escapes keeps the document equal.
"""

from __future__ import annotations

import re

_RAW_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_json(raw: bytes) -> bytes:
    """``raw`` (msgspec's JSON) with DEL, C1 controls and U+2028/U+2029 as ``\\u`` escapes."""
    # isascii() and a one-byte find are word/memchr-fast (~0.1 us per alert); the regex
    # only runs when the record holds DEL or any non-ASCII text.
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    return _RAW_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), raw)


def visible(text: str) -> str:
    """Display text (titles, descriptions): control characters shown as escapes (``\\x1b``)."""
    # Every character the pattern replaces (Cc, Zl, Zp) is non-printable: a printable text,
    # the common case, needs no regex pass.
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
