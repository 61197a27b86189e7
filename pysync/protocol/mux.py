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
                        MSG_ERROR_EXIT, MSG_SUCCESS, TEXT_TAGS, WIRE_TAGS)

__all__ = ["encode_frame", "encode_data", "encode_success", "decode_success", "Demux",
           "MAX_DATA_FRAME", "LOCAL_SUCCESS_LEN"]

_HDR = struct.Struct("<I")
_SUCCESS_LOCAL = struct.Struct("<iQQ")
# Between the two processes of one local copy (rsync's local_server) a
# MSG_SUCCESS also carries the destination file's dev and ino (io.c).
LOCAL_SUCCESS_LEN = _SUCCESS_LOCAL.size
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


def encode_success(ndx: int, dev_ino=None) -> bytes:
    """A MSG_SUCCESS frame: int32 ndx, or (local copy) ndx + int64 dev +
    int64 ino of the file the receiver holds (0, 0 when unknown)."""
    if dev_ino is None:
        return encode_frame(MSG_SUCCESS, ndx.to_bytes(4, "little", signed=True))
    dev, ino = dev_ino
    return encode_frame(MSG_SUCCESS, _SUCCESS_LOCAL.pack(ndx, dev & (2**64 - 1), ino & (2**64 - 1)))


def decode_success(payload: bytes):
    """(ndx, (dev, ino) or None) from a MSG_SUCCESS payload."""
    if len(payload) == LOCAL_SUCCESS_LEN:
        ndx, dev, ino = _SUCCESS_LOCAL.unpack(payload)
        return ndx, (dev, ino)
    return int.from_bytes(payload, "little", signed=True), None


class Demux:
    """Split a multiplexed byte stream into (tag, payload) messages.
    ``local_server``: the peer is the other half of a local copy, whose
    MSG_SUCCESS carries dev and ino (20 bytes, not 4)."""

    __slots__ = ("_buf", "_fixed")

    def __init__(self, local_server: bool = False):
        self._buf = bytearray()
        self._fixed = {**WIRE_TAGS, MSG_SUCCESS: LOCAL_SUCCESS_LEN} if local_server else WIRE_TAGS

    def feed(self, data) -> list:
        return [(tag, p if isinstance(p, bytes) else bytes(p))
                for tag, p in self.feed_views(data)]

    def feed_views(self, data) -> list:
        """As :meth:`feed`, but payloads of frames wholly inside ``data``
        are memoryview slices of it (no copy): ``data`` must not change
        while they are in use (pass ``bytes``)."""
        out = []
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = len(mv)
        pos = 0
        buf = self._buf
        if buf:
            # Finish the frame an earlier read left incomplete.
            if len(buf) < 4:
                k = min(4 - len(buf), n)
                buf += mv[:k]
                pos = k
                if len(buf) < 4:
                    return out
            (hdr,) = _HDR.unpack_from(buf, 0)
            tag = (hdr >> 24) - MPLEX_BASE
            length = hdr & 0xFFFFFF
            _check(tag, length, self._fixed)
            k = min(4 + length - len(buf), n - pos)
            buf += mv[pos:pos + k]
            pos += k
            if len(buf) < 4 + length:
                return out
            out.append((tag, bytes(buf[4:])))
            buf.clear()
        unpack = _HDR.unpack_from
        while n - pos >= 4:
            (hdr,) = unpack(mv, pos)
            tag = (hdr >> 24) - MPLEX_BASE
            length = hdr & 0xFFFFFF
            if tag != MSG_DATA:
                _check(tag, length, self._fixed)
            if n - pos - 4 < length:
                break
            out.append((tag, mv[pos + 4:pos + 4 + length]))
            pos += 4 + length
        if pos < n:
            buf += mv[pos:]
        return out

    def pending(self) -> int:
        return len(self._buf)


def _check(tag: int, length: int, table=WIRE_TAGS) -> None:
    if tag not in table:
        raise ProtocolError(f"unexpected tag {tag}", 12)
    fixed = table[tag]
    if fixed is not None and length != fixed:
        raise ProtocolError(f"invalid multi-message {tag}:{length}", 12)
    if tag == MSG_ERROR_EXIT and length not in (0, 4):
        raise ProtocolError(f"invalid multi-message {tag}:{length}", 12)
    if tag in TEXT_TAGS and length >= MAX_TEXT_MSG:
        raise ProtocolError(f"multiplexing overflow {tag}:{length}", 12)
