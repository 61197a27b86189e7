"""The sender's delta search (match.c hash_search, in our own shape).

The receiver's block sums go into a native weak-sum table; the C search
rolls the weak checksum over a sliding window of the file and stops only
at weak hits, where Python checks the strong sum with one dict lookup
(weak -> {strong prefix -> block}), so equal weak sums cannot make the
search quadratic.  The file is read in chunks, never mapped, so memory
stays at one block plus one read chunk and a file truncated under us
cannot fault the process.
"""

from __future__ import annotations

import os
import threading

from .. import native
from ..io.cache import open_source_reader, read_chunks

__all__ = ["MatchStats", "send_delta", "send_whole"]

READ_CHUNK = 1 << 20
_local = threading.local()


class MatchStats:
    __slots__ = ("literal", "matched")

    def __init__(self):
        self.literal = 0
        self.matched = 0


def send_whole(fd: int, emit_literal, hasher, stats: MatchStats, drop_cache: bool = False) -> None:
    """No usable basis: the whole file as literal data."""
    if drop_cache:
        for chunk in read_chunks(fd, None, True):
            hasher.update(chunk)
            emit_literal(chunk)
            stats.literal += len(chunk)
        return
    # One buffer per thread, reused from file to file: emit_literal must be
    # done with a chunk (sent or copied) when it returns.
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    readv = os.readv
    while True:
        n = readv(fd, (buf,))
        if not n:
            return
        chunk = view[:n]
        hasher.update(chunk)
        emit_literal(chunk)
        stats.literal += n


def send_delta(fd: int, head, sums, strong_fn, emit_literal, emit_block, hasher,
               stats: MatchStats, drop_cache: bool = False) -> None:
    reader = open_source_reader(fd, drop_cache) if drop_cache else None
    try:
        _send_delta(fd, head, sums, strong_fn, emit_literal, emit_block, hasher, stats,
                    reader.read if reader is not None else (lambda n: os.read(fd, n)))
    finally:
        if reader is not None:
            reader.close()


def _send_delta(fd, head, sums, strong_fn, emit_literal, emit_block, hasher, stats, read) -> None:
    """Search ``fd`` for the blocks described by ``head``/``sums``
    (a list of (weak, strong) pairs) and emit literals and block matches.
    ``strong_fn(data) -> bytes`` gives a block's strong sum (at least
    head.s2length bytes)."""
    blen = head.blength
    # A 3.2.7 generator may ask for 16 bytes of an 8-byte digest: compare
    # only the bytes that exist.
    s2 = min(head.s2length, len(strong_fn(b"")))
    count = head.count
    last_short = head.remainder != 0
    full = count - 1 if last_short else count
    by_weak: dict[int, dict[bytes, int]] = {}
    for i in range(full):
        weak, strong = sums[i]
        by_weak.setdefault(weak, {}).setdefault(strong[:s2], i)
    table = native.WeakTable(list(by_weak))
    search = native.make_searcher(table)
    want = 0
    buf = bytearray()
    pos = lit = 0
    prev = None
    eof = False

    def literal(a: int, b: int) -> None:
        if b > a:
            data = bytes(buf[a:b])
            emit_literal(data)
            stats.literal += b - a

    while True:
        if len(buf) - pos < blen:
            if eof:
                break
            # Emit what can no longer match, keep one byte for rolling.
            literal(lit, pos)
            keep = pos - 1 if prev is not None and pos > 0 else pos
            del buf[:keep]
            pos -= keep
            lit = pos
            more = read(READ_CHUNK)
            if not more:
                eof = True
                continue
            hasher.update(more)
            buf += more
            continue
        if not by_weak:
            pos = len(buf) - blen + 1
            prev = None
            continue
        off, s1, s2sum = search(buf, pos, blen, prev)
        if off < 0:
            pos = len(buf) - blen + 1
            prev = (s1, s2sum)
            continue
        weak = (s1 & 0xFFFF) | ((s2sum & 0xFFFF) << 16)
        window = buf[off:off + blen]
        strong = strong_fn(window)[:s2]
        found = -1
        if want < full and sums[want][0] == weak and sums[want][1][:s2] == strong:
            found = want
        else:
            found = by_weak[weak].get(strong, -1)
        if found < 0:
            pos = off + 1
            prev = (s1, s2sum)
            continue
        literal(lit, off)
        emit_block(found, window)
        stats.matched += blen
        pos = lit = off + blen
        prev = None
        want = found + 1
    # The short last block can only match the file's last bytes.
    end = len(buf)
    if last_short and end - head.remainder >= lit:
        start = end - head.remainder
        tail = bytes(buf[start:end])
        weak, strong = sums[count - 1]
        if native.weak_checksum(tail) == weak and strong_fn(tail)[:s2] == strong[:s2]:
            literal(lit, start)
            emit_block(count - 1, tail)
            stats.matched += len(tail)
            return
    literal(lit, end)
