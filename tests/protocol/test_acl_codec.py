"""The -A wire codec (pysync/protocol/acls.py) against bytes captured from
stock rsync 3.2.7, the Linux xattr form, and hostile input.

Capture (SPEC.md §6.5): ``FAKE_RSH_RECORD=DIR rsync -rA -e fake_rsh.py
--rsync-path=pysync s/ localhost:d/`` (a pysync server: no incremental
recursion, so no names inline) with s/f carrying user::rw-,user:1000:rw-,
group::r--,group:1001:r-x,mask::rw-,other::r-- (mode 0664) and s/sub a
default ACL user::rwx,user:1000:r-x,group::r-x,mask::rwx,other::r-x.
"""

import struct

import pytest

from pysync.protocol.acls import (AclDecoder, AclEncoder, RsyncAcl, equal_enough, fake_perms,
                                  from_xattr, full_entries, strip_perms, to_xattr)
from pysync.protocol.buffer import ProtocolError, ReadBuffer

U = 0xFFFFFFFF


def xattr(*entries) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


F_ACL = xattr((1, 6, U), (2, 6, 1000), (4, 4, U), (8, 5, 1001), (0x10, 6, U), (0x20, 4, U))
SUB_DEF = xattr((1, 7, U), (2, 5, 1000), (4, 5, U), (0x10, 7, U), (0x20, 5, U))
# upstream: acls.c send_acl, as rsync 3.2.7 sent them after each entry
# (".", f, g, sub in transmit order).
RSYNC = [
    bytes.fromhex("00 00 00 00"),                       # ".": access literal 0 flags, default likewise
    bytes.fromhex("00 12 04 02 83 e8 1a 83 e9 14"),     # f: GROUP_OBJ|NAME_LIST, group r--, 2 names
    bytes.fromhex("01"),                                # g: same access ACL as "."
    bytes.fromhex("01 00 1f 07 05 07 05 01 83 e8 16"),  # sub: access as ".", full default ACL
]


def test_linux_xattr_round_trip():
    acl = from_xattr(F_ACL)
    assert (acl.user, acl.group, acl.mask, acl.other) == (6, 4, 6, 4)
    assert acl.names == [(1000, 6, True), (1001, 5, False)]
    assert to_xattr(acl) == F_ACL


def test_encoder_reproduces_rsync_bytes():
    enc = AclEncoder()
    dot = enc.encode(strip_perms(fake_perms(0o40755), 0o40755), RsyncAcl())
    f = enc.encode(strip_perms(from_xattr(F_ACL), 0o100664), None)
    g = enc.encode(strip_perms(fake_perms(0o100644), 0o100644), None)
    sub = enc.encode(strip_perms(fake_perms(0o40755), 0o40755), from_xattr(SUB_DEF))
    assert [dot, f, g, sub] == RSYNC


def test_decoder_reads_rsync_bytes_and_fills_the_mask():
    dec = AclDecoder()
    buf = ReadBuffer(b"".join(RSYNC))
    dot = dec.decode(buf, 0o40755, True)
    f = dec.decode(buf, 0o100664, False)
    g = dec.decode(buf, 0o100644, False)
    sub = dec.decode(buf, 0o40755, True)
    assert len(buf) == 0
    assert dot == (RsyncAcl(), RsyncAcl()) and g[0] is dot[0] and sub[0] is dot[0]
    # The access ACL's mask, left out as equal to the group bits, comes back from the mode.
    assert f[0] == RsyncAcl(None, 4, 6, None, [(1000, 6, True), (1001, 5, False)])
    assert f[1] is None
    assert sub[1] == from_xattr(SUB_DEF)
    # Stored: the mode supplies what was left out.
    assert to_xattr(full_entries(f[0], 0o100664)) == F_ACL
    assert to_xattr(full_entries(sub[1], None)) == SUB_DEF


def test_equal_enough_is_rsyncs():
    full = from_xattr(F_ACL)
    sent = RsyncAcl(None, 4, 6, None, [(1000, 6, True), (1001, 5, False)])
    assert equal_enough(full, sent, 0o100664)
    assert not equal_enough(full, RsyncAcl(None, 4, 6, None, [(1000, 4, True)]), 0o100664)
    assert not equal_enough(fake_perms(0o100664), sent, 0o100664)   # one has a mask
    assert equal_enough(fake_perms(0o100600), RsyncAcl(), 0o100644)  # the mode does the rest


def test_ids_are_mapped_after_the_id_lists():
    dec = AclDecoder()
    dec.decode(ReadBuffer(RSYNC[1]), 0o100664, False)
    assert dec.ids() == ({1000}, {1001})
    dec.map_ids({1000: 2000}, {1001: 3001})
    assert dec.access.acls[0].names == [(2000, 6, True), (3001, 5, False)]


@pytest.mark.parametrize("data, code", [
    (bytes.fromhex("05"), 12),                    # index of an ACL never sent
    (bytes.fromhex("00 01 08"), 12),              # user perms beyond rwx
    (bytes.fromhex("00 10 01 05 40"), 12),        # named perms beyond rwx
])
def test_hostile_acls_are_refused(data, code):
    with pytest.raises(ProtocolError) as e:
        AclDecoder().decode(ReadBuffer(data), 0o100644, False)
    assert e.value.code == code
