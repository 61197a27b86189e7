"""File-index (NDX) codec for protocol >= 30 (io.c write_ndx/read_ndx).

Each direction of a connection keeps its own running state: one
``NdxEncoder`` for everything a side writes, one ``NdxDecoder`` for
everything it reads.  Positive indices are sent as a difference to the
previous positive one, negative ones (other than NDX_DONE) after an 0xFF
byte as a difference to the previous negated negative one.
"""

from __future__ import annotations

from .buffer import ProtocolError, ReadBuffer
from .constants import NDX_DONE

__all__ = ["NdxEncoder", "NdxDecoder"]


class NdxEncoder:
    __slots__ = ("prev_positive", "prev_negative")

    def __init__(self):
        self.prev_positive = -1
        self.prev_negative = 1

    def encode(self, ndx: int) -> bytes:
        if ndx == NDX_DONE:
            return b"\x00"
        out = bytearray()
        if ndx >= 0:
            diff = ndx - self.prev_positive
            self.prev_positive = ndx
        else:
            out.append(0xFF)
            ndx = -ndx
            diff = ndx - self.prev_negative
            self.prev_negative = ndx
        if 0 < diff < 0xFE:
            out.append(diff)
        elif diff < 0 or diff > 0x7FFF:
            out += bytes([0xFE, (ndx >> 24) | 0x80, ndx & 0xFF, (ndx >> 8) & 0xFF, (ndx >> 16) & 0xFF])
        else:
            out += bytes([0xFE, diff >> 8, diff & 0xFF])
        return bytes(out)


class NdxDecoder:
    __slots__ = ("prev_positive", "prev_negative")

    def __init__(self):
        self.prev_positive = -1
        self.prev_negative = 1

    def decode(self, buf: ReadBuffer) -> int:
        """Decode one ndx; on NeedMore the state is unchanged."""
        b = buf.byte()
        negative = False
        if b == 0xFF:
            negative = True
            b = buf.byte()
        elif b == 0:
            return NDX_DONE
        prev = self.prev_negative if negative else self.prev_positive
        if b == 0xFE:
            hi, lo = buf.take(2)
            if hi & 0x80:
                rest = buf.take(2)
                num = lo | (rest[0] << 8) | (rest[1] << 16) | ((hi & 0x7F) << 24)
            else:
                num = (hi << 8) + lo + prev
        else:
            num = b + prev
        if num < 0 or num > 0x7FFFFFFF:
            raise ProtocolError(f"Invalid file index: {num}", 2)
        if negative:
            self.prev_negative = num
            return -num
        self.prev_positive = num
        return num
