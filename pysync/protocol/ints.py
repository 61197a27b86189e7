"""Integer and string codecs of the rsync wire (io.c).

Pairs named for the wire type: ``encode_x(value) -> bytes`` and
``decode_x(buf: ReadBuffer) -> value`` (raises NeedMore when short).
All fixed-width integers are little-endian.
"""

from __future__ import annotations

import struct

from .buffer import ProtocolError, ReadBuffer

__all__ = [
    "encode_int32", "decode_int32", "decode_uint32", "encode_uint32",
    "encode_int64", "decode_int64", "encode_shortint", "decode_shortint",
    "encode_varint", "decode_varint", "encode_varlong", "decode_varlong",
    "encode_vstring", "decode_vstring", "extra_bytes",
]

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U16 = struct.Struct("<H")

# Number of extra bytes announced by the leading one-bits of a varint's
# first byte, indexed by first_byte >> 2 (io.c int_byte_extra).
_EXTRA = bytes([0] * 32 + [1] * 16 + [2] * 8 + [3] * 4 + [4] * 2 + [5] + [6])


def extra_bytes(first: int) -> int:
    return _EXTRA[first >> 2]


def encode_int32(v: int) -> bytes:
    return _I32.pack(v)


def decode_int32(buf: ReadBuffer) -> int:
    return buf.unpack(_I32)[0]


def encode_uint32(v: int) -> bytes:
    return _U32.pack(v & 0xFFFFFFFF)


def decode_uint32(buf: ReadBuffer) -> int:
    return buf.unpack(_U32)[0]


def encode_int64(v: int) -> bytes:
    return _I64.pack(v)


def decode_int64(buf: ReadBuffer) -> int:
    return buf.unpack(_I64)[0]


def encode_shortint(v: int) -> bytes:
    return _U16.pack(v & 0xFFFF)


def decode_shortint(buf: ReadBuffer) -> int:
    return buf.unpack(_U16)[0]


def _encode_var(value: int, width: int, min_bytes: int) -> bytes:
    # The value's bytes, dropping high zero bytes down to min_bytes; the
    # first byte on the wire carries one leading 1-bit per extra byte, and
    # the top byte of the value in its low bits when it fits there.
    b = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    cnt = width
    while cnt > min_bytes and b[cnt - 1] == 0:
        cnt -= 1
    bit = 1 << (7 - cnt + min_bytes)
    top = b[cnt - 1]
    if top >= bit:
        first = ~(bit - 1) & 0xFF
        return bytes([first]) + b[:cnt]
    if cnt > min_bytes:
        first = top | (~(bit * 2 - 1) & 0xFF)
    else:
        first = top
    return bytes([first]) + b[:cnt - 1]


def encode_varint(v: int) -> bytes:
    """rsync write_varint: a 32-bit value in 1 to 5 bytes."""
    return _encode_var(v, 4, 1)


def decode_varint(buf: ReadBuffer) -> int:
    first = buf.byte()
    extra = _EXTRA[first >> 2]
    if extra == 0:
        raw = bytes([first])
    else:
        if extra > 4:
            raise ProtocolError("Overflow in read_varint()", 12)
        bit = 1 << (8 - extra)
        raw = buf.take(extra) + bytes([first & (bit - 1)])
    return int.from_bytes((raw + b"\0\0\0\0")[:4], "little", signed=True)


def encode_varlong(v: int, min_bytes: int) -> bytes:
    """rsync write_varlong: a 64-bit value, at least ``min_bytes`` bytes."""
    return _encode_var(v, 8, min_bytes)


def decode_varlong(buf: ReadBuffer, min_bytes: int) -> int:
    first = buf.byte()
    low = buf.take(min_bytes - 1)
    extra = _EXTRA[first >> 2]
    if extra == 0:
        raw = low + bytes([first])
    else:
        if min_bytes + extra > 9:
            raise ProtocolError("Overflow in read_varlong()", 12)
        bit = 1 << (8 - extra)
        raw = low + buf.take(extra) + bytes([first & (bit - 1)])
    return int.from_bytes((raw + bytes(8))[:8], "little", signed=True)


def encode_vstring(s: bytes) -> bytes:
    """rsync write_vstring: 1 length byte below 0x80, else 2 (max 0x7FFF)."""
    n = len(s)
    if n < 0x80:
        return bytes([n]) + s
    if n > 0x7FFF:
        raise ValueError("vstring too long")
    return bytes([0x80 | (n >> 8), n & 0xFF]) + s


def decode_vstring(buf: ReadBuffer, limit: int = 0x7FFF) -> bytes:
    n = buf.byte()
    if n & 0x80:
        n = ((n & 0x7F) << 8) | buf.byte()
    if n > limit:
        raise ProtocolError(f"vstring length {n} exceeds {limit}", 2)
    return buf.take(n)
