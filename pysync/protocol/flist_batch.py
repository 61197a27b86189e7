"""The file list in batches: many entries per call, with fast paths for
the ordinary ones (regular files, directories, symlinks without hard
links, devices or long names) that read and write the raw bytes directly.
They give exactly the bytes and entries of ``FlistEncoder.encode`` /
``FlistDecoder.decode`` one by one (tests/protocol/test_flist_batch.py
compares them on random lists); everything else goes through those.
"""

from __future__ import annotations

from .buffer import NeedMore, ProtocolError
from .constants import (MAX_WIRE_NSEC, MAXPATHLEN, XMIT_EXTENDED_FLAGS, XMIT_GROUP_NAME_FOLLOWS,
                        XMIT_HLINKED, XMIT_LONG_NAME, XMIT_MOD_NSEC, XMIT_NO_CONTENT_DIR,
                        XMIT_SAME_GID, XMIT_SAME_MODE, XMIT_SAME_NAME, XMIT_SAME_TIME,
                        XMIT_SAME_UID, XMIT_TOP_DIR, XMIT_USER_NAME_FOLLOWS)
from .ints import _EXTRA, encode_varint
from .flist import EndOfList, FileEntry, clean_name
from . import flist_native

__all__ = ["encode_batch", "decode_batch", "usable"]

# The varint of each extended xflags value met so far (a handful of them).
_XFLAGS_VARINT: dict = {}


def usable(opts) -> bool:
    """Whether a coder with these options may use the C loop."""
    return flist_native.usable(opts)


def encode_batch(enc, entries) -> bytes:
    """The wire form of several entries for FlistEncoder ``enc``, as
    ``enc.encode`` gives them one by one: through the C loop when the
    encoder may use it and the batch is worth loading it for
    (flist_native.py), else in Python."""
    c = enc._native
    if c is not False and (c is not None or len(entries) >= flist_native.ENCODE_MIN) and \
            flist_native.ready(enc):
        return flist_native.encode_batch(enc, entries, _encode_python)
    return _encode_python(enc, entries)


def _encode_python(enc, entries) -> bytes:
    o = enc.opts
    if o.xattrs or o.acls or o.atimes:
        # -X / -A fields follow every entry, -U's atime sits in the
        # middle of it: the one-by-one encoder.
        return b"".join([enc.encode(f) for f in entries])
    out = bytearray()
    slow = enc.encode
    hl = o.hard_links
    for f in entries:
        mode = f.mode
        fmt = mode & 0o170000
        if fmt == 0o040000:
            xflags = f.xflags & (XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR)
        elif (fmt == 0o100000 or fmt == 0o120000) and not hl:
            xflags = 0
        else:
            out += slow(f)
            continue
        name = f.name
        last = enc.lastname
        n = min(len(name), len(last), 255)
        l1 = 0
        while l1 < n and name[l1] == last[l1]:
            l1 += 1
        l2 = len(name) - l1
        size = f.size
        mtime = f.mtime
        if l2 > 255 or not 0 <= size < 0x800000 or not 0 <= mtime < 0x80000000:
            out += slow(f)
            continue
        first = enc.count == 0
        enc.count += 1
        if mode == enc.mode:
            xflags |= XMIT_SAME_MODE
        else:
            enc.mode = mode
        if not o.uid or (f.uid == enc.uid and not first):
            xflags |= XMIT_SAME_UID
        else:
            enc.uid = f.uid
        if not o.gid or (f.gid == enc.gid and not first):
            xflags |= XMIT_SAME_GID
        else:
            enc.gid = f.gid
        if mtime == enc.mtime:
            xflags |= XMIT_SAME_TIME
        else:
            enc.mtime = mtime
        nsec = f.nsec
        if nsec:
            xflags |= XMIT_MOD_NSEC
        if l1:
            xflags |= XMIT_SAME_NAME
        if xflags < 0x80:
            out.append(xflags or XMIT_EXTENDED_FLAGS)
        else:
            b = _XFLAGS_VARINT.get(xflags)
            if b is None:
                b = _XFLAGS_VARINT[xflags] = encode_varint(xflags)
            out += b
        if l1:
            out.append(l1)
        out.append(l2)
        out += name[l1:]
        enc.lastname = name
        out += bytes((size >> 16, size & 0xFF, (size >> 8) & 0xFF))
        if not xflags & XMIT_SAME_TIME:
            out += bytes((mtime >> 24, mtime & 0xFF, (mtime >> 8) & 0xFF, (mtime >> 16) & 0xFF))
        if nsec:
            if nsec >= 0x10000000:       # a varint's five-byte form (nsec < 2**32)
                out.append(0xF0)
                out += nsec.to_bytes(4, "little")
            else:
                out += encode_varint(nsec)
        if not xflags & XMIT_SAME_MODE:
            out += mode.to_bytes(4, "little")
        if o.uid and not xflags & XMIT_SAME_UID:
            out += encode_varint(f.uid)
        if o.gid and not xflags & XMIT_SAME_GID:
            out += encode_varint(f.gid)
        if fmt == 0o120000:
            if o.links:
                out += encode_varint(len(f.link)) + f.link
        elif fmt == 0o100000 and o.checksum_len:
            s = f.sum or b""
            out += s[:o.checksum_len].ljust(o.checksum_len, b"\0")
    return bytes(out)


def decode_batch(dec, buf, limit: int = 2048) -> list:
    """Decode up to ``limit`` whole entries (the last may be an
    EndOfList) in one call; the buffer is left after the last whole
    one.  Raises NeedMore only when not even one entry is complete.
    The common entry is read by the C loop when the decoder may use it
    (flist_native.py), else by a fast path over the raw bytes; the rest
    (hard links, devices, long names, ...) by ``_decode``."""
    c = dec._native
    if c is not False and (c is not None or len(buf._data) - buf._pos >= flist_native.DECODE_MIN) and \
            flist_native.ready(dec):
        return flist_native.decode_batch(dec, buf, limit)
    out = []
    data = buf._data
    fast = _fast_ok(dec)
    while len(out) < limit:
        start = buf._pos
        item = None
        if fast:
            try:
                item = _decode_fast(dec, data, start, buf)
            except (NeedMore, IndexError):
                # The fast path indexes the raw bytes: running off the
                # end means the entry is not all here yet.
                buf._pos = start
                if out:
                    return out
                raise NeedMore from None
        if item is None:
            try:
                item = dec.decode(buf)
            except NeedMore:
                buf._pos = start
                if out:
                    return out
                raise
        out.append(item)
        if item.__class__ is EndOfList:
            break
    return out


def _fast_ok(dec) -> bool:
    return not (dec.opts.xattrs or dec.opts.acls or dec.opts.atimes)   # their fields: dec.decode


def _decode_fast(dec, data, pos: int, buf):
    """One ordinary entry straight from ``data`` at ``pos``: commits
    the decoder state and ``buf._pos`` only when the whole entry is
    there; returns None to send the entry to ``_decode``."""
    o = dec.opts
    xflags = data[pos]
    if xflags < 0x80:
        p = pos + 1
    elif xflags < 0xC0:         # a two-byte varint (XMIT_MOD_NSEC and the like)
        xflags = (xflags & 0x3F) << 8 | data[pos + 1]
        p = pos + 2
    else:
        xflags, p = _varint_at(data, pos)
    if xflags == 0 or xflags & (XMIT_LONG_NAME | XMIT_HLINKED | XMIT_USER_NAME_FOLLOWS
                                | XMIT_GROUP_NAME_FOLLOWS):
        return None
    if xflags & XMIT_SAME_NAME:
        l1 = data[p]
        p += 1
    else:
        l1 = 0
    l2 = data[p]
    p += 1
    lastname = dec.lastname
    if l1 > len(lastname) or l1 + l2 >= MAXPATHLEN:
        return None
    e = p + l2
    if e > len(data):
        raise NeedMore
    raw = lastname[:l1] + data[p:e] if l1 else bytes(data[p:e])
    p = e
    # size: varlong with 3 minimum bytes
    first = data[p]
    if first >= 0x80:
        return None
    e = p + 3
    if e > len(data):
        raise NeedMore
    size = data[p + 1] | (data[p + 2] << 8) | (first << 16)
    p = e
    mtime = dec.mtime
    if not xflags & XMIT_SAME_TIME:
        first = data[p]
        if first >= 0x80:
            return None
        e = p + 4
        if e > len(data):
            raise NeedMore
        mtime = data[p + 1] | (data[p + 2] << 8) | (data[p + 3] << 16) | (first << 24)
        p = e
    nsec = 0
    if xflags & XMIT_MOD_NSEC:
        if data[p] == 0xF0:     # the five-byte varint: four value bytes follow
            e = p + 5
            if e > len(data):
                raise NeedMore
            nsec = int.from_bytes(data[p + 1:e], "little")
            p = e
        else:
            nsec, p = _varint_at(data, p)
        if not 0 <= nsec <= MAX_WIRE_NSEC:
            return None
    mode = dec.mode
    if not xflags & XMIT_SAME_MODE:
        e = p + 4
        if e > len(data):
            raise NeedMore
        mode = int.from_bytes(data[p:e], "little")
        p = e
    fmt = mode & 0o170000
    if fmt != 0o100000 and fmt != 0o040000 and fmt != 0o120000:
        return None          # devices, specials, bad modes: the careful path
    uid = dec.uid
    if o.uid and not xflags & XMIT_SAME_UID:
        uid, p = _varint_at(data, p)
        uid &= 0xFFFFFFFF
    gid = dec.gid
    if o.gid and not xflags & XMIT_SAME_GID:
        gid, p = _varint_at(data, p)
        gid &= 0xFFFFFFFF
    link = None
    csum = None
    if fmt == 0o120000:
        if o.links:
            n, p = _varint_at(data, p)
            if n < 0 or n + 1 > MAXPATHLEN:
                return None
            e = p + n
            if e > len(data):
                raise NeedMore
            link = bytes(data[p:e])
            p = e
        else:
            link = b""
    elif fmt == 0o100000 and o.checksum_len:
        e = p + o.checksum_len
        if e > len(data):
            raise NeedMore
        csum = bytes(data[p:e])
        p = e
    if (raw[:1] == b"." or raw[:1] == b"/" or raw[-1:] == b"/" or b"/." in raw
            or b"//" in raw):
        name = clean_name(raw, o.relative)
        if name == b"." and fmt != 0o040000:
            return None
    else:
        name = raw
    # The whole entry is here: commit.
    dec.lastname = raw
    dec.mtime = mtime
    dec.mode = mode
    dec.uid = uid
    dec.gid = gid
    buf._pos = p
    f = FileEntry(name, mode, size, mtime, nsec, uid if o.uid else 0, gid if o.gid else 0,
                  (0, 0), link, csum,
                  xflags & (XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR) if fmt == 0o040000 else 0)
    if o.hard_links:
        dec.entries.append(f)
    return f


def _varint_at(data, pos: int):
    """(value, next position) of the varint at ``pos`` in ``data``."""
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    extra = _EXTRA[first >> 2]
    if extra > 4:
        raise ProtocolError("Overflow in read_varint()", 12)
    end = pos + 1 + extra
    if end > len(data):
        raise NeedMore
    v = int.from_bytes(data[pos + 1:end], "little") | ((first & ((1 << (8 - extra)) - 1)) << (8 * extra))
    v &= 0xFFFFFFFF
    return (v - (1 << 32) if v & 0x80000000 else v), end
