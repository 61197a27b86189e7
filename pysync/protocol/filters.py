"""Filter rules on the wire (exclude.c send_filter_list / recv_filter_list):
each rule as int32 length + text, the list ended by int32 0.  Rule
*matching* lives in pysync/engine/filters.py."""

from __future__ import annotations

from .buffer import ProtocolError, ReadBuffer
from .constants import MAXPATHLEN
from .ints import decode_int32, encode_int32

__all__ = ["encode_filter_list", "decode_filter_rule", "MAX_RULES"]

# A bound on rules accepted from a peer, so a hostile one cannot make us
# allocate without end.
MAX_RULES = 100_000


def encode_filter_list(rules) -> bytes:
    out = bytearray()
    for r in rules:
        out += encode_int32(len(r)) + r
    out += encode_int32(0)
    return bytes(out)


def decode_filter_rule(buf: ReadBuffer):
    """One rule as bytes, or None at the end of the list."""
    n = decode_int32(buf)
    if n == 0:
        return None
    if n < 0 or n >= MAXPATHLEN + 16:
        raise ProtocolError(f"filter rule length {n} out of range", 2)
    return buf.take(n)
