"""The local-copy side channel (SPEC.md §14): pysync-only data that a
local copy's two processes exchange beside the rsync stream, which stays
rsync's own.  Never used with a remote peer.

Parent (sender) -> child (receiver): the source table, one record per file
the child may copy itself -- ``varint ndx+1, varint len, path`` -- ended by
``varint 0``.  Child -> parent: ``varint ndx, varint microseconds`` for
each file it copied (how long the copy took, for --progress), written before
its request on the main stream.
"""

from __future__ import annotations

from .buffer import ProtocolError, ReadBuffer
from .constants import MAXPATHLEN
from .ints import decode_varint, encode_varint

__all__ = ["encode_source", "encode_table_end", "decode_source", "encode_copied",
           "decode_copied"]


def encode_source(ndx: int, path: bytes) -> bytes:
    return encode_varint(ndx + 1) + encode_varint(len(path)) + path


def encode_table_end() -> bytes:
    return encode_varint(0)


def decode_source(buf: ReadBuffer):
    """(ndx, path), or None at the end of the table."""
    n = decode_varint(buf)
    if n == 0:
        return None
    length = decode_varint(buf)
    if not 0 < length <= MAXPATHLEN * 4:
        raise ProtocolError(f"bad source path length {length} in the local side channel", 12)
    return n - 1, buf.take(length)


def encode_copied(ndx: int, usec: int) -> bytes:
    return encode_varint(ndx) + encode_varint(min(max(usec, 0), 0x7FFFFFFF))


def decode_copied(buf: ReadBuffer):
    """(ndx, microseconds)."""
    return decode_varint(buf), decode_varint(buf)
