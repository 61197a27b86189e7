"""The C file-list loops (native/flist.c through protocol/flist_native.py)
against the Python coder, which is their specification: the same bytes
out of the encoders, the same entries and state out of the decoders, and
the same error (message and exit code) for hostile and damaged lists."""

import os
import random
import stat
import subprocess
import sys

import pytest

from pysync.protocol import flist_native
from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.flist import (EndOfList, FileEntry, FlistDecoder, FlistEncoder,
                                   FlistOptions, encode_end)
from pysync.protocol.ints import encode_varint, encode_varlong

pytestmark = pytest.mark.skipif(not (flist_native.usable(FlistOptions()) and flist_native.available()),
                                reason="no compiled flist loops (PYSYNC_NATIVE=ref or no module)")

# id0_names is CF_ID0_NAMES, sent by protocol 32 peers only: both forms.
OPTION_SETS = [
    FlistOptions(),
    FlistOptions(uid=True, gid=True, links=True, devices=True, specials=True, id0_names=True),
    FlistOptions(uid=True, gid=True, links=True, devices=True, specials=True),
    FlistOptions(uid=True, gid=True, links=True, hard_links=True, devices=True),
    FlistOptions(links=True, checksum_len=16, gid=True),
    FlistOptions(uid=True, relative=True, id0_names=True, missing=True),
    FlistOptions(gid=True, checksum_len=20, numeric_ids=True, specials=True),
]


def _random_entries(rng, n, huge=False):
    """Names sharing long prefixes, long names (over 255 bytes), every file
    type, ids, big sizes, negative and huge mtimes, and entries with
    optional data (link targets, sums, device numbers, hard links)."""
    out = []
    dirs = [b"."]
    for i in range(n):
        kind = rng.choice("ffffffddlcbpsx")
        parent = rng.choice(dirs[-6:] + dirs[:2])
        base = bytes(rng.choice(b"abc.-_ \xff") for _ in range(rng.choice((1, 2, 5, 12, 40, 300))))
        if base in (b".", b".."):
            base = b"n" + base
        if rng.random() < 0.3 and out:
            base = out[-1].name.rsplit(b"/", 1)[-1] + base[:3]   # shares a prefix
        name = base if parent == b"." else parent + b"/" + base
        if len(name) > 4000:
            name = name[-3000:].lstrip(b"/") or b"x"
        mtime = rng.choice((0, 1_700_000_000, 1_700_000_000 + i, -1, -86400 * 400, 1 << 33,
                            (1 << 63) - 1, -(1 << 63), 0x7FFFFFFF, 0x80000000))
        nsec = rng.choice((0, 0, 0, 123456789, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF,
                           0x200000, 0xFFFFFFF, 0x10000000, 999_999_999))
        size = rng.choice((0, 5, 4096, 0x7FFFFF, 0x800000, 1 << 40, (1 << 63) - 1))
        uid = rng.choice((0, 1000, 1000, 1000, 70000, 0xFFFFFFFF))
        gid = rng.choice((0, 100, 100, 1 << 31))
        if huge and rng.random() < 0.05:
            # beyond the C types: the Python coder takes the batch
            if rng.random() < 0.5:
                mtime = 1 << 70
            else:
                uid = 1 << 40
        perm = rng.choice((0o644, 0o600, 0o755, 0o4755))
        if kind == "d":
            e = FileEntry(name, stat.S_IFDIR | 0o755, 4096, mtime, nsec, uid, gid,
                          xflags=rng.choice((0, 0, 0, 1, 0x100)))
            dirs.append(name)
        elif kind == "l":
            e = FileEntry(name, stat.S_IFLNK | 0o777, 9, mtime, nsec, uid, gid,
                          link=b"target/" + base[:rng.choice((5, 200))])
        elif kind in "cb":
            fmt = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
            e = FileEntry(name, fmt | 0o600, 0, mtime, 0, uid, gid,
                          rdev=(rng.choice((0, 1, 8, 300)), rng.choice((0, 3, 70000))))
        elif kind == "p":
            e = FileEntry(name, stat.S_IFIFO | 0o644, 0, mtime, nsec, uid, gid)
        elif kind == "s":
            e = FileEntry(name, stat.S_IFSOCK | 0o755, 0, mtime, 0, uid, gid)
        else:
            e = FileEntry(name, stat.S_IFREG | perm, size, mtime, nsec, uid, gid,
                          sum=bytes(rng.getrandbits(8) for _ in range(20))
                          if rng.random() < 0.3 else None)
        if kind == "f" and rng.random() < 0.1:
            e.dev, e.ino = 1, i     # -H: a hard-link candidate
            regs = [r for r in out[-20:] if r.dev is not None]
            if regs and rng.random() < 0.5:
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


def _encoder(o, native):
    enc = FlistEncoder(o)
    if native:
        assert enc._native is None      # the gate lets these option sets through
        assert flist_native.ready(enc)  # (made now: batches of any size use it)
    else:
        enc._native = False
    return enc


def _decoder(o, native):
    dec = FlistDecoder(o)
    if native:
        assert dec._native is None
        assert flist_native.ready(dec)
    else:
        dec._native = False
    return dec


def _encode(o, entries, native, step):
    for e in entries:
        e.hlink = None
    enc = _encoder(o, native)
    return b"".join(enc.encode_batch(entries[i:i + step]) for i in range(0, len(entries), step))


def _decode(o, wire, native, step=None, limit=2048):
    """The outcome of decoding ``wire``: the entries' fields and the state,
    or the error; fed whole, or ``step`` bytes at a time."""
    dec = _decoder(o, native)
    buf = ReadBuffer(wire if step is None else b"")
    pos = 0 if step is not None else len(wire)
    got = []
    try:
        while not got or got[-1][0] != "end":
            try:
                items = buf.attempt(dec.decode_batch, limit)
            except NeedMore:
                if pos >= len(wire):
                    return ("short", len(got)), got
                buf.feed(wire[pos:pos + step])
                pos += step
                continue
            assert items
            got.extend(_fields(i) for i in items)
    except ProtocolError as e:
        return ("error", str(e), e.code), None
    return (dec.lastname, dec.mode, dec.mtime, dec.uid, dec.gid, len(buf)), got


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("oi", range(len(OPTION_SETS)))
def test_native_coder_matches_python(seed, oi):
    o = OPTION_SETS[oi]
    rng = random.Random(seed * 101 + oi)
    entries = _random_entries(rng, 400, huge=seed == 4)
    one = FlistEncoder(o)
    one._native = False
    expect = b"".join(one.encode(e) for e in entries)
    for step in (1, 37, 256, 400):
        assert _encode(o, entries, True, step) == expect, step
    assert _encode(o, entries, False, 256) == expect
    wire = expect + encode_end(rng.choice((0, 1)))
    ref = _decode(o, wire, False)
    assert ref[1] is not None and len(ref[1]) == len(entries) + 1
    for step in (None, 1, 13, 500):
        assert _decode(o, wire, True, step) == ref, step
    assert _decode(o, wire, True, limit=7) == ref


@pytest.mark.parametrize("oi", range(len(OPTION_SETS)))
def test_small_batches_in_python_until_one_is_worth_the_c_loop(oi):
    """A coder whose C half is not made yet codes small batches in Python
    (the compiled module need not load for a short list) and makes it for
    the first big one; the bytes and entries are the same as either coder
    alone gives, across the hand-over."""
    o = OPTION_SETS[oi]
    rng = random.Random(7 + oi)
    entries = _random_entries(rng, 400)
    for e in entries:
        e.hlink = None
    one = FlistEncoder(o)
    one._native = False
    expect = b"".join(one.encode(e) for e in entries)
    enc = FlistEncoder(o)
    out = [enc.encode_batch(entries[:10])]
    assert enc._native is None                  # 10 entries: Python
    out.append(enc.encode_batch(entries[10:]))
    assert enc._native not in (None, False)     # 390: the C loop
    assert b"".join(out) == expect
    wire = expect + encode_end(0)
    ref = _decode(o, wire, False)
    dec = FlistDecoder(o)
    first = flist_native.DECODE_MIN // 2
    buf = ReadBuffer(wire[:first])
    got = [_fields(i) for i in buf.attempt(dec.decode_batch, 2048)]
    assert got and dec._native is None          # under DECODE_MIN bytes: Python
    buf.feed(wire[first:])
    while got[-1][0] != "end":
        got.extend(_fields(i) for i in buf.attempt(dec.decode_batch, 2048))
    assert dec._native not in (None, False)
    assert ((dec.lastname, dec.mode, dec.mtime, dec.uid, dec.gid, len(buf)), got) == ref


def test_many_plain_entries_one_call():
    """More entries than one C call holds (its chunk and its names buffer),
    all ordinary: the loop resumes where the C stopped."""
    o = FlistOptions(uid=True, gid=True, links=True, devices=True, specials=True)
    entries = []
    for d in range(30):
        entries.append(FileEntry(b"dir%03d" % d, stat.S_IFDIR | 0o755, 4096, 1_600_000_000 + d))
        for i in range(150):
            name = b"dir%03d/%s%05d" % (d, b"long-name-" * (i % 13), i)
            entries.append(FileEntry(name, stat.S_IFREG | 0o644, i * 1000, 1_600_000_000 + i,
                                     i % 3, 1000, 100 + i % 2))
    wire = _encode(o, entries, True, 256) + encode_end(0)
    assert wire == _encode(o, entries, False, 256) + encode_end(0)
    ref = _decode(o, wire, False, limit=5000)
    assert _decode(o, wire, True, limit=5000) == ref
    assert len(ref[1]) == len(entries) + 1


def test_decoded_entries_share_int_objects():
    """Equal modes, ids and (in one batch) mtimes are one object each, as
    the Python decoder's "same as before" state gives them."""
    o = FlistOptions(uid=True, gid=True)
    entries = [FileEntry(b"f%d" % i, stat.S_IFREG | 0o644, 1, 1_700_000_000 + i // 10, 0,
                         70000, 70001) for i in range(100)]
    wire = _encode(o, entries, True, 100) + encode_end(0)
    got = FlistDecoder(o).decode_batch(ReadBuffer(wire))
    assert len({id(e.mode) for e in got[:-1]}) == 1
    assert len({id(e.uid) for e in got[:-1]}) == 1
    assert len({id(e.mtime) for e in got[:-1]}) == 10


def _entry_wire(xflags, rest):
    return encode_varint(xflags) + rest


REG = (stat.S_IFREG | 0o644).to_bytes(4, "little")
HOSTILE = {
    # names the receiver must refuse or clean
    "abs": _entry_wire(0x04, b"\x0b/etc/passwd" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "dotdot": _entry_wire(0x04, b"\x07a/../../" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "dotdot-only": _entry_wire(0x04, b"\x02.." + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "dot-file": _entry_wire(0x04, b"\x01." + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "empty-comp": _entry_wire(0x04, b"\x04a//b" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "trailing": _entry_wire(0x04, b"\x02a/" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "nul": _entry_wire(0x04, b"\x03a\x00b" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "empty": _entry_wire(0x04, b"\x00" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    # lengths
    "l1-beyond": _entry_wire(0x24, b"\x05\x01a" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "too-long": _entry_wire(0x44, encode_varint(4096) + b"a" * 4096 + b"\x00\x01\x00"
                            + b"\x00" * 4 + REG),
    "neg-long": _entry_wire(0x44, encode_varint(-5) + b"\x00\x01\x00"),
    "varint-overflow": b"\xf8\x01\x02\x03\x04\x05",
    "l2-overflow": _entry_wire(0x44, b"\xfc\x01\x02\x03\x04\x05\x06"),
    "size-overflow": _entry_wire(0x04, b"\x01a" + b"\xfe" + b"\x00" * 9),
    "size-negative": _entry_wire(0x04, b"\x01a" + encode_varlong(-1, 3) + b"\x00" * 4 + REG),
    "mtime-overflow": _entry_wire(0x04, b"\x01a" + b"\x00\x01\x00" + b"\xfc" + b"\x00" * 9),
    # fields
    "nsec-big": _entry_wire(0x2004, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4
                            + encode_varint(1_000_000_000) + REG),
    "nsec-neg": _entry_wire(0x2004, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4
                            + encode_varint(-1) + REG),
    "bad-mode": _entry_wire(0x04, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4
                            + (0o170644).to_bytes(4, "little")),
    "mode-0": _entry_wire(0x04, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4 + b"\x00" * 4),
    "same-mode-first": _entry_wire(0x06, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4),
    "link-long": _entry_wire(0x04, b"\x01l" + b"\x00\x01\x00" + b"\x00" * 4
                             + (stat.S_IFLNK | 0o777).to_bytes(4, "little")
                             + encode_varint(4096)),
    "link-neg": _entry_wire(0x04, b"\x01l" + b"\x00\x01\x00" + b"\x00" * 4
                            + (stat.S_IFLNK | 0o777).to_bytes(4, "little") + encode_varint(-2)),
    "link-nul": _entry_wire(0x04, b"\x01l" + b"\x00\x01\x00" + b"\x00" * 4
                            + (stat.S_IFLNK | 0o777).to_bytes(4, "little") + b"\x03a\x00b"),
    "hlink-range": _entry_wire(0x204, b"\x01h" + encode_varint(7)),
    "user-name": _entry_wire(0x404, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4 + REG
                             + encode_varint(5) + b"\x04root"),
    "unknown-flag": _entry_wire(0x8004, b"\x01a" + b"\x00\x01\x00" + b"\x00" * 4 + REG),
    "truncated": _entry_wire(0x04, b"\x05abc"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("relative", [False, True])
def test_hostile_entries_give_the_python_outcome(name, relative):
    o = FlistOptions(uid=True, gid=True, links=True, hard_links=True, relative=relative,
                     devices=True)
    good = _encode(o, [FileEntry(b"ok/name", stat.S_IFREG | 0o600, 3, 5, 0, 7, 8)], False, 1)
    for wire in (HOSTILE[name], good + HOSTILE[name]):
        wire += encode_end(0)
        ref = _decode(o, wire, False)
        assert _decode(o, wire, True) == ref
        assert _decode(o, wire, True, step=3) == _decode(o, wire, False, step=3)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_lists_give_the_python_outcome(seed):
    """Random bytes changed, dropped or cut in a valid list: the C path
    ends as the Python one does (same entries, or same error)."""
    rng = random.Random(seed)
    o = OPTION_SETS[seed % len(OPTION_SETS)]
    wire = _encode(o, _random_entries(rng, 60), False, 60) + encode_end(0)
    for trial in range(150):
        bad = bytearray(wire)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(bad))
            what = rng.random()
            if what < 0.6:
                bad[i] = rng.choice((rng.randrange(256), 0, 0xFF, 0x80, 0x2F, 0x2E))
            elif what < 0.8:
                del bad[i]
            else:
                del bad[i:]
                break
        bad = bytes(bad)
        assert _decode(o, bad, True) == _decode(o, bad, False), (trial, bad.hex())


def test_gate_sends_unknown_options_to_python(monkeypatch):
    assert flist_native.usable(FlistOptions(uid=True, gid=True, links=True, devices=True,
                                            specials=True, hard_links=True, checksum_len=16))
    assert not flist_native.usable(FlistOptions(xattrs=True))
    assert not flist_native.usable(FlistOptions(acls=True))
    assert FlistEncoder(FlistOptions(xattrs=True))._native is False
    assert FlistDecoder(FlistOptions(acls=True))._native is False
    # A field the C loop was not written for (as a later option would add)
    # takes the Python coder whenever it is not at its default.
    monkeypatch.setattr(flist_native, "_HANDLED", flist_native._HANDLED - {"uid"})
    assert not flist_native.usable(FlistOptions(uid=True))
    assert flist_native.usable(FlistOptions())


def test_reference_backend_uses_the_python_coder():
    env = dict(os.environ, PYSYNC_NATIVE="ref")
    code = ("from pysync.protocol.flist import FileEntry, FlistEncoder, FlistOptions;"
            "enc = FlistEncoder(FlistOptions());"
            "enc.encode_batch([FileEntry(b'f%d' % i, 0o100644, i, 1) for i in range(200)]);"
            "print(enc._native)")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"



def test_sort_consuming_its_input_gives_the_same_list():
    """sort_and_clean(consume=True), as the sending and receiving sides
    call it: the same sorted and cleaned list, and the input emptied."""
    from pysync.protocol.flist_sort import sort_and_clean
    rng = random.Random(3)
    entries = _random_entries(rng, 500)
    entries += [FileEntry(e.name, stat.S_IFDIR | 0o755) for e in entries[:30]]   # duplicates
    rng.shuffle(entries)
    copy = list(entries)
    expect = [(id(e), e.cleared) for e in sort_and_clean(copy)]
    for e in entries:
        e.cleared = False
    got = sort_and_clean(entries, consume=True)
    assert [(id(e), e.cleared) for e in got] == expect
    assert entries == [] and len(copy) == len(got)
