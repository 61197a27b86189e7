"""The batched file-list codec (the fast paths) against the entry-by-entry
one: same bytes out of the encoder, same entries and state out of the
decoder, for random lists under every option set, fed whole and in pieces."""

import random
import stat

import pytest

from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.flist import (EndOfList, FileEntry, FlistDecoder, FlistEncoder,
                                   FlistOptions, encode_end)

OPTION_SETS = [
    FlistOptions(),
    FlistOptions(uid=True, gid=True, links=True, devices=True, specials=True),
    FlistOptions(uid=True, gid=True, links=True, hard_links=True, devices=True),
    FlistOptions(links=True, checksum_len=16),
    FlistOptions(uid=True, links=True, relative=True, id0_names=True),
]


def _random_entries(rng, n):
    out = []
    dirs = [b"."]
    for i in range(n):
        kind = rng.choice("fffffddlcpx")
        parent = rng.choice(dirs)
        base = bytes(rng.choice(b"abc./-_ \xff") for _ in range(rng.choice((1, 3, 8, 300))))
        base = base.replace(b"/", b"_")
        if base in (b".", b".."):
            base = b"n" + base
        name = base if parent == b"." else parent + b"/" + base
        mtime = rng.choice((0, 1_700_000_000, 1_700_000_000 + i, -86400 * 400, 1 << 33))
        # nsec in every varint length (1 to 5 bytes, the fast paths' edges)
        nsec = rng.choice((0, 0, 123456789, 1, 0x7F, 0x80, 0xFF, 0x3FFF, 0x4000, 0x1FFFFF,
                           0x200000, 0xFFFFFFF, 0x10000000, 999_999_999))
        size = rng.choice((0, 5, 4096, 0x7FFFFF, 0x800000, 1 << 40))
        uid = rng.choice((0, 1000, 1000, 70000))
        gid = rng.choice((0, 100, 100, 1 << 31))
        if kind == "d":
            e = FileEntry(name, stat.S_IFDIR | 0o755, 0, mtime, nsec, uid, gid)
            dirs.append(name)
        elif kind == "l":
            e = FileEntry(name, stat.S_IFLNK | 0o777, 9, mtime, nsec, uid, gid,
                          link=b"target/" + base[:20])
        elif kind == "c":
            e = FileEntry(name, stat.S_IFCHR | 0o600, 0, mtime, 0, uid, gid, rdev=(rng.choice((1, 8)), 3))
        elif kind == "p":
            e = FileEntry(name, stat.S_IFIFO | 0o644, 0, mtime, 0, uid, gid)
        else:
            e = FileEntry(name, stat.S_IFREG | rng.choice((0o644, 0o600)), size, mtime, nsec,
                          uid, gid, sum=bytes(rng.getrandbits(8) for _ in range(16)))
        e.dev, e.ino = 1, i
        regs = [r for r in out[-20:] if stat.S_ISREG(r.mode)]
        if kind == "f" and regs and rng.random() < 0.2:
            # A hard link: same inode, so the same attributes.
            r = rng.choice(regs)
            e = FileEntry(name, r.mode, r.size, r.mtime, r.nsec, r.uid, r.gid, sum=r.sum)
            e.dev, e.ino = r.dev, r.ino
        out.append(e)
    return out


def _fields(e):
    if isinstance(e, EndOfList):
        return ("end", e.io_error)
    return (e.name, e.mode, e.size, e.mtime, e.nsec, e.uid, e.gid, e.rdev, e.link, e.sum,
            e.xflags, e.hlink)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("oi", range(len(OPTION_SETS)))
def test_batch_matches_single(seed, oi):
    o = OPTION_SETS[oi]
    rng = random.Random(seed * 31 + oi)
    entries = _random_entries(rng, 300)
    one = FlistEncoder(o)
    a = b"".join(one.encode(e) for e in entries)
    for e in entries:
        e.hlink = None
    batch = FlistEncoder(o)
    b = b"".join(batch.encode_batch(entries[i:i + 37]) for i in range(0, len(entries), 37))
    assert a == b
    wire = a + encode_end(0)

    ref = FlistDecoder(o)
    rb = ReadBuffer(wire)
    expect = []
    while True:
        item = rb.attempt(ref.decode)
        expect.append(_fields(item))
        if isinstance(item, EndOfList):
            break

    for step in (len(wire), 1, 7, 250):
        dec = FlistDecoder(o)
        buf = ReadBuffer()
        got = []
        pos = 0
        while not got or got[-1][0] != "end":
            try:
                items = buf.attempt(dec.decode_batch)
            except NeedMore:
                assert pos < len(wire)
                buf.feed(wire[pos:pos + step])
                pos += step
                continue
            assert items
            got.extend(_fields(i) for i in items)
        assert got == expect
        assert (dec.lastname, dec.mode, dec.mtime, dec.uid, dec.gid) == \
               (ref.lastname, ref.mode, ref.mtime, ref.uid, ref.gid)


@pytest.mark.parametrize("bad", [b"/etc/passwd", b"a/../../x", b"..", b"a/./b", b"a//b", b"x/"])
def test_batch_cleans_and_refuses_names_like_single(bad):
    o = FlistOptions()
    wire = FlistEncoder(o).encode(FileEntry(bad, stat.S_IFREG | 0o644, 1, 1_700_000_000)) + encode_end()
    outcomes = []
    for fn in ("decode", "decode_batch"):
        dec = FlistDecoder(o)
        try:
            r = ReadBuffer(wire).attempt(getattr(dec, fn))
            r = r[0] if isinstance(r, list) else r
            outcomes.append(("ok", r.name))
        except ProtocolError as e:
            outcomes.append(("error", str(e), e.code))
    assert outcomes[0] == outcomes[1]


def test_batch_refuses_bad_mode_and_nonexistent_hlink_like_single():
    o = FlistOptions(hard_links=True)
    enc = FlistEncoder(o)
    good = enc.encode(FileEntry(b"a", stat.S_IFREG | 0o644, 1, 5))
    bad_mode = bytearray(good)
    # Same entry with an impossible file type in the mode field.
    bad_mode[-4:] = (0o170644).to_bytes(4, "little")
    for wire in (bytes(bad_mode) + encode_end(),):
        for fn in ("decode", "decode_batch"):
            with pytest.raises(ProtocolError):
                ReadBuffer(wire).attempt(getattr(FlistDecoder(o), fn))


@pytest.mark.parametrize("nsec_bytes", [b"\xf0\xff\xff\xff\xff", b"\xf0\x00\xca\x9a\x3b",
                                        b"\xf0\xff\xc9\x9a\x3b", b"\xe0\x00\x00\x00"])
def test_batch_reads_nsec_like_single(nsec_bytes):
    # A regular file with XMIT_MOD_NSEC (a two-byte xflags varint) and the
    # nsec varint given, out of range (negative, 10**9) or not: the batch
    # decoder gives what the one-by-one decoder gives, or refuses alike.
    o = FlistOptions()
    wire = (b"\xa0\x00" + b"\x01f" + b"\x00\x05\x00" + b"\x00\x00\x00\x00" + nsec_bytes
            + (stat.S_IFREG | 0o644).to_bytes(4, "little") + encode_end(0))
    outcomes = []
    for decode in (lambda d, b: d.decode(b), lambda d, b: d.decode_batch(b)[0]):
        try:
            outcomes.append(_fields(decode(FlistDecoder(o), ReadBuffer(wire))))
        except ProtocolError as e:
            outcomes.append(("error", str(e)))
    assert outcomes[0] == outcomes[1]


def test_sort_key_orders_like_component_tuples():
    from pysync.protocol.flist_sort import _sort_key_reference, sort_key
    rng = random.Random(7)
    alphabet = [b"a", b"b", b"-", b".", b"/", b"\xff", b"\x01", b"ab", b"a-"]
    names = {b"."}
    for _ in range(3000):
        n = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        n = b"/".join(c for c in n.split(b"/") if c) or b"x"
        names.add(n)
    items = [(n, rng.random() < 0.4) for n in names]
    by_bytes = sorted(items, key=lambda x: sort_key(*x))
    by_tuple = sorted(items, key=lambda x: _sort_key_reference(*x))
    assert by_bytes == by_tuple


def test_grouped_sort_is_the_stable_sort_by_key():
    """sort_in_order (one key per directory) gives exactly the stable
    sort by sort_key, duplicates and odd names included."""
    from pysync.protocol.flist_sort import sort_in_order, sort_key
    rng = random.Random(11)
    alphabet = [b"a", b"b", b"-", b".", b"/", b"\xff", b"\x01", b"ab", b"a-", b"0"]
    for trial in range(40):
        entries = []
        for _ in range(rng.randint(0, 400)):
            n = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
            n = b"/".join(c for c in n.split(b"/") if c) or b"x"
            if rng.random() < 0.05:
                n = b"/" + n                     # -R keeps a leading '/'
            if rng.random() < 0.03:
                n = b"."
            kind = rng.choice((stat.S_IFDIR, stat.S_IFREG, stat.S_IFREG, stat.S_IFLNK))
            entries.append(FileEntry(n, kind | 0o644))
        if entries and rng.random() < 0.5:     # exact duplicates, both kinds
            for e in rng.sample(entries, min(20, len(entries))):
                entries.append(FileEntry(e.name, rng.choice((e.mode, stat.S_IFDIR | 0o755))))
        rng.shuffle(entries)
        expected = sorted(entries, key=lambda e: sort_key(e.name, e.is_dir))
        got = sort_in_order(entries)
        assert [id(e) for e in got] == [id(e) for e in expected], trial
