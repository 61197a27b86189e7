"""The -U access-time field of the file list (flist.c send_file_entry /
recv_file_entry with atimes): where it sits, when XMIT_SAME_ATIME spares
it, directories and hard-link followers, and the batch coder agreeing
with the one-entry coder.  (Interop with stock rsync, both ways, is in
tests/engine/test_meta_options.py.)"""

import random
import stat

import pytest

from pysync.protocol.buffer import NeedMore, ReadBuffer
from pysync.protocol.flist import EndOfList, FileEntry, FlistDecoder, FlistEncoder, FlistOptions, encode_end

U = FlistOptions(atimes=True)
T, A = 1_700_000_000, 1_500_000_000      # 0x6553F100, 0x59682F00


def _reg(name, atime, mode=0o100644, size=5, mtime=T):
    e = FileEntry(name, mode, size, mtime)
    e.atime = atime
    return e


def _decode_all(opts, wire):
    dec, buf, out = FlistDecoder(opts), ReadBuffer(wire), []
    while True:
        item = buf.attempt(dec.decode)
        if isinstance(item, EndOfList):
            return out
        out.append(item)


def test_bytes_of_an_atime_and_of_a_repeated_one():
    enc = FlistEncoder(U)
    root = FileEntry(b".", 0o40755, 4096, T)
    assert enc.encode(root) == enc_dir_bytes()
    a = enc.encode(_reg(b"a", A))
    # SAME_UID|SAME_GID|SAME_TIME (0x98, a two-byte varint), "a", size 5,
    # mode 0100644, then the atime as varlong(4): 59 00 2f 68.
    assert a == bytes.fromhex("8098 01 61 000500 a4810000 59002f68".replace(" ", ""))
    b = enc.encode(_reg(b"b", A))
    # ... plus SAME_MODE and SAME_ATIME (0x409a, a three-byte varint):
    # nothing after the size.
    assert b == bytes.fromhex("c09a40 01 62 000500".replace(" ", ""))
    assert enc.encode(_reg(b"c", A + 1)) == bytes.fromhex("809a 01 63 000500 59012f68".replace(" ", ""))


def enc_dir_bytes():
    # A directory has no atime: the entry is what it is without -U.
    return FlistEncoder(FlistOptions()).encode(FileEntry(b".", 0o40755, 4096, T))


def test_directories_carry_none_and_do_not_reset_the_previous_atime():
    entries = [_reg(b"a", A), FileEntry(b"d", 0o40755, 4096, T), _reg(b"d/x", A),
               _reg(b"l", A, mode=0o120777, size=1), FileEntry(b"z", 0o40700, 4096, T)]
    entries[3].link = b"a"
    enc = FlistEncoder(FlistOptions(atimes=True, links=True))
    wires = [enc.encode(e) for e in entries]
    assert b"\x59\x00\x2f\x68" in wires[0] and all(b"\x59\x00\x2f\x68" not in w for w in wires[1:])
    got = _decode_all(FlistOptions(atimes=True, links=True), b"".join(wires) + encode_end())
    assert [g.atime for g in got] == [A, 0, A, A, 0]
    assert [g.name for g in got] == [e.name for e in entries]


def test_hard_link_follower_takes_its_first_members_atime():
    o = FlistOptions(atimes=True, hard_links=True)
    first, other, follower, after = _reg(b"f", A), _reg(b"g", A + 7), _reg(b"h", A), _reg(b"i", A)
    first.dev, first.ino = 1, 10
    other.dev, other.ino = 1, 11
    follower.dev, follower.ino = 1, 10
    enc = FlistEncoder(o)
    wires = [enc.encode(e) for e in (first, other, follower, after)]
    # The follower's entry ends at its first member's index; its atime
    # (the first's) becomes the previous one: "i" sends none.
    assert wires[3][:3] == bytes.fromhex("c09a40")       # SAME_ATIME|SAME_MODE|SAME_TIME|...
    got = _decode_all(o, b"".join(wires) + encode_end())
    assert [g.atime for g in got] == [A, A + 7, A, A]
    assert got[2].hlink == 0


@pytest.mark.parametrize("seed", range(4))
def test_batch_coder_gives_the_same_bytes_and_entries(seed):
    rng = random.Random(seed)
    o = FlistOptions(atimes=True, uid=True, gid=True, links=True)
    entries = []
    for i in range(200):
        kind = rng.choice("ffffdl")
        mode = {"f": 0o100644, "d": 0o40755, "l": 0o120777}[kind]
        e = FileEntry(b"n%03d" % i, mode, rng.choice((0, 5, 1 << 33)), rng.choice((T, T + i, -5)),
                      uid=rng.choice((0, 1000)), gid=rng.choice((0, 100)),
                      link=b"t" if kind == "l" else None)
        if kind != "d":
            e.atime = rng.choice((A, A, A + i, 0, -86400, 1 << 34))
        entries.append(e)
    single = FlistEncoder(o)
    one = b"".join(single.encode(e) for e in entries)
    batch = FlistEncoder(o)
    assert b"".join(batch.encode_batch(entries[i:i + 33]) for i in range(0, 200, 33)) == one
    wire = one + encode_end()
    dec, buf, got, pos = FlistDecoder(o), ReadBuffer(), [], 0
    while not got or not isinstance(got[-1], EndOfList):
        try:
            got += buf.attempt(dec.decode_batch)
        except NeedMore:
            buf.feed(wire[pos:pos + 50])
            pos += 50
    assert [(g.name, g.atime, g.mtime) for g in got[:-1]] == \
        [(e.name, e.atime if not stat.S_ISDIR(e.mode) else 0, e.mtime) for e in entries]
