"""Multiplexed frames (io.c): a 4-byte LE header ((MPLEX_BASE+tag)<<24 | len)
followed by ``len`` payload bytes.

``encode_frame`` builds a frame; ``Demux`` takes raw bytes and yields
``(tag, payload)`` pairs, checking tags and lengths as rsync's
read_a_msg() does (violations are stream errors, exit 12).
"""

from __future__ import annotations

import struct

from .buffer import ProtocolError
from .constants import (MAX_FRAME_LEN, MAX_TEXT_MSG, MPLEX_BASE, MSG_DATA,
                        MSG_ERROR_EXIT, TEXT_TAGS, WIRE_TAGS)

__all__ = ["encode_frame", "encode_data", "Demux", "MAX_DATA_FRAME"]

_HDR = struct.Struct("<I")
# We write MSG_DATA frames of at most rsync's 32 KiB I/O buffer.
MAX_DATA_FRAME = 32 * 1024


def encode_frame(tag: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    if n > MAX_FRAME_LEN:
        raise ValueError("frame payload too long")
    return _HDR.pack(((MPLEX_BASE + tag) << 24) | n) + payload


def encode_data(data) -> bytes:
    """Stream bytes as MSG_DATA frames of at most MAX_DATA_FRAME bytes."""
    mv = memoryview(data)
    out = bytearray()
    for i in range(0, len(mv), MAX_DATA_FRAME):
        chunk = mv[i:i + MAX_DATA_FRAME]
        out += _HDR.pack(((MPLEX_BASE + MSG_DATA) << 24) | len(chunk))
        out += chunk
    return bytes(out)


class Demux:
    """Split a multiplexed byte stream into (tag, payload) messages."""

    __slots__ = ("_buf",)

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data) -> list:
        self._buf += data
        out = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (hdr,) = _HDR.unpack_from(buf, pos)
            tag = (hdr >> 24) - MPLEX_BASE
            length = hdr & 0xFFFFFF
            _check(tag, length)
            if len(buf) - pos - 4 < length:
                break
            out.append((tag, bytes(buf[pos + 4:pos + 4 + length])))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return out

    def pending(self) -> int:
        return len(self._buf)


def _check(tag: int, length: int) -> None:
    if tag not in WIRE_TAGS:
        raise ProtocolError(f"unexpected tag {tag}", 12)
    fixed = WIRE_TAGS[tag]
    if fixed is not None and length != fixed:
        raise ProtocolError(f"invalid multi-message {tag}:{length}", 12)
    if tag == MSG_ERROR_EXIT and length not in (0, 4):
        raise ProtocolError(f"invalid multi-message {tag}:{length}", 12)
    if tag in TEXT_TAGS and length >= MAX_TEXT_MSG:
        raise ProtocolError(f"multiplexing overflow {tag}:{length}", 12)
