"""The -X wire codecs (pysync/protocol/xattrs.py) against bytes captured from
stock rsync 3.2.7, and their refusals of hostile input.

Capture (SPEC.md §6.4): ``FAKE_RSH_RECORD=DIR rsync -rX -e fake_rsh.py
--rsync-path=rsync s2/ localhost:d3/`` with s2/f1 and s2/f2 carrying
user.k="v" and s2/f3 carrying user.a="" and user.big="Z"*40; then the same
with d3/f3's user.big changed to "Y"*40 under -i for the request and answer.
"""

import hashlib

import pytest

from pysync.io.xattrs import XattrPolicy
from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.ints import encode_varint
from pysync.protocol.flist import FileEntry, FlistDecoder, FlistEncoder, FlistOptions
from pysync.protocol.xattrs import (XattrDecoder, XattrEncoder, decode_request, decode_values,
                                    encode_request, encode_values, make_items, xattr_compare)

MD5_Z40 = bytes.fromhex("fe917b2240fd3b58d977a95b7baa24ed")
# upstream: xattrs.c send_xattr, as rsync 3.2.7 sent them for ".", f1, f3, f2
# (transmit order), each after its file-list entry.
RSYNC_SETS = [
    bytes.fromhex("00 00"),                                          # ".": empty literal set
    bytes.fromhex("00 01 07 01") + b"user.k\0" + b"v",              # f1: one short value
    bytes.fromhex("00 02 07 00") + b"user.a\0" + bytes.fromhex("09 28") + b"user.big\0" + MD5_Z40,
    bytes.fromhex("02"),                                             # f2: same set as f1 (index 1)
]
PAIRS = [[], [(b"user.k", b"v")], [(b"user.big", b"Z" * 40), (b"user.a", b"")], [(b"user.k", b"v")]]


def test_digest_is_plain_md5():
    assert hashlib.md5(b"Z" * 40).digest() == MD5_Z40


def test_encoder_reproduces_rsync_bytes():
    enc = XattrEncoder()
    out = [enc.encode(make_items(p)) for p in PAIRS]
    assert [b for b, _ in out] == RSYNC_SETS
    assert [n for _, n in out] == [0, 1, 2, 1]


def test_decoder_reads_rsync_bytes():
    dec = XattrDecoder(lambda name: True)
    buf = ReadBuffer(b"".join(RSYNC_SETS))
    ndxs = [dec.decode(buf) for _ in RSYNC_SETS]
    assert ndxs == [0, 1, 2, 1]
    big = dec.sets[2][1]
    assert (big.name, big.datum_len, big.value, big.digest, big.num) == \
        (b"user.big", 40, None, MD5_Z40, 2)
    assert dec.sets[2][0].value == b"" and dec.sets[2][0].num == 1


def test_request_and_answer_match_rsync():
    # Generator after "08 81" (TRANSFER|REPORT_XATTR|REPORT_TIME): wants #2.
    assert encode_request([2]) == bytes.fromhex("02 00")
    assert decode_request(ReadBuffer(bytes.fromhex("02 00"))) == [2]
    # Sender's echo: #2, 40 bytes, the value, end.
    answer = bytes.fromhex("02 28") + b"Z" * 40 + b"\0"
    assert encode_values([(2, b"Z" * 40)]) == answer
    assert decode_values(ReadBuffer(answer)) == [(2, b"Z" * 40)]
    assert encode_request([]) == b"\0" and decode_values(ReadBuffer(b"\0")) == []


def test_compare_asks_only_for_differing_long_values():
    items = make_items([(b"user.big", b"Z" * 40), (b"user.a", b"")])
    assert xattr_compare(items, {b"user.big": b"Z" * 40, b"user.a": b""}, False) == (False, [])
    assert xattr_compare(items, {b"user.big": b"Y" * 40, b"user.a": b""}, False) == (True, [2])
    assert xattr_compare(items, {b"user.big": b"Y" * 40, b"user.a": b""}, True) == (True, [])
    assert xattr_compare(items, {b"user.a": b"", b"user.big": b"Z" * 40, b"user.c": b"1"},
                         False) == (True, [])
    assert xattr_compare(items, {}, False) == (True, [2])


def test_flist_entry_carries_its_set_and_hard_link_followers_too():
    opts = FlistOptions(hard_links=True, xattrs=True)
    enc = FlistEncoder(opts)
    a = FileEntry(b"a", 0o100644, 3, 1700000000)
    a.dev, a.ino = 1, 2
    a.xattrs = make_items([(b"user.k", b"v")])
    b = FileEntry(b"b", 0o100644, 3, 1700000000)
    b.dev, b.ino = 1, 2
    b.xattrs = make_items([(b"user.k", b"w")])
    data = enc.encode(a) + enc.encode(b)
    dec = FlistDecoder(opts)
    buf = ReadBuffer(data)
    da, db = dec.decode(buf), dec.decode(buf)
    assert len(buf) == 0
    assert [(i.name, i.value) for i in da.xattrs] == [(b"user.k", b"v")]
    assert [(i.name, i.value) for i in db.xattrs] == [(b"user.k", b"w")]


def test_short_input_leaves_decoder_state_alone():
    dec = XattrDecoder(lambda name: True)
    data = RSYNC_SETS[2]
    for cut in range(len(data)):
        with pytest.raises(NeedMore):
            dec.decode(ReadBuffer(data[:cut]))
        assert dec.sets == []
    assert dec.decode(ReadBuffer(data)) == 0


@pytest.mark.parametrize("data, code", [
    (bytes.fromhex("05"), 12),                                   # reference to a set never sent
    (bytes.fromhex("00 01 02 01") + b"ab" + b"v", 11),           # name without its NUL
    (b"\0" + encode_varint(70000), 2),                          # count over the cap
    (b"\0\1" + encode_varint(5000) + b"\0x", 2),                # name over 4096 bytes
])
def test_hostile_sets_are_refused(data, code):
    with pytest.raises(ProtocolError) as e:
        XattrDecoder(lambda name: True).decode(ReadBuffer(data))
    assert e.value.code == code


def _one(name: bytes, value: bytes = b"x") -> bytes:
    return bytes([0, 1, len(name) + 1, len(value)]) + name + b"\0" + value


@pytest.mark.parametrize("root", [False, True])
def test_receiver_never_stores_system_names(root):
    keep = XattrPolicy(False, 1, root=root).storable
    dec = XattrDecoder(keep)
    names = [b"system.posix_acl_access", b"trusted.t", b"security.s", b"user.u",
             b"user.rsync.%stat"]
    got = [dec.sets[dec.decode(ReadBuffer(_one(n)))] for n in names]
    kept = [s[0].name for s in got if s]
    assert b"system.posix_acl_access" not in kept
    assert b"user.rsync.%stat" not in kept           # only with -XX
    assert b"user.u" in kept
    assert (b"trusted.t" in kept) == root and (b"security.s" in kept) == root
    assert XattrPolicy(False, 2, root=root).storable(b"user.rsync.%stat")


def test_sender_reads_all_but_system_receiver_only_user_unless_root():
    snd = XattrPolicy(True, 1, root=False)
    assert snd.wanted(b"trusted.t") and snd.wanted(b"user.u") and not snd.wanted(b"system.x")
    rcv = XattrPolicy(False, 1, root=False)
    assert rcv.wanted(b"user.u") and not rcv.wanted(b"trusted.t")
