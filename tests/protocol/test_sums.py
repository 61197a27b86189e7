"""Sum head codec and checks, rsync's block size rule, the block sum list."""

from __future__ import annotations

import math
import random
import struct

import pytest

from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.constants import MAX_BLOCK_SIZE
from pysync.protocol.sums import (NULL_SUM_HEAD, SumHead, block_length, decode_block_sums,
                                  decode_sum_head, encode_block_sums, encode_sum_head,
                                  sum_head_for)


def head_bytes(count, blength, s2length, remainder) -> bytes:
    return struct.pack("<iiii", count, blength, s2length, remainder)


# --- head codec -------------------------------------------------------------------

def test_head_round_trip():
    head = SumHead(429, 700, 2, 400)
    wire = encode_sum_head(head)
    assert wire == head_bytes(429, 700, 2, 400)
    assert decode_sum_head(ReadBuffer(wire), 16) == head
    assert encode_sum_head(NULL_SUM_HEAD) == bytes(16)


def test_head_needs_all_sixteen_bytes():
    wire = head_bytes(3, 700, 2, 100)
    buf = ReadBuffer()
    for b in wire[:-1]:
        buf.feed(bytes([b]))
        with pytest.raises(NeedMore):
            buf.attempt(decode_sum_head, 16)
    buf.feed(wire[-1:])
    assert buf.attempt(decode_sum_head, 16) == SumHead(3, 700, 2, 100)


def test_head_helpers():
    head = SumHead(429, 700, 2, 400)
    assert head.file_length == 300_000
    assert head.block_len(0) == 700 and head.block_len(428) == 400
    assert SumHead(2, 700, 2, 0).block_len(1) == 700
    assert NULL_SUM_HEAD.file_length == 0
    assert SumHead(3, 700, 16, 0).compare_len(8) == 8
    with pytest.raises(Exception):
        head.count = 1  # frozen


@pytest.mark.parametrize("fields, digest_len, message", [
    ((-1, 700, 2, 0), 16, "Invalid checksum count -1 [sender]"),
    ((1, -1, 2, 0), 16, "Invalid block length -1 [sender]"),
    ((1, MAX_BLOCK_SIZE + 1, 2, 0), 16, f"Invalid block length {MAX_BLOCK_SIZE + 1} [sender]"),
    ((1, 0, 2, 0), 16, "Invalid zero block length [sender]"),
    ((1, 700, -1, 0), 16, "Invalid checksum length -1 [sender]"),
    ((1, 700, 17, 0), 16, "Invalid checksum length 17 [sender]"),
    ((1, 700, 17, 0), 20, "Invalid checksum length 17 [sender]"),  # sha1: cap stays 16
    ((1, 700, 17, 0), 8, "Invalid checksum length 17 [sender]"),
    ((1, 700, 2, 0), 1, "Invalid checksum length 2 [sender]"),  # 'none'
    ((1, 700, 2, -1), 16, "Invalid remainder length -1 [sender]"),
    ((1, 700, 2, 701), 16, "Invalid remainder length 701 [sender]"),
])
def test_head_rejects(fields, digest_len, message):
    with pytest.raises(ProtocolError) as err:
        decode_sum_head(ReadBuffer(head_bytes(*fields)), digest_len)
    assert err.value.code == 2
    assert str(err.value) == message


def test_head_rejects_early_without_waiting_for_the_rest():
    # rsync checks each field as it reads it.
    with pytest.raises(ProtocolError):
        decode_sum_head(ReadBuffer(struct.pack("<i", -5)), 16)


def test_head_who_tag():
    with pytest.raises(ProtocolError) as err:
        decode_sum_head(ReadBuffer(head_bytes(-2, 0, 0, 0)), 16, who="server sender")
    assert str(err.value) == "Invalid checksum count -2 [server sender]"


def test_head_accepts_limits():
    assert decode_sum_head(ReadBuffer(head_bytes(0, 0, 0, 0)), 16) == NULL_SUM_HEAD
    assert decode_sum_head(ReadBuffer(head_bytes(2, MAX_BLOCK_SIZE, 16, MAX_BLOCK_SIZE)), 16)
    assert decode_sum_head(ReadBuffer(head_bytes(2, 700, 16, 0)), 20).s2length == 16
    # 3.2.7-3.4.3 generators ask for 16 bytes of an 8-byte digest in the redo phase.
    assert decode_sum_head(ReadBuffer(head_bytes(2, 700, 16, 0)), 8).s2length == 16


def test_head_max_alloc():
    wire = head_bytes(60_000_000, 700, 16, 0)  # 1.44 GB of 24-byte block entries
    with pytest.raises(ProtocolError) as err:
        decode_sum_head(ReadBuffer(wire), 16)
    assert err.value.code == 22
    assert "max-alloc" in str(err.value)
    assert decode_sum_head(ReadBuffer(wire), 16, max_alloc=1 << 32).count == 60_000_000
    small = head_bytes(1000, 700, 2, 0)
    # rsync's my_alloc() test on its 24-byte struct sum_buf (the strong
    # sums are a separate, smaller array since the CVE-2024-12084 fix,
    # which Debian's 3.2.7 carries): fail when count >= max_alloc / 24.
    with pytest.raises(ProtocolError):
        decode_sum_head(ReadBuffer(small), 16, max_alloc=24_023)
    assert decode_sum_head(ReadBuffer(small), 16, max_alloc=24_024).count == 1000


# --- block size and strong-sum length -------------------------------------------------

def reference_block_length(n: int) -> int:
    # The same rule said differently: the largest multiple of 8 not above
    # sqrt(n), at least 700, and 128 KiB once 2^floor(log4 n) reaches it.
    if n <= 700 * 700:
        return 700
    if n >= 4 ** 17:
        return MAX_BLOCK_SIZE
    return max(700, math.isqrt(n) // 8 * 8)


def test_block_length_rule():
    rnd = random.Random(8)
    lengths = [0, 1, 700, 490_000, 490_001, 491_000, 1 << 20, (1 << 34) - 1, 1 << 34, 1 << 40]
    lengths += [rnd.randrange(1, 1 << rnd.randrange(1, 45)) for _ in range(3000)]
    for n in lengths:
        assert block_length(n) == reference_block_length(n), n
    assert block_length(10_000, 2048) == 2048  # -B wins


def test_protocol_md_example():
    # protocol.md §5.3 [verified]: the 300 000-byte old file is the basis.
    assert sum_head_for(300_000, 16) == SumHead(429, 700, 2, 400)
    assert sum_head_for(300_000, 16, redo=True) == SumHead(429, 700, 16, 400)
    assert sum_head_for(300_000, 8, redo=True).s2length == 8
    assert sum_head_for(300_000, 20, redo=True).s2length == 16


@pytest.mark.parametrize("length, expect", [
    (0, SumHead(0, 700, 2, 0)),
    (700, SumHead(1, 700, 2, 0)),
    (701, SumHead(2, 700, 2, 1)),
    (1_200_081, SumHead(1104, 1088, 2, 17)),  # a basis rsync 3.2.7 described so
    (10 << 30, SumHead(103_628, 103_616, 4, 3008)),
    (1 << 40, SumHead(1 << 23, MAX_BLOCK_SIZE, 6, 0)),
])
def test_sum_head_for(length, expect):
    assert sum_head_for(length, 16) == expect


def test_s2length_values():
    # hand-computed from generator.c's loop: b = 10 + 2*floor(log2 len),
    # minus one per halving of blength, s2 = (b + 1 - 32 + 7) / 8 (C division)
    assert sum_head_for(300_000, 16).s2length == 2      # b = 46 - 9 = 37 -> 1 -> 2
    assert sum_head_for(10 << 30, 16).s2length == 4     # b = 76 - 16 = 60 -> 4
    assert sum_head_for(1 << 40, 16).s2length == 6      # b = 90 - 17 = 73 -> 6
    assert sum_head_for(1 << 40, 8).s2length == 6
    assert sum_head_for(300_000, 1).s2length == 1       # clamped to the digest ('none')
    with pytest.raises(ValueError):  # more than 2^31 blocks
        sum_head_for(1 << 62, 16, block_size=16)
    assert sum_head_for(0, 16).s2length == 2


def test_sum_head_for_exact_multiple_and_block_size():
    assert sum_head_for(1400, 16) == SumHead(2, 700, 2, 0)
    assert sum_head_for(5000, 16, block_size=1024) == SumHead(5, 1024, 2, 904)
    with pytest.raises(ValueError):
        sum_head_for(-1, 16)


# --- block sums --------------------------------------------------------------------------

def test_block_sums_round_trip():
    rnd = random.Random(4)
    head = SumHead(50, 700, 3, 100)
    pairs = [(rnd.getrandbits(32), rnd.randbytes(3)) for _ in range(50)]
    wire = encode_block_sums(pairs)
    assert len(wire) == 50 * 7
    assert wire[:7] == struct.pack("<I", pairs[0][0]) + pairs[0][1]
    assert decode_block_sums(ReadBuffer(wire), head) == pairs


def test_block_sums_truncate_and_mask():
    wire = encode_block_sums([(-1, b"abcdef"), (5, b"123456")], s2length=2)
    assert wire == b"\xff\xff\xff\xffab\x05\x00\x00\x0012"
    with pytest.raises(ValueError):
        encode_block_sums([(1, b"a")], s2length=2)


def test_block_sums_need_more_and_empty():
    head = SumHead(2, 700, 2, 0)
    wire = encode_block_sums([(1, b"ab"), (2, b"cd")])
    with pytest.raises(NeedMore):
        decode_block_sums(ReadBuffer(wire[:-1]), head)
    assert decode_block_sums(ReadBuffer(b""), NULL_SUM_HEAD) == []
    assert decode_block_sums(ReadBuffer(encode_block_sums([(9, b"")])), SumHead(1, 700, 0, 0)) \
        == [(9, b"")]


# rsync 3.2.7's generator, phase 0, xxh128, seed -123456789, for the 4000-byte
# basis of test_tokens.py (see test_checksums.py for how it was captured).
GENERATOR_XXH128 = bytes.fromhex(
    "06000000bc02000002000000f4010000cdef457c1513efefc7b490f2ffef1bcc8fa20ff06fe3642f"
    "31f0e10d286d95aba5497159")


def test_decode_rsync_generator_sums():
    from pysync.protocol.checksums import get_checksum
    old = b"".join(b"%04d: the quick brown fox jumps over the lazy dog\n" % i for i in range(80))
    buf = ReadBuffer(GENERATOR_XXH128)
    head = decode_sum_head(buf, 16)
    assert head == sum_head_for(len(old), 16) == SumHead(6, 700, 2, 500)
    pairs = decode_block_sums(buf, head)
    assert len(buf) == 0
    cs = get_checksum("xxh128")
    for i, (weak, strong) in enumerate(pairs):
        assert strong == cs.block_sum(old[i * 700:(i + 1) * 700], -123456789)[:2]
    assert encode_sum_head(head) + encode_block_sums(pairs) == GENERATOR_XXH128
