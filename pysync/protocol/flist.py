"""File-list entries on the wire, protocol >= 30 with varint flags
(flist.c send_file_entry / recv_file_entry, uidlist.c id lists).

Each direction keeps the "same as previous entry" state (name prefix,
mode, mtime, uid, gid, rdev major) in an ``FlistEncoder`` or
``FlistDecoder``.  Which optional fields are present depends on the
options both sides run with, held in ``FlistOptions``.  The entries
themselves (``FileEntry``, ``SourceDir``) are flist_entry.py's, re-exported
here.
"""

from __future__ import annotations

import stat

from .buffer import ProtocolError, ReadBuffer
from .constants import (IOERR_MASK, MAX_WIRE_NSEC, MAXPATHLEN, XMIT_EXTENDED_FLAGS,
                        XMIT_GROUP_NAME_FOLLOWS, XMIT_HLINK_FIRST, XMIT_HLINKED,
                        XMIT_LONG_NAME, XMIT_MOD_NSEC, XMIT_NO_CONTENT_DIR,
                        XMIT_SAME_ATIME, XMIT_SAME_GID, XMIT_SAME_MODE, XMIT_SAME_NAME,
                        XMIT_SAME_RDEV_MAJOR, XMIT_SAME_TIME, XMIT_SAME_UID,
                        XMIT_TOP_DIR, XMIT_USER_NAME_FOLLOWS)
from ..record import record
from ..text import show
from .ints import (decode_int32, decode_varint, decode_varlong, encode_int32,
                   encode_varint, encode_varlong)
from .acls import AclDecoder, AclEncoder, RsyncAcl
from .xattrs import XattrDecoder, XattrEncoder
from .flist_entry import FileEntry, SourceDir

__all__ = ["FileEntry", "SourceDir", "FlistOptions", "FlistEncoder", "FlistDecoder", "EndOfList",
           "encode_end", "encode_id_list", "decode_id_list", "clean_name"]

_VALID_TYPES = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR,
                stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK)


@record(frozen=True)
class FlistOptions:
    """Which optional per-entry fields the session carries."""
    uid: bool = False          # -o
    gid: bool = False          # -g
    links: bool = False        # -l
    devices: bool = False      # -D (devices)
    specials: bool = False     # -D (specials)
    hard_links: bool = False   # -H
    checksum_len: int = 0      # -c: length of the per-file sum, else 0
    relative: bool = False     # -R: leading '/' allowed
    id0_names: bool = False    # CF_ID0_NAMES
    numeric_ids: bool = False  # no id lists
    xattrs: bool = False       # -X: an xattr set after each entry
    acls: bool = False         # -A: ACLs after each entry but symlinks
    missing: bool = False      # --delete-missing-args: mode 0 names a missing argument
    atimes: bool = False       # -U: an access time for every non-directory


class EndOfList:
    __slots__ = ("io_error",)

    def __init__(self, io_error: int):
        self.io_error = io_error


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b), 255)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class FlistEncoder:
    """Sender side of the file list."""

    __slots__ = ("opts", "lastname", "mode", "mtime", "uid", "gid", "rdev_major",
                 "_hlink_first", "count", "xattrs", "acls", "atime", "_native")

    def __init__(self, opts: FlistOptions):
        self.opts = opts
        # The C loop's state (flist_native.py): None until made, False when
        # the options are beyond it.
        self._native = None if flist_batch.usable(opts) else False
        self.xattrs = XattrEncoder() if opts.xattrs else None
        self.acls = AclEncoder() if opts.acls else None
        self.lastname = b""
        self.mode = 0
        self.mtime = 0
        self.uid = 0
        self.gid = 0
        self.rdev_major = 0
        self.atime = 0
        self._hlink_first = {}  # (dev, ino) -> transmit index of the first member
        self.count = 0

    def encode_batch(self, entries) -> bytes:
        """The wire form of several entries, as ``encode`` gives them one
        by one (flist_batch.py)."""
        return flist_batch.encode_batch(self, entries)

    def encode(self, f: FileEntry) -> bytes:
        o = self.opts
        ndx = self.count
        self.count += 1
        mode = f.mode
        if stat.S_ISDIR(mode):
            xflags = f.xflags & (XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR)
        else:
            xflags = 0
        if mode == self.mode:
            xflags |= XMIT_SAME_MODE
        else:
            self.mode = mode
        is_dev = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        if o.devices and is_dev:
            if f.rdev[0] == self.rdev_major:
                xflags |= XMIT_SAME_RDEV_MAJOR
            else:
                self.rdev_major = f.rdev[0]
        first = ndx == 0
        if not o.uid or (f.uid == self.uid and not first):
            xflags |= XMIT_SAME_UID
        else:
            self.uid = f.uid
        if not o.gid or (f.gid == self.gid and not first):
            xflags |= XMIT_SAME_GID
        else:
            self.gid = f.gid
        if f.mtime == self.mtime:
            xflags |= XMIT_SAME_TIME
        else:
            self.mtime = f.mtime
        if f.nsec:
            xflags |= XMIT_MOD_NSEC
        if o.atimes and not stat.S_ISDIR(mode):
            if f.atime == self.atime:
                xflags |= XMIT_SAME_ATIME
            else:
                self.atime = f.atime
        first_hlink = -1
        if o.hard_links and f.dev is not None and not stat.S_ISDIR(mode):
            key = (f.dev, f.ino)
            first_hlink = self._hlink_first.get(key, -1)
            if first_hlink < 0:
                self._hlink_first[key] = ndx
                xflags |= XMIT_HLINK_FIRST
                f.hlink = ndx
            else:
                f.hlink = first_hlink
            xflags |= XMIT_HLINKED
        name = f.name
        l1 = _common_prefix(name, self.lastname)
        l2 = len(name) - l1
        if l1:
            xflags |= XMIT_SAME_NAME
        if l2 > 255:
            xflags |= XMIT_LONG_NAME
        out = bytearray(encode_varint(xflags or XMIT_EXTENDED_FLAGS))
        if l1:
            out.append(l1)
        if l2 > 255:
            out += encode_varint(l2)
        else:
            out.append(l2)
        out += name[l1:]
        self.lastname = name
        if first_hlink >= 0:
            out += encode_varint(first_hlink)
            return self._extras(f, out)
        out += encode_varlong(f.size, 3)
        if not xflags & XMIT_SAME_TIME:
            out += encode_varlong(f.mtime, 4)
        if xflags & XMIT_MOD_NSEC:
            out += encode_varint(f.nsec)
        if not xflags & XMIT_SAME_MODE:
            out += encode_int32(_to_wire_mode(mode))
        if o.atimes and not stat.S_ISDIR(mode) and not xflags & XMIT_SAME_ATIME:
            out += encode_varlong(f.atime, 4)
        if o.uid and not xflags & XMIT_SAME_UID:
            out += encode_varint(f.uid)
        if o.gid and not xflags & XMIT_SAME_GID:
            out += encode_varint(f.gid)
        if o.devices and is_dev:
            if not xflags & XMIT_SAME_RDEV_MAJOR:
                out += encode_varint(f.rdev[0])
            out += encode_varint(f.rdev[1])
        if o.links and stat.S_ISLNK(mode):
            out += encode_varint(len(f.link)) + f.link
        if o.checksum_len and stat.S_ISREG(mode):
            s = f.sum or b""
            out += s[:o.checksum_len].ljust(o.checksum_len, b"\0")
        return self._extras(f, out)

    def _extras(self, f: FileEntry, out: bytearray) -> bytes:
        """What follows every entry, hard-link followers included: its
        ACLs with -A, its xattr set with -X (flist.c send_file_name)."""
        if self.acls is not None and not stat.S_ISLNK(f.mode):
            out += self.acls.encode(f.acl or RsyncAcl(),
                                    (f.def_acl or RsyncAcl()) if stat.S_ISDIR(f.mode) else None)
        if self.xattrs is not None:
            data, f.xattr_ndx = self.xattrs.encode(f.xattrs or ())
            out += data
        return bytes(out)


def encode_end(io_error: int = 0) -> bytes:
    return encode_varint(0) + encode_varint(io_error)


def _to_wire_mode(mode: int) -> int:
    # Linux's S_IFLNK already is the wire value 0120000.
    return mode


def clean_name(name: bytes, relative: bool) -> bytes:
    """rsync clean_fname(CFN_REFUSE_DOT_DOT_DIRS): drop empty and '.'
    components, refuse '..' components and (without -R) absolute names."""
    if not name:
        return name
    if name.startswith(b"/") and not relative:
        raise ProtocolError(f"ABORTING due to unsafe pathname from sender: {_show(name)}", 4)
    parts = []
    for comp in name.split(b"/"):
        if comp == b"..":
            raise ProtocolError(f"ABORTING due to unsafe pathname from sender: {_show(name)}", 4)
        if comp and comp != b".":
            parts.append(comp)
    return b"/".join(parts) if parts else b"."


def _show(name: bytes) -> str:
    return show(name)


class FlistDecoder:
    """Receiver side of the file list.  ``decode(buf)`` returns a
    FileEntry or an EndOfList; the caller wraps it in ``buf.attempt`` so a
    short buffer leaves the state untouched."""

    __slots__ = ("opts", "lastname", "mode", "mtime", "nsec", "uid", "gid", "rdev_major",
                 "entries", "xattrs", "acls", "atime", "_native", "_ints")

    def __init__(self, opts: FlistOptions, xattr_keep=None):
        self.opts = opts
        self._native = None if flist_batch.usable(opts) else False   # as FlistEncoder's
        self._ints = {}     # one int object per mode, uid and gid value met
        self.acls = AclDecoder() if opts.acls else None
        # -X: the sets received so far; ``xattr_keep(name)`` says which
        # names this receiver may store.
        self.xattrs = XattrDecoder(xattr_keep or (lambda name: True)) if opts.xattrs else None
        self.lastname = b""
        self.mode = 0
        self.mtime = 0
        self.nsec = 0
        self.uid = 0
        self.gid = 0
        self.rdev_major = 0
        self.atime = 0
        self.entries = []  # -H: in transmit order, for hard-link references

    def decode(self, buf: ReadBuffer):
        snapshot = (self.lastname, self.mode, self.mtime, self.uid, self.gid, self.rdev_major,
                    self.atime)
        nsets = len(self.xattrs.sets) if self.xattrs is not None else 0
        nacls = self.acls.mark() if self.acls is not None else None
        try:
            return self._decode(buf)
        except Exception:
            (self.lastname, self.mode, self.mtime, self.uid, self.gid, self.rdev_major,
             self.atime) = snapshot
            if self.xattrs is not None:
                del self.xattrs.sets[nsets:]
            if self.acls is not None:
                self.acls.reset(nacls)
            raise

    def decode_batch(self, buf: ReadBuffer, limit: int = 2048) -> list:
        """Up to ``limit`` whole entries (the last may be an EndOfList) in
        one call (flist_batch.py); NeedMore only when not even one is there."""
        return flist_batch.decode_batch(self, buf, limit)

    def _decode(self, buf: ReadBuffer):
        o = self.opts
        xflags = decode_varint(buf)
        if xflags == 0:
            err = decode_varint(buf)
            return EndOfList(err & IOERR_MASK)
        l1 = buf.byte() if xflags & XMIT_SAME_NAME else 0
        l2 = decode_varint(buf) if xflags & XMIT_LONG_NAME else buf.byte()
        if l1 > len(self.lastname) or l2 < 0 or l1 + l2 >= MAXPATHLEN:
            raise ProtocolError(f"overflow: xflags=0x{xflags:x} l1={l1} l2={l2}", 22)
        raw = self.lastname[:l1] + buf.take(l2)
        self.lastname = raw
        name = clean_name(raw, o.relative)
        hlink = None
        if o.hard_links and xflags & XMIT_HLINKED:
            if xflags & XMIT_HLINK_FIRST:
                hlink = len(self.entries)
            else:
                first_ndx = decode_varint(buf)
                if first_ndx < 0 or first_ndx >= len(self.entries):
                    raise ProtocolError(
                        f"hard-link reference out of range: {first_ndx} ({len(self.entries)})", 2)
                first = self.entries[first_ndx]
                e = FileEntry(name, first.mode, first.size, first.mtime, first.nsec,
                              first.uid, first.gid, first.rdev, first.link, first.sum,
                              xflags & (XMIT_HLINKED | XMIT_HLINK_FIRST))
                e.hlink = first_ndx
                self.mode, self.mtime = first.mode, first.mtime
                if o.uid:
                    self.uid = first.uid
                if o.gid:
                    self.gid = first.gid
                if o.devices and first.is_device:
                    self.rdev_major = first.rdev[0]
                if o.atimes and not first.is_dir:
                    e.atime = self.atime = first.atime
                return self._finish(e, buf)
        size = decode_varlong(buf, 3)
        if not xflags & XMIT_SAME_TIME:
            self.mtime = decode_varlong(buf, 4)
        nsec = 0
        if xflags & XMIT_MOD_NSEC:
            nsec = decode_varint(buf)
            if not 0 <= nsec <= MAX_WIRE_NSEC:
                raise ProtocolError(f"Invalid modtime_nsec value {nsec}", 2)
        if not xflags & XMIT_SAME_MODE:
            self.mode = decode_int32(buf) & 0xFFFFFFFF
            if stat.S_IFMT(self.mode) not in _VALID_TYPES and self.mode:
                raise ProtocolError(f"invalid file mode 0{self.mode:o} for {_show(name)}", 2)
        mode = self.mode
        atimed = o.atimes and not stat.S_ISDIR(mode)
        if atimed and not xflags & XMIT_SAME_ATIME:
            self.atime = decode_varlong(buf, 4)
        if not mode and not o.missing:
            # Mode 0 (also as the "same mode" of the very first entry) is a
            # missing argument, which only --delete-missing-args allows.
            raise ProtocolError(f"invalid file mode 00 for {_show(name)}", 2)
        if o.uid and not xflags & XMIT_SAME_UID:
            self.uid = decode_varint(buf) & 0xFFFFFFFF
            if xflags & XMIT_USER_NAME_FOLLOWS:
                buf.take(buf.byte())
        if o.gid and not xflags & XMIT_SAME_GID:
            self.gid = decode_varint(buf) & 0xFFFFFFFF
            if xflags & XMIT_GROUP_NAME_FOLLOWS:
                buf.take(buf.byte())
        rdev = (0, 0)
        is_dev = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        if o.devices and is_dev:
            if not xflags & XMIT_SAME_RDEV_MAJOR:
                self.rdev_major = decode_varint(buf) & 0xFFFFFFFF
            rdev = (self.rdev_major, decode_varint(buf) & 0xFFFFFFFF)
            size = 0
        elif is_dev:
            size = 0
        link = None
        if stat.S_ISLNK(mode):
            if o.links:
                n = decode_varint(buf)
                if n < 0 or n + 1 > MAXPATHLEN:
                    raise ProtocolError(f"overflow: linkname_len={n}", 22)
                link = buf.take(n)
            else:
                link = b""
        csum = None
        if o.checksum_len and stat.S_ISREG(mode):
            csum = buf.take(o.checksum_len)
        if size < 0:
            raise ProtocolError("Offset underflow: file-length is negative", 4)
        keep = xflags & (XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR) if stat.S_ISDIR(mode) else 0
        if hlink is not None:
            keep |= xflags & (XMIT_HLINKED | XMIT_HLINK_FIRST)
        e = FileEntry(name, mode, size, self.mtime, nsec,
                      self.uid if o.uid else 0, self.gid if o.gid else 0, rdev, link, csum, keep)
        e.hlink = hlink
        if atimed:
            e.atime = self.atime
        return self._finish(e, buf)

    def _finish(self, e: FileEntry, buf: ReadBuffer) -> FileEntry:
        if self.acls is not None and not e.is_link:
            e.acl, e.def_acl = self.acls.decode(buf, e.mode, e.is_dir)
        if self.xattrs is not None:
            e.xattr_ndx = self.xattrs.decode(buf)
            e.xattrs = self.xattrs.sets[e.xattr_ndx]
        if e.name == b"." and not e.is_dir:
            raise ProtocolError(
                "ERROR: rejecting non-directory transfer-root entry: .", 2)
        if self.opts.hard_links:
            self.entries.append(e)
        return e


def encode_id_list(ids: dict, id0_name: bytes | None, id0_names: bool) -> bytes:
    """One uid or gid list: (varint id, byte len, name) for every named id
    except 0, then the terminator (varint 0 [+ name of id 0])."""
    out = bytearray()
    for i, name in ids.items():
        if i and name:
            name = name[:255]
            out += encode_varint(i) + bytes([len(name)]) + name
    out += encode_varint(0)
    if id0_names:
        name = (id0_name or b"")[:255]
        out += bytes([len(name)]) + name
    return bytes(out)


def decode_id_list(buf: ReadBuffer, id0_names: bool) -> dict:
    """Inverse of encode_id_list: {id: name}."""
    out = {}
    while True:
        i = decode_varint(buf) & 0xFFFFFFFF
        if i == 0:
            break
        n = buf.byte()
        out[i] = buf.take(n)
    if id0_names:
        n = buf.byte()
        out[0] = buf.take(n)
    return out


from . import flist_batch  # noqa: E402  (it uses the classes above)
