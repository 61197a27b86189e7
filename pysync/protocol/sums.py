"""The sum head and the block checksum list (protocol.md §5.3, §5.4).

The generator sends, for each file it wants, a sum head (four int32:
count, blength, s2length, remainder) and ``count`` pairs of a uint32 weak
sum and ``s2length`` bytes of strong sum; the sender echoes the head in
front of its token stream. This module owns the head's codec and checks,
rsync's choice of block size and strong-sum length, and the pair list.

Strong-sum length rule (our choice, documented in protocol.md §5.3):
a generator of rsync 3.2.7 to 3.4.3 asks for 16 strong-sum bytes in the
redo phase even when the negotiated digest is only 8 bytes long (xxh3,
xxh64), filling the rest with junk; rsync 3.4.0 to 3.4.3 senders then die.
We accept ``s2length`` up to ``min(16, digest_len)``, and up to 16 when
the digest is 8 bytes; the matcher then compares only
``min(s2length, digest_len)`` bytes (see :meth:`SumHead.compare_len`).
"""

from __future__ import annotations

import struct
import sys

from .buffer import ProtocolError, ReadBuffer
from .constants import (BLOCK_SIZE, BLOCKSUM_BIAS, MAX_BLOCK_SIZE, RERR_MALLOC, RERR_PROTOCOL,
                        SHORT_SUM_LENGTH, SUM_LENGTH)
from .ints import decode_int32

__all__ = [
    "SumHead", "NULL_SUM_HEAD", "DEFAULT_MAX_ALLOC",
    "encode_sum_head", "decode_sum_head", "max_s2length",
    "block_length", "sum_head_for",
    "encode_block_sums", "decode_block_sums", "BlockSums", "decode_block_sums_into",
]

# rsync's default --max-alloc (rsync.h DEFAULT_MAX_ALLOC): 1 GiB.
DEFAULT_MAX_ALLOC = 1 << 30
_INT32_MAX = 0x7FFFFFFF
_HEAD = struct.Struct("<iiii")


class SumHead:
    """count blocks of blength bytes, the last one remainder bytes (0 = full).

    An immutable value (equal and hashable by its four numbers), written
    out by hand: one is made per file, and a dataclass would be compiled at
    every start-up."""

    __slots__ = ("count", "blength", "s2length", "remainder")

    def __init__(self, count: int, blength: int, s2length: int, remainder: int):
        setter = object.__setattr__
        setter(self, "count", count)
        setter(self, "blength", blength)
        setter(self, "s2length", s2length)
        setter(self, "remainder", remainder)

    def _key(self) -> tuple:
        return (self.count, self.blength, self.s2length, self.remainder)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (f"SumHead(count={self.count!r}, blength={self.blength!r}, "
                f"s2length={self.s2length!r}, remainder={self.remainder!r})")

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete field {name!r}")

    @property
    def file_length(self) -> int:
        """Length of the basis file this head describes."""
        if not self.count:
            return 0
        return (self.count - 1) * self.blength + (self.remainder or self.blength)

    def block_len(self, index: int) -> int:
        """Length of block ``index`` (the last one may be short)."""
        if index == self.count - 1 and self.remainder:
            return self.remainder
        return self.blength

    def compare_len(self, digest_len: int) -> int:
        """How many strong-sum bytes a sender can actually compare."""
        return min(self.s2length, digest_len)


# "No basis / whole file": no blocks, the sender sends only literals.
NULL_SUM_HEAD = SumHead(0, 0, 0, 0)


def encode_sum_head(head: SumHead) -> bytes:
    # upstream: io.c:write_sum_head()
    return _HEAD.pack(head.count, head.blength, head.s2length, head.remainder)


def max_s2length(digest_len: int) -> int:
    """Largest s2length we accept from a peer for this digest length."""
    if digest_len == 8:
        return SUM_LENGTH  # 3.2.7-3.4.3 generators in the redo phase
    return min(SUM_LENGTH, digest_len)


# Size of one block entry in rsync's sender (struct sum_buf: offset, len,
# sum1, chain, flags, padded; the strong sums live in an array of their
# own since the CVE-2024-12084 fix, in Debian's 3.2.7 as in 3.4+), the
# unit of its --max-alloc check on a sum head.  Measured against the
# system rsync: -B700 on a 40 MB basis (57,143 blocks) fails at
# --max-alloc=1300k and passes at 1400k.
SUM_BUF_SIZE = 24


def decode_sum_head(buf: ReadBuffer, digest_len: int, *, who: str = "sender",
                    max_alloc: int = DEFAULT_MAX_ALLOC) -> SumHead:
    """Read a sum head and apply rsync 3.5.0's checks (exit code 2).

    ``who`` fills rsync's ``[%s]`` role tag in the messages. A head whose
    block list would need ``max_alloc`` bytes or more fails with code 22,
    as rsync's --max-alloc guard does.
    """
    # upstream: io.c:read_sum_head()
    count = decode_int32(buf)
    if count < 0:
        raise ProtocolError(f"Invalid checksum count {count} [{who}]", RERR_PROTOCOL)
    blength = decode_int32(buf)
    if blength < 0 or blength > MAX_BLOCK_SIZE:
        raise ProtocolError(f"Invalid block length {blength} [{who}]", RERR_PROTOCOL)
    if count and blength == 0:
        raise ProtocolError(f"Invalid zero block length [{who}]", RERR_PROTOCOL)
    s2length = decode_int32(buf)
    if s2length < 0 or s2length > max_s2length(digest_len):
        raise ProtocolError(f"Invalid checksum length {s2length} [{who}]", RERR_PROTOCOL)
    remainder = decode_int32(buf)
    if remainder < 0 or remainder > blength:
        raise ProtocolError(f"Invalid remainder length {remainder} [{who}]", RERR_PROTOCOL)
    # Judged as rsync does (sender.c receive_sums -> my_alloc): by the
    # memory a block entry takes, not by its bytes on the wire.
    if count and count >= max_alloc // SUM_BUF_SIZE:
        raise ProtocolError(f"[{who}] exceeded --max-alloc={max_alloc} setting", RERR_MALLOC)
    return SumHead(count, blength, s2length, remainder)


def block_length(file_len: int, block_size: int = 0) -> int:
    """rsync's block length for a basis of ``file_len`` bytes (protocol >= 30).

    ``block_size`` is ``-B``; when given it is used as is. Otherwise 700 up
    to 700*700 bytes, then the largest multiple of 8 whose square fits in
    the length, capped at 128 KiB and never below 700.
    """
    # upstream: generator.c:sum_sizes_sqroot()
    if block_size:
        return block_size
    if file_len <= BLOCK_SIZE * BLOCK_SIZE:
        return BLOCK_SIZE
    c = 1
    n = file_len >> 2
    while n:
        c <<= 1
        n >>= 2
    if c >= MAX_BLOCK_SIZE:
        return MAX_BLOCK_SIZE
    blength = 0
    while True:
        blength |= c
        if file_len < blength * blength:
            blength &= ~c
        c >>= 1
        if c < 8:
            break
    return max(blength, BLOCK_SIZE)


def _s2length(file_len: int, blength: int, digest_len: int, redo: bool) -> int:
    # upstream: generator.c:sum_sizes_sqroot()
    cap = min(SUM_LENGTH, digest_len)
    if redo:
        return cap
    b = BLOCKSUM_BIAS + 2 * (file_len.bit_length() - 1 if file_len > 0 else 0)
    c = blength >> 1
    while c and b:
        b -= 1
        c >>= 1
    n = b + 1 - 32 + 7
    s2 = n // 8 if n >= 0 else -((-n) // 8)  # C division truncates toward zero
    return min(max(s2, SHORT_SUM_LENGTH), cap)


def sum_head_for(file_len: int, digest_len: int, block_size: int = 0,
                 redo: bool = False) -> SumHead:
    """The sum head a generator sends for a basis of ``file_len`` bytes.

    ``redo`` (the redo phase, or --append-verify) asks for the full
    ``min(16, digest_len)`` strong-sum bytes.
    """
    if file_len < 0:
        raise ValueError("negative file length")
    blength = block_length(file_len, block_size)
    s2length = _s2length(file_len, blength, digest_len, redo)
    remainder = file_len % blength
    count = file_len // blength + (remainder != 0)
    if count > _INT32_MAX:
        raise ValueError(f"file of {file_len} bytes needs more than 2^31 blocks")
    return SumHead(count, blength, s2length, remainder)


def encode_block_sums(pairs, s2length: int | None = None) -> bytes:
    """``(weak, strong)`` pairs as sent: uint32 LE weak, then the strong bytes.

    With ``s2length`` each strong sum is cut to that length (it must be
    at least that long); without it the strong sums are sent as given.
    """
    # upstream: generator.c:generate_and_send_sums()
    pack = struct.Struct("<I").pack
    parts = []
    if s2length is None:
        for weak, strong in pairs:
            parts.append(pack(weak & 0xFFFFFFFF))
            parts.append(strong)
    else:
        for weak, strong in pairs:
            if len(strong) < s2length:
                raise ValueError("strong sum shorter than s2length")
            parts.append(pack(weak & 0xFFFFFFFF))
            parts.append(strong[:s2length])
    return b"".join(parts)


def decode_block_sums(buf: ReadBuffer, head: SumHead) -> list:
    """The ``head.count`` pairs ``(weak: int, strong: bytes)`` after a head."""
    # upstream: sender.c:receive_sums()
    if not head.count:
        return []
    fmt = struct.Struct(f"<I{head.s2length}s")
    raw = buf.take(head.count * fmt.size)
    return list(fmt.iter_unpack(raw))


class BlockSums:
    """A file's block sums in two flat arrays, as the sender keeps them:
    ``weaks`` (``array('I')``) and ``strongs`` (one bytearray, block ``i``'s
    strong sum at ``i * stride``, ``stride`` = the head's s2length).  A
    list of ``(weak, strong)`` tuples costs ~150 bytes of Python objects
    per block (16,384 blocks for a 256 MiB file); these cost 4 + s2length.

    Indexing gives the ``(weak, strong)`` pair, as the list did."""

    __slots__ = ("weaks", "strongs", "stride")

    def __init__(self, stride: int):
        from array import array     # (here: a run that sends no delta never loads it)
        self.weaks = array("I")
        self.strongs = bytearray()
        self.stride = stride

    @classmethod
    def from_pairs(cls, pairs, stride: int) -> "BlockSums":
        """From ``(weak, strong)`` pairs; each strong sum is cut to
        ``stride`` bytes (it must be at least that long)."""
        out = cls(stride)
        for weak, strong in pairs:
            if len(strong) < stride:
                raise ValueError("strong sum shorter than the stride")
            out.weaks.append(weak)
            out.strongs += strong[:stride]
        return out

    def __len__(self) -> int:
        return len(self.weaks)

    def __getitem__(self, i: int) -> tuple:
        if i < 0:
            i += len(self.weaks)
        weak = self.weaks[i]        # IndexError past the end
        at = i * self.stride
        return weak, bytes(self.strongs[at:at + self.stride])

    def strong(self, i: int, n: int):
        """The first ``n`` bytes of block ``i``'s strong sum (a bytearray,
        equal to the bytes it holds)."""
        at = i * self.stride
        return self.strongs[at:at + n]

    def extend_raw(self, raw) -> None:
        """Append the pairs of ``raw``, as they come on the wire (uint32 LE
        weak, then ``stride`` strong-sum bytes, per block).  Split with
        strided slices: no Python object per block."""
        step = 4 + self.stride
        n = len(raw) // step
        if n * step != len(raw):
            raise ValueError("block sums must be whole (weak, strong) pairs")
        weak_bytes = bytearray(4 * n)
        for k in range(4):
            weak_bytes[k::4] = raw[k::step]
        from array import array
        weaks = array("I")
        weaks.frombytes(weak_bytes)
        if sys.byteorder == "big":
            weaks.byteswap()
        self.weaks += weaks
        strong_bytes = bytearray(self.stride * n)
        for k in range(self.stride):
            strong_bytes[k::self.stride] = raw[4 + k::step]
        self.strongs += strong_bytes


def decode_block_sums_into(buf: ReadBuffer, head: SumHead, out: BlockSums) -> None:
    """As :func:`decode_block_sums`, appending to ``out`` (whose stride is
    ``head.s2length``)."""
    if head.count:
        out.extend_raw(buf.take(head.count * (4 + head.s2length)))
