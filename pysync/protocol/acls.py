"""POSIX ACLs on the wire (-A; acls.c send_acl / receive_acl), and the pure
rules around them: which parts the mode already says (stripped before
sending), when two ACLs count as equal, and the full ACL to store.

An ACL is rsync's condensed form (``RsyncAcl``): the four "object" entries
(user, group, mask, other; None when absent or implied by the mode) and a
list of named entries (id, perms, is_user).  Every entry but a symlink
carries its access ACL, directories also their default ACL; each kind has
its own list of ACLs sent so far, so a repeated one goes as an index.

The Linux binary form (the system.posix_acl_* xattr values) is converted
here too, as bytes; reading and writing them is io/acls.py's job.
"""

from __future__ import annotations

import struct

from .buffer import ProtocolError, ReadBuffer
from .ints import decode_varint, encode_varint

__all__ = ["RsyncAcl", "AclEncoder", "AclDecoder", "strip_perms", "fake_perms",
           "equal_enough", "full_entries", "from_xattr", "to_xattr"]

# upstream: acls.c XMIT_* bits of the flags byte of a literal ACL.
XMIT_USER_OBJ = 1 << 0
XMIT_GROUP_OBJ = 1 << 1
XMIT_MASK_OBJ = 1 << 2
XMIT_OTHER_OBJ = 1 << 3
XMIT_NAME_LIST = 1 << 4
# Low bits of a named entry's perms on the wire (perms are shifted left by 2).
XFLAG_NAME_FOLLOWS = 0x1
XFLAG_NAME_IS_USER = 0x2
MAX_WIRE_ACL_COUNT = 65536      # rsync 3.4.3's bound on named entries
_PERM_BITS = 7                   # rwx; anything else from a peer is refused (exit 12)

# Linux <linux/posix_acl_xattr.h>: version 2 header, then (u16 tag, u16 perm, u32 id).
ACL_XATTR_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
_HDR = struct.Struct("<I")
_ENT = struct.Struct("<HHI")


class RsyncAcl:
    __slots__ = ("user", "group", "mask", "other", "names")

    def __init__(self, user=None, group=None, mask=None, other=None, names=None):
        self.user = user
        self.group = group
        self.mask = mask
        self.other = other
        self.names = list(names or ())      # [(id, perms, is_user)] in system order

    def key(self):
        return (self.user, self.group, self.mask, self.other, tuple(self.names))

    def __eq__(self, other):
        return isinstance(other, RsyncAcl) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return f"RsyncAcl{self.key()!r}"


def fake_perms(mode: int) -> RsyncAcl:
    """The access ACL a file without one has: its mode bits."""
    return RsyncAcl((mode >> 6) & 7, (mode >> 3) & 7, None, mode & 7)


def strip_perms(acl: RsyncAcl, mode: int) -> RsyncAcl:
    """What the sender leaves out of an access ACL because the mode says it
    (acls.c rsync_acl_strip_perms)."""
    group, mask = acl.group, acl.mask
    if mask is None:
        group = None
    else:
        gbits = (mode >> 3) & 7
        if group == gbits:
            group = None
        if acl.names and mask == gbits:
            mask = None
    return RsyncAcl(None, group, mask, None, acl.names)


def equal_enough(local: RsyncAcl, sent: RsyncAcl, mode: int) -> bool:
    """Does the full local access ACL already say what the condensed sent
    one does, the rest coming from ``mode``?  (rsync_acl_equal_enough)"""
    if (local.mask is None) != (sent.mask is None):
        return False
    if local.mask is not None:
        if sent.group is None:
            if local.group != (mode >> 3) & 7:
                return False
        elif local.group != sent.group:
            return False
    return local.names == sent.names


def full_entries(acl: RsyncAcl, mode: int | None) -> RsyncAcl:
    """The complete ACL to store (pack_smb_acl + change_sacl_perms):
    object entries the sender left out come from ``mode`` (the access ACL),
    or are 0 (a default ACL, ``mode`` None)."""
    if mode is None:
        return RsyncAcl(acl.user or 0, acl.group or 0, acl.mask, acl.other or 0, acl.names)
    gbits = (mode >> 3) & 7
    return RsyncAcl((mode >> 6) & 7, gbits if acl.group is None else acl.group,
                    None if acl.mask is None else gbits, mode & 7, acl.names)


def to_xattr(acl: RsyncAcl) -> bytes:
    """A full ACL as Linux's system.posix_acl_* value (entries in the
    order the kernel requires: owner, users by id, group, groups by id,
    mask, other)."""
    users = sorted((i, p) for i, p, u in acl.names if u)
    groups = sorted((i, p) for i, p, u in acl.names if not u)
    out = [_HDR.pack(ACL_XATTR_VERSION), _ENT.pack(ACL_USER_OBJ, acl.user & 7, ACL_UNDEFINED_ID)]
    out += [_ENT.pack(ACL_USER, p & 7, i) for i, p in users]
    out.append(_ENT.pack(ACL_GROUP_OBJ, acl.group & 7, ACL_UNDEFINED_ID))
    out += [_ENT.pack(ACL_GROUP, p & 7, i) for i, p in groups]
    mask = acl.mask
    if mask is None and acl.names:
        mask = 7            # named entries need a mask (the kernel refuses the ACL without)
    if mask is not None:
        out.append(_ENT.pack(ACL_MASK, mask & 7, ACL_UNDEFINED_ID))
    out.append(_ENT.pack(ACL_OTHER, acl.other & 7, ACL_UNDEFINED_ID))
    return b"".join(out)


def from_xattr(data: bytes) -> RsyncAcl:
    """Linux's system.posix_acl_* value -> RsyncAcl (unknown tags ignored,
    as rsync's unpack_smb_acl does)."""
    if len(data) < 4 or (len(data) - 4) % 8 or _HDR.unpack_from(data)[0] != ACL_XATTR_VERSION:
        raise ValueError("not a POSIX ACL xattr value")
    acl = RsyncAcl()
    for off in range(4, len(data), 8):
        tag, perm, ident = _ENT.unpack_from(data, off)
        perm &= 7
        if tag == ACL_USER_OBJ:
            acl.user = perm
        elif tag == ACL_GROUP_OBJ:
            acl.group = perm
        elif tag == ACL_MASK:
            acl.mask = perm
        elif tag == ACL_OTHER:
            acl.other = perm
        elif tag in (ACL_USER, ACL_GROUP):
            acl.names.append((ident, perm, tag == ACL_USER))
    return acl


class _AclList:
    __slots__ = ("_index", "acls")

    def __init__(self):
        self._index = {}
        self.acls = []

    def encode(self, acl: RsyncAcl) -> bytes:
        ndx = self._index.get(acl.key())
        if ndx is not None:
            return encode_varint(ndx + 1)
        self._index[acl.key()] = len(self.acls)
        self.acls.append(acl)
        flags = 0
        out = bytearray()
        for bit, v in ((XMIT_USER_OBJ, acl.user), (XMIT_GROUP_OBJ, acl.group),
                       (XMIT_MASK_OBJ, acl.mask), (XMIT_OTHER_OBJ, acl.other)):
            if v is not None:
                flags |= bit
                out += encode_varint(v)
        if acl.names:
            flags |= XMIT_NAME_LIST
            out += encode_varint(len(acl.names))
            for ident, perms, is_user in acl.names:
                out += encode_varint(ident)
                out += encode_varint((perms << 2) | (XFLAG_NAME_IS_USER if is_user else 0))
        return encode_varint(0) + bytes([flags]) + bytes(out)

    def decode(self, buf: ReadBuffer, is_default: bool, mode: int) -> int:
        ref = decode_varint(buf)
        if ref < 0 or ref > len(self.acls):
            kind = "default" if is_default else "access"
            raise ProtocolError(f"recv_acl_index: {kind} ACL index {ref} > {len(self.acls)}", 12)
        if ref:
            return ref - 1
        flags = buf.byte()
        acl = RsyncAcl()
        if flags & XMIT_USER_OBJ:
            acl.user = _obj_perms(buf)
        if flags & XMIT_GROUP_OBJ:
            acl.group = _obj_perms(buf)
        if flags & XMIT_MASK_OBJ:
            acl.mask = _obj_perms(buf)
        if flags & XMIT_OTHER_OBJ:
            acl.other = _obj_perms(buf)
        computed = 0
        if flags & XMIT_NAME_LIST:
            count = decode_varint(buf)
            if not 0 <= count <= MAX_WIRE_ACL_COUNT:
                raise ProtocolError(f"ACL count {count} out of range", 2)
            for _ in range(count):
                ident = decode_varint(buf) & 0xFFFFFFFF
                bits = decode_varint(buf) & 0xFFFFFFFF
                perms = bits >> 2
                if perms & ~_PERM_BITS:
                    raise ProtocolError(f"recv_acl_access: value out of range: {perms:x}", 12)
                if bits & XFLAG_NAME_FOLLOWS:
                    buf.take(buf.byte())        # incremental recursion only; names come in id lists
                acl.names.append((ident, perms, bool(bits & XFLAG_NAME_IS_USER)))
                computed |= perms
        if acl.names and acl.mask is None:
            # A list needs a mask: the group bits of the mode (access ACL) or
            # what the entries grant (default ACL).
            acl.mask = (computed | (acl.group or 0)) if is_default else (mode >> 3) & 7
        self.acls.append(acl)
        return len(self.acls) - 1


def _obj_perms(buf: ReadBuffer) -> int:
    v = decode_varint(buf) & 0xFFFFFFFF
    if v & ~_PERM_BITS:
        raise ProtocolError(f"recv_acl_access: value out of range: {v:x}", 12)
    return v


class AclEncoder:
    """Sender side: the access and default ACLs sent so far."""

    __slots__ = ("access", "default")

    def __init__(self):
        self.access = _AclList()
        self.default = _AclList()

    def encode(self, access: RsyncAcl, default: RsyncAcl | None) -> bytes:
        out = self.access.encode(access)
        if default is not None:
            out += self.default.encode(default)
        return out


class AclDecoder:
    """Receiver side: the ACLs received so far (ids as the sender's until
    ``map_ids`` turns them into ours)."""

    __slots__ = ("access", "default")

    def __init__(self):
        self.access = _AclList()
        self.default = _AclList()

    def decode(self, buf: ReadBuffer, mode: int, is_dir: bool) -> tuple:
        """-> (access ACL, default ACL or None); roll back with ``mark``/``reset``."""
        a = self.access.decode(buf, False, mode)
        d = self.default.decode(buf, True, mode) if is_dir else None
        return self.access.acls[a], (self.default.acls[d] if d is not None else None)

    def mark(self) -> tuple:
        return len(self.access.acls), len(self.default.acls)

    def reset(self, mark: tuple) -> None:
        for lst, n in ((self.access, mark[0]), (self.default, mark[1])):
            for acl in lst.acls[n:]:
                lst._index.pop(acl.key(), None)
            del lst.acls[n:]

    def map_ids(self, uid_map: dict, gid_map: dict) -> None:
        """The sender's ids in named entries -> ours (acls.c match_acl_ids)."""
        for lst in (self.access, self.default):
            for acl in lst.acls:
                acl.names[:] = [(uid_map.get(i, i) if u else gid_map.get(i, i), p, u)
                                for i, p, u in acl.names]

    def ids(self) -> tuple:
        users, groups = set(), set()
        for lst in (self.access, self.default):
            for acl in lst.acls:
                for i, _p, u in acl.names:
                    (users if u else groups).add(i)
        return users, groups
