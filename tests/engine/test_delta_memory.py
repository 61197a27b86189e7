"""The delta path's compact structures: the sender's block sums in flat
arrays (protocol.sums.BlockSums) and their lookup (matcher._BlockLookup),
the sender's reads straight into its search buffer, and the generator's
sums read through one reused buffer (engine/basis.py).  Each is checked
against a plain reference: the list of (weak, strong) pairs, a dict, a
search over the whole file at once, sums computed block by block."""

from __future__ import annotations

import os
import random
import threading

import pytest

from pysync import native
from pysync.engine import basis as basismod
from pysync.engine import matcher
from pysync.engine.matcher import MatchStats, _BlockLookup, send_delta
from pysync.protocol.buffer import NeedMore, ReadBuffer
from pysync.protocol.checksums import get_checksum
from pysync.protocol.sums import (BlockSums, SumHead, decode_block_sums, decode_block_sums_into,
                                  decode_sum_head, encode_block_sums, sum_head_for)
from pysync.protocol.tokens import TokenEncoder


# ---- BlockSums ---------------------------------------------------------------------

@pytest.mark.parametrize("s2length", [2, 3, 4, 7, 8, 16])
def test_block_sums_split_the_wire_pairs(s2length):
    rnd = random.Random(s2length)
    pairs = [(rnd.getrandbits(32), rnd.randbytes(s2length)) for _ in range(1000)]
    pairs[5] = (0, pairs[5][1])
    pairs[6] = (0xFFFFFFFF, pairs[6][1])
    raw = encode_block_sums(pairs)
    out = BlockSums(s2length)
    # In uneven slices, as the sender reads them.
    for a, b in ((0, 1), (1, 300), (300, 301), (301, 1000)):
        buf = ReadBuffer(raw[a * (4 + s2length):b * (4 + s2length)])
        decode_block_sums_into(buf, SumHead(b - a, 700, s2length, 0), out)
    assert len(out) == len(pairs)
    assert [out[i] for i in range(len(out))] == pairs
    assert out[-1] == pairs[-1]
    assert list(out.weaks) == [w for w, _ in pairs]
    assert all(out.strong(i, 2) == s[:2] for i, (_, s) in enumerate(pairs))
    assert decode_block_sums(ReadBuffer(raw), SumHead(1000, 700, s2length, 0)) == pairs
    assert [BlockSums.from_pairs(pairs, s2length)[i] for i in range(1000)] == pairs
    with pytest.raises(IndexError):
        out[1000]


def test_block_sums_wait_for_whole_slices():
    raw = encode_block_sums([(1, b"ab"), (2, b"cd")])
    out = BlockSums(2)
    buf = ReadBuffer(raw[:-1])
    with pytest.raises(NeedMore):
        buf.attempt(decode_block_sums_into, SumHead(2, 700, 2, 0), out)
    assert len(out) == 0 and len(out.strongs) == 0        # nothing taken half way
    with pytest.raises(ValueError):
        out.extend_raw(raw[:-1])
    with pytest.raises(ValueError):
        BlockSums.from_pairs([(1, b"abc"), (2, b"d")], 2)


# ---- the lookup ----------------------------------------------------------------------

@pytest.mark.parametrize("one_bucket", [False, True])
@pytest.mark.parametrize("shared", [1, 3, 8, 9, 40])
def test_lookup_names_the_lowest_block_with_both_sums(monkeypatch, shared, one_bucket):
    """Reference: the dict the search used before, weak -> {strong ->
    lowest block}.  ``shared`` blocks per weak sum (more than _SCAN_MOST
    takes the per-weak dict); ``one_bucket`` puts every block in one hash
    chain, so blocks of other weak sums sit in between."""
    if one_bucket:
        monkeypatch.setattr(matcher, "_HASH_MUL", 0)
    rnd = random.Random(shared)
    n = 160 if one_bucket else 600
    pool = [rnd.getrandbits(32) for _ in range(n // shared + 1)]
    weaks = [rnd.choice(pool) for _ in range(n)]
    strongs = [rnd.choice([b"aa", b"bb", b"cc", rnd.randbytes(2)]) for _ in range(n)]
    sums = BlockSums.from_pairs(zip(weaks, strongs), 2)
    ref: dict = {}
    for i, (w, s) in enumerate(zip(weaks, strongs)):
        ref.setdefault(w, {}).setdefault(s, i)
    for full in (n, n - 1):
        look = _BlockLookup(sums.weaks, full)
        for w in set(weaks[:full]):
            for s in {b"aa", b"bb", b"cc", b"zz", *strongs[:full]}:
                want = ref[w].get(s, -1) if full == n else _first(weaks, strongs, full, w, s)
                assert look.find(w, s, sums.strong, 2) == want
                assert look.find(w, s, sums.strong, 2) == want     # the cached group again
        assert look.find(pool[0] ^ 1, b"aa", sums.strong, 2) == -1


def _first(weaks, strongs, full, w, s):
    return next((i for i in range(full) if weaks[i] == w and strongs[i] == s), -1)


# ---- the sender's reads ---------------------------------------------------------------

def _ops(new: bytes, head, sums, ck, runs: bool, read_size=None, monkeypatch=None):
    """The delta as a list of ("lit", bytes) / ("blk", first, n) with
    neighbours merged (the split of literal data into calls is free), and
    the hasher's digest."""
    if read_size is not None:
        monkeypatch.setattr(matcher, "_ZEROS", bytes(read_size))
    ops = []

    def lit(d):
        if ops and ops[-1][0] == "lit":
            ops[-1] = ("lit", ops[-1][1] + bytes(d))
        else:
            ops.append(("lit", bytes(d)))

    def blocks(first, n, d):
        assert len(d) == sum(head.block_len(i) for i in range(first, first + n))
        if ops and ops[-1][0] == "blk" and ops[-1][1] + ops[-1][2] == first:
            ops[-1] = ("blk", ops[-1][1], ops[-1][2] + n)
        else:
            ops.append(("blk", first, n))

    r, w = os.pipe()
    feeder = threading.Thread(target=lambda: (os.write(w, new), os.close(w)))
    feeder.start()
    h = ck.file_hasher()
    stats = MatchStats()
    try:
        send_delta(r, head, sums, lambda d: ck.block_sum(d, 5), lit,
                   lambda i, d: blocks(i, 1, d), h, stats,
                   emit_blocks=blocks if runs else None)
    finally:
        feeder.join()
        os.close(r)
    return ops, h.digest(), stats.literal, stats.matched


def _pairs(old: bytes, head, ck):
    blen = head.blength
    return [(native.weak_checksum(old[i * blen:(i + 1) * blen]),
             ck.block_sum(old[i * blen:(i + 1) * blen], 5)[:head.s2length])
            for i in range(head.count)]


@pytest.mark.parametrize("runs", [False, True])
@pytest.mark.parametrize("read_size", [1, 333, 700, 701, 4096, 65_536])
def test_reads_of_any_size_find_the_same_blocks(monkeypatch, runs, read_size):
    """Blocks that straddle the edge of a read (any read size, smaller
    than a block too) are found as with reads as large as the pipe gives;
    the whole-file hash covers every byte once."""
    rnd = random.Random(read_size)
    ck = get_checksum("md5")
    blen = 700
    old = rnd.randbytes(300 * blen + 250)
    head = sum_head_for(len(old), ck.digest_len, blen)
    pairs = _pairs(old, head, ck)
    news = [old,
            old[:5000] + rnd.randbytes(77) + old[5000:150_000] + old[170_000:],
            rnd.randbytes(3) + old[:-500],
            old[:40_000] + old[40_000:40_000 + blen] * 3 + old[40_000:]]
    for new in news:
        ref = _ops(new, head, pairs, ck, runs, len(new) + 1, monkeypatch)
        got = _ops(new, head, BlockSums.from_pairs(pairs, head.s2length), ck, runs,
                   read_size, monkeypatch)
        assert got == ref
        h = ck.file_hasher()
        h.update(new)
        assert got[1] == h.digest()
        assert got[2] + got[3] == len(new)
        # The ops rebuild the new file from the basis.
        out = b"".join(op[1] if op[0] == "lit" else
                       old[op[1] * blen:min((op[1] + op[2]) * blen, len(old))] for op in got[0])
        assert out == new


def test_source_shorter_than_one_read_and_than_a_block():
    """A source shorter than the read size, and shorter than a block: all
    literal data, read once, hashed once."""
    ck = get_checksum("xxh128")
    old = random.Random(2).randbytes(10_000)
    head = sum_head_for(len(old), ck.digest_len, 4096)
    pairs = _pairs(old, head, ck)
    for new in (b"", b"x", old[:4095], old[:5000]):
        ops, digest, literal, matched = _ops(new, head, BlockSums.from_pairs(pairs, head.s2length),
                                             ck, True)
        h = ck.file_hasher()
        h.update(new)
        assert digest == h.digest() and literal + matched == len(new)
    ops, *_ = _ops(old[:4096 + 904], head, BlockSums.from_pairs(pairs, head.s2length), ck, True)
    assert ops[0] == ("blk", 0, 1)


# ---- the generator's sums -------------------------------------------------------------

class _Wire:
    def __init__(self):
        self.out = bytearray()
        self.sizes = []

    def write(self, data):
        self.out += data
        self.sizes.append(len(data))


class _Cfg:
    whole_file = False
    append = 0
    block_size = 0

    def __init__(self, ck, block_size):
        self.checksum = ck
        self.seed = 1234
        self.block_size = block_size


class _Gen:
    def __init__(self, ck, block_size):
        self.cfg = _Cfg(ck, block_size)
        self.wire = _Wire()


@pytest.mark.parametrize("size,blen", [(1, 700), (700, 700), (1_000_000, 700),
                                       (3 * 256 * 1024 + 5, 4096), (5_000_000, 0),
                                       (7_000_000, 700), (4096 * 256, 256)])
def test_generator_sums_through_one_buffer(tmp_path, size, blen):
    """Sums over many reads of the reused buffer, a short last block, a
    file of one block and of one byte: those of each block on its own.
    The writes are as they were with one read per MiB and a list of pairs
    (a write once 4096 sums wait at the end of a MiB), so the data frames
    on the wire do not change."""
    ck = get_checksum("md5")
    data = random.Random(size).randbytes(size)
    path = tmp_path / "basis"
    path.write_bytes(data)
    gen = _Gen(ck, blen)
    basismod.send_sums(gen, None, False, os.fsencode(path))
    head = _check_sums(gen.wire.out, data, ck, blen)
    per_mib, step = max(1, (1 << 20) // head.blength), 4 + head.s2length
    want, waiting = [16], 0
    for first in range(0, head.count, per_mib):
        waiting += min(per_mib, head.count - first)
        if waiting >= 4096:
            want.append(waiting * step)
            waiting = 0
    want.append(waiting * step)
    assert gen.wire.sizes == want


def test_generator_sums_of_a_basis_that_shrank(tmp_path, monkeypatch):
    """A basis shorter than its fstat said (it shrank in between) reads as
    zeros where it falls short, across the reused buffer's reads."""
    ck = get_checksum("xxh128")
    data = random.Random(9).randbytes(600_000)
    path = tmp_path / "basis"
    path.write_bytes(data[:333_333])
    real = os.fstat

    class _St:
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, len(data)

    monkeypatch.setattr(basismod.os, "fstat", lambda fd: _St(real(fd)))
    gen = _Gen(ck, 2048)
    basismod.send_sums(gen, None, False, os.fsencode(path))
    _check_sums(gen.wire.out, data[:333_333] + bytes(len(data) - 333_333), ck, 2048)


def _check_sums(raw: bytes, data: bytes, ck, block_size: int) -> None:
    buf = ReadBuffer(bytes(raw))
    head = decode_sum_head(buf, ck.digest_len)
    assert head == sum_head_for(len(data), ck.digest_len, block_size)
    pairs = decode_block_sums(buf, head)
    assert len(buf) == 0
    blen = head.blength
    want = [(native.weak_checksum(data[o:o + blen]), ck.block_sum(data[o:o + blen], 1234)[:head.s2length])
            for o in range(0, len(data), blen)]
    assert pairs == want
    assert len(pairs) == head.count
    return head


@pytest.mark.parametrize("drop_cache", [False, True])
def test_reads_from_a_file_with_and_without_drop_cache(tmp_path, monkeypatch, drop_cache):
    """The search reads a regular file through the --drop-cache reader
    (SourceReader.readinto) or plain readv, from the fd's offset: the
    same blocks either way, every byte hashed once."""
    monkeypatch.setattr(matcher, "_ZEROS", bytes(5000))
    rnd = random.Random(8)
    ck = get_checksum("xxh128")
    blen = 1024
    old = rnd.randbytes(200 * blen + 17)
    new = old[:30_000] + rnd.randbytes(999) + old[30_000:]
    head = sum_head_for(len(old), ck.digest_len, blen)
    sums = BlockSums.from_pairs(_pairs(old, head, ck), head.s2length)
    path = tmp_path / "src"
    path.write_bytes(b"skipped" + new)
    fd = os.open(path, os.O_RDONLY)
    ops = []
    try:
        os.lseek(fd, 7, os.SEEK_SET)
        h = ck.file_hasher()
        send_delta(fd, head, sums, lambda d: ck.block_sum(d, 5),
                   lambda d: ops.append(("lit", bytes(d))),
                   lambda i, d: ops.append(("blk", i, bytes(d))), h, MatchStats(),
                   drop_cache=drop_cache)
    finally:
        os.close(fd)
    out = b"".join(op[1] if op[0] == "lit" else op[2] for op in ops)
    assert out == new
    assert sum(1 for op in ops if op[0] == "blk") == 200     # all but the one cut, and the short last
    ref = ck.file_hasher()
    ref.update(new)
    assert h.digest() == ref.digest()
