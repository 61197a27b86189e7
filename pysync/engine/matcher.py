"""The sender's delta search (match.c hash_search, in our own shape).

The receiver's block sums go into a native weak-sum table; the C search
rolls the weak checksum over a sliding window of the file and stops only
at weak hits, where Python finds the block by weak sum in a hash chain
and checks the strong sum (a weak sum shared by many blocks gets its own
strong -> block dict, so equal weak sums cannot make the search
quadratic).  The sums and the chains are flat arrays
(protocol.sums.BlockSums, _BlockLookup): no Python object per block.  The
file is read in chunks straight into the search buffer, never mapped, so
memory stays at one block plus one read chunk and a file truncated under
us cannot fault the process.
"""

from __future__ import annotations

import os
import threading
from array import array

from .. import native
from ..io.cache import open_source_reader, read_chunks
from ..protocol.sums import BlockSums

__all__ = ["MatchStats", "send_delta", "send_whole", "send_append"]

READ_CHUNK = 256 << 10      # the delta search's reads
# A whole file is sent in reads of this size: each read's literal data is
# one write to the wire, and the data frames follow the writes.
WHOLE_CHUNK = 1 << 20
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
        buf = _local.buf = bytearray(WHOLE_CHUNK)
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


def send_append(fd: int, kept: int, verify: bool, emit_literal, hasher, stats: MatchStats,
                drop_cache: bool = False) -> None:
    """--append / --append-verify (match.c match_sums in append mode): the
    receiver keeps its first ``kept`` bytes; the rest goes as literal data.
    With verify the kept bytes count in the whole-file checksum too."""
    kept = min(kept, os.fstat(fd).st_size)
    if verify:
        done = 0
        while done < kept:
            chunk = os.pread(fd, min(READ_CHUNK, kept - done), done)
            if not chunk:
                break
            hasher.update(chunk)
            done += len(chunk)
    os.lseek(fd, kept, os.SEEK_SET)
    send_whole(fd, emit_literal, hasher, stats, drop_cache)


def send_delta(fd: int, head, sums, strong_fn, emit_literal, emit_block, hasher,
               stats: MatchStats, drop_cache: bool = False, inplace: bool = False,
               emit_blocks=None) -> None:
    """``inplace``: the receiver rebuilds the file over its own basis, so no
    match may name basis data it has already overwritten (see _InPlace).
    ``emit_blocks(first, n, data)``, if given, takes a run of ``n`` blocks
    found one after another (``data``: their bytes, a view valid during the
    call) in place of ``n`` calls of ``emit_block``.  ``sums``: a
    protocol.sums.BlockSums, or a list of (weak, strong) pairs."""
    if not isinstance(sums, BlockSums):
        sums = BlockSums.from_pairs(sums, head.s2length)
    reader = open_source_reader(fd, drop_cache) if drop_cache else None
    try:
        _send_delta(fd, head, sums, strong_fn, emit_literal, emit_block, hasher, stats,
                    reader.readinto if reader is not None else (lambda view: os.readv(fd, (view,))),
                    inplace, emit_blocks)
    finally:
        if reader is not None:
            reader.close()


class _InPlace:
    """Which block a match may name when the receiver writes over its basis
    (upstream: match.c:hash_search(), updating_basis_file).

    The receiver writes the new file front to back into the basis itself,
    so when the sender's search is at offset ``off`` the basis bytes before
    ``off`` are gone, except where a block was found at its own offset: the
    receiver skips writing those, so they stay usable.  A block found at the
    current offset is preferred to any other copy of the same data; and a
    run of zeros is moved to the next block boundary when the data there
    matches too (the bytes in between go as literals), so that long zero
    runs become blocks at their own offsets.
    """

    __slots__ = ("sums", "blen", "full", "s2", "file_len", "ahead", "kept", "same")

    def __init__(self, sums, full: int, blen: int, s2: int, file_len: int):
        self.sums = sums
        self.blen = blen
        self.full = full
        self.s2 = s2
        self.file_len = file_len
        # (weak, strong) -> block numbers, highest first: the ones behind
        # the search are popped off the end for good.
        self.ahead: dict[tuple, list] = {}
        for i in range(full - 1, -1, -1):
            weak, strong = sums[i]
            self.ahead.setdefault((weak, strong[:s2]), []).append(i)
        self.kept: set = set()            # blocks found at their own offset
        self.same: dict[tuple, int] = {}  # (weak, strong) -> one of those

    def choose(self, weak: int, strong: bytes, off: int, want: int, same_at) -> tuple:
        """(block, offset of the match) for the window at file offset
        ``off``; block -1 if none may be named.  ``same_at(pos)`` says
        whether the source window at ``pos`` has these sums too."""
        key = (weak, strong)
        ahead = self.ahead.get(key)
        if ahead is None:
            return -1, off
        blen = self.blen
        while ahead and ahead[-1] * blen < off:
            ahead.pop()
        if not ahead and key not in self.same:
            return -1, off
        aligned = -(-off // blen) * blen
        if ahead and ahead[-1] * blen == aligned and \
                (aligned == off or (weak == 0 and aligned + blen <= self.file_len
                                    and same_at(aligned))):
            i = ahead.pop()
            self.kept.add(i)
            self.same.setdefault(key, i)
            return i, aligned
        if want < self.full and (want * blen >= off or want in self.kept):
            w, st = self.sums[want]
            if w == weak and st[:self.s2] == strong:
                return want, off
        if ahead:
            return ahead[-1], off
        return self.same[key], off

    def allows_last(self, last: int, start: int) -> bool:
        return last * self.blen >= start


class _BlockLookup:
    """Which block a window with a given weak and strong sum is: the lowest
    numbered one with both (match.c takes the first in its hash chain).

    Chained hashing in two flat arrays, 4 bytes a bucket and a block, no
    Python object per block: ``heads[bucket]`` is the lowest block whose
    weak sum hashes there, ``nxt[i]`` the next one after block ``i`` (-1
    ends a chain), so a chain runs in block order.  A weak sum shared by
    more than ``_SCAN_MOST`` blocks gets a strong -> block dict on its
    first lookup."""

    __slots__ = ("weaks", "heads", "nxt", "shift", "groups")

    def __init__(self, weaks, full: int):
        bits = max(4, (2 * full - 1).bit_length())
        self.shift = shift = 32 - bits
        self.weaks = weaks
        self.heads = heads = array("i", [-1]) * (1 << bits)
        self.nxt = nxt = array("i", [-1]) * full
        for i in range(full - 1, -1, -1):
            b = ((weaks[i] * _HASH_MUL) & 0xFFFFFFFF) >> shift
            nxt[i] = heads[b]
            heads[b] = i
        self.groups: dict = {}

    def find(self, weak: int, strong, strong_of, s2: int) -> int:
        """The block, or -1 if none with this weak sum has this strong sum."""
        if self.groups:
            group = self.groups.get(weak)
            if group is not None:
                return group.get(bytes(strong), -1)
        weaks, nxt = self.weaks, self.nxt
        i = self.heads[((weak * _HASH_MUL) & 0xFFFFFFFF) >> self.shift]
        seen = 0
        while i >= 0:
            if weaks[i] == weak:
                if seen == _SCAN_MOST:
                    return self._group(weak, strong_of, s2).get(bytes(strong), -1)
                if strong_of(i, s2) == strong:
                    return i
                seen += 1
            i = nxt[i]
        return -1

    def _group(self, weak: int, strong_of, s2: int) -> dict:
        """The strong -> lowest block dict of all the blocks with ``weak``."""
        weaks, nxt = self.weaks, self.nxt
        group: dict = {}
        i = self.heads[((weak * _HASH_MUL) & 0xFFFFFFFF) >> self.shift]
        while i >= 0:
            if weaks[i] == weak:
                group.setdefault(bytes(strong_of(i, s2)), i)
            i = nxt[i]
        self.groups[weak] = group
        return group


# Multiplier of the chains' hash (the golden ratio): a weak sum's low bits
# (s1) cluster, so they are mixed rather than taken as they are.
_HASH_MUL = 0x9E3779B1
# Blocks of one weak sum compared one by one before they get a dict.
_SCAN_MOST = 8


# What the buffer grows by before a read into its end (READ_CHUNK zero
# bytes), made on the first search: a process that never searches (a
# receiver) does not keep it.
_ZEROS = None


def _read_room() -> bytes:
    global _ZEROS
    if _ZEROS is None:
        _ZEROS = bytes(READ_CHUNK)
    return _ZEROS


def _send_delta(fd, head, sums, strong_fn, emit_literal, emit_block, hasher, stats, read,
                inplace=False, emit_blocks=None) -> None:
    """Search ``fd`` for the blocks described by ``head``/``sums``
    (a BlockSums) and emit literals and block matches.
    ``strong_fn(data) -> bytes`` gives a block's strong sum (at least
    head.s2length bytes); ``read(view) -> n`` reads the file's next bytes
    into a writable buffer (0 at the end)."""
    blen = head.blength
    # A 3.2.7 generator may ask for 16 bytes of an 8-byte digest: compare
    # only the bytes that exist.
    s2 = min(head.s2length, len(strong_fn(b"")))
    count = head.count
    last_short = head.remainder != 0
    full = count - 1 if last_short else count
    weaks = sums.weaks
    strong_of = sums.strong
    lookup = _BlockLookup(weaks, full) if not inplace else None
    table = native.WeakTable(weaks[:full] if full < len(weaks) else weaks)
    chooser = _InPlace(sums, full, blen, s2, os.fstat(fd).st_size) if inplace else None
    # In-place matches may look one block ahead (_InPlace's zero runs).
    need = 2 * blen if inplace else blen
    search = native.make_searcher(table)
    # After a match the data most often goes on with the blocks that follow
    # it: check whole runs of them at once (see _block_run).
    runner = None
    if chooser is None and emit_blocks is not None and full and native.BLOCK_RUNS:
        runner = native.make_block_runner(weaks[:full] if full < len(weaks) else weaks)
    want = 0
    room = _read_room()
    buf = bytearray()
    base = 0                # file offset of buf[0]
    pos = lit = 0
    prev = None
    eof = False

    def literal(a: int, b: int) -> None:
        if b > a:
            data = bytes(buf[a:b])
            emit_literal(data)
            stats.literal += b - a

    def same_at(file_pos: int) -> bool:
        w = buf[file_pos - base:file_pos - base + blen]
        return len(w) == blen and native.weak_checksum(w) == weak and strong_fn(w)[:s2] == strong

    while True:
        if len(buf) - pos < need and not eof:
            # Emit what can no longer match, keep one byte for rolling.
            literal(lit, pos)
            keep = pos - 1 if prev is not None and pos > 0 else pos
            del buf[:keep]
            base += keep
            pos -= keep
            lit = pos
            # Read straight onto the end of the buffer: no chunk-sized
            # bytes object next to it.
            end = len(buf)
            buf += room
            with memoryview(buf) as whole, whole[end:] as space:
                n = read(space)
                if n:
                    with space[:n] as more:
                        hasher.update(more)
            del buf[end + n:]
            if not n:
                eof = True
            continue
        if len(buf) - pos < blen:
            break
        if not full:
            pos = len(buf) - blen + 1
            prev = None
            continue
        if runner is not None and prev is None and want < full:
            n = _block_run(buf, pos, blen, want, runner, strong_of, strong_fn, s2)
            if n:
                literal(lit, pos)
                with memoryview(buf) as view:
                    emit_blocks(want, n, view[pos:pos + n * blen])
                stats.matched += n * blen
                pos = lit = pos + n * blen
                want += n
                continue
        off, s1, s2sum = search(buf, pos, blen, prev)
        if off < 0:
            pos = len(buf) - blen + 1
            prev = (s1, s2sum)
            continue
        if len(buf) - off < need and not eof:
            pos, prev = off, None        # read on first: the choice may look ahead
            continue
        weak = (s1 & 0xFFFF) | ((s2sum & 0xFFFF) << 16)
        window = buf[off:off + blen]
        strong = strong_fn(window)[:s2]
        found = -1
        if chooser is not None:
            found, at = chooser.choose(weak, strong, base + off, want, same_at)
            if at != base + off:
                off = at - base
                window = buf[off:off + blen]
        elif want < full and weaks[want] == weak and strong_of(want, s2) == strong:
            found = want
        else:
            found = lookup.find(weak, strong, strong_of, s2)
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
    if last_short and end - head.remainder >= lit and \
            (chooser is None or chooser.allows_last(count - 1, base + end - head.remainder)):
        start = end - head.remainder
        tail = bytes(buf[start:end])
        if native.weak_checksum(tail) == weaks[count - 1] and \
                strong_fn(tail)[:s2] == strong_of(count - 1, s2):
            literal(lit, start)
            emit_block(count - 1, tail)
            stats.matched += len(tail)
            return
    literal(lit, end)


# Blocks checked per native call of the run check.
_RUN_MOST = 256


def _block_run(buf, pos: int, blen: int, want: int, runner, strong_of, strong_fn, s2: int) -> int:
    """How many blocks from ``want`` on the data at ``pos`` goes on
    matching, one after another (weak sums in C, then the strong sums):
    exactly the blocks the search would find there one at a time, since a
    window whose sums are block ``want``'s is taken as that block before
    any other."""
    n = runner(buf, pos, blen, want, _RUN_MOST)
    if not n:
        return 0
    with memoryview(buf) as view:
        for j in range(n):
            off = pos + j * blen
            if strong_fn(view[off:off + blen])[:s2] != strong_of(want + j, s2):
                return j
    return n
