"""The file list's ordinary entries through the C loops of native/flist.c.

``encode_batch`` / ``decode_batch`` give exactly the bytes and entries of
flist_batch.py's Python coder (the specification, tests/protocol/
test_flist_native.py compares them): the fields of a batch go to C as
arrays, and every entry the C loop leaves (one with a link target, a sum,
device numbers, a hard link...; on the receiving side also the list's end,
odd names and anything out of range) goes through the Python coder, with
the "same as before" state handed across.  ``usable(opts)`` is the gate:
only the option sets the C loop knows; any other (-X, -A, and any field
FlistOptions gains later) stays on the Python coder.
"""

from __future__ import annotations

from itertools import accumulate, repeat
from operator import attrgetter, is_

from .buffer import NeedMore
from .flist import EndOfList, FileEntry, FlistOptions

__all__ = ["usable", "available", "ready", "encode_batch", "decode_batch", "ENCODE_MIN", "DECODE_MIN"]

# The compiled module loads with the first batch big enough to pay for it
# (~2 ms of a process's start, more from a cold disk: a list of one file is
# coded in Python well before): None until then, False when it is not there.
_native = None
#: A coder not yet made codes smaller batches in Python: entries to encode,
#: bytes waiting to be decoded.  Made once, it codes every batch.
ENCODE_MIN = 64
DECODE_MIN = 4096

# FlistOptions fields the C loops handle, whatever their value (per entry,
# what they do not cover goes to Python); any other field must be at its
# default for the C path to be taken.
_HANDLED = frozenset(("uid", "gid", "links", "devices", "specials", "hard_links",
                      "checksum_len", "relative", "id0_names", "numeric_ids", "missing"))

_name = attrgetter("name")
_mode = attrgetter("mode")
_size = attrgetter("size")
_mtime = attrgetter("mtime")
_nsec = attrgetter("nsec")
_uid = attrgetter("uid")
_gid = attrgetter("gid")
_xflags = attrgetter("xflags")
_x = attrgetter("_x")
_NO_RDEV = (0, 0)


def usable(opts: FlistOptions) -> bool:
    """Whether the C loops may code a list with these options (unless they
    turn out not to be there: see ``available``)."""
    if _native is False:
        return False
    spec = FlistOptions._record_spec
    for name in spec.names:
        if name not in _HANDLED and getattr(opts, name) != spec.defaults.get(name):
            return False
    return True


def available() -> bool:
    """Whether the C loops are there (this loads the compiled module)."""
    global _native
    if _native is None:
        try:
            from pysync import native
        except ImportError:     # no compiled module: the Python coder does it all
            _native = False
        else:
            _native = native if native.FLIST_BACKEND == "native" else False
    return _native is not False


def ready(side) -> bool:
    """Make the C coder of a FlistEncoder / FlistDecoder whose options the
    gate let through (``side._native`` None); False, and the side left to
    the Python coder for good, when the C loops are not there."""
    if side._native is None:
        if not available():
            side._native = False
            return False
        o = side.opts
        side._native = _native.FlistCoder(o.uid, o.gid, o.links, o.checksum_len)
    return side._native is not False


def _coder(side):
    return side._native


def encode_batch(enc, entries, encode_python) -> bytes:
    """The wire form of ``entries`` for FlistEncoder ``enc``;
    ``encode_python(enc, entries)`` codes what the C loop leaves."""
    if not entries:
        return b""
    o = enc.opts
    names = list(map(_name, entries))
    array = _native.array.array      # (the array module comes with it)
    try:
        ends = array("I", accumulate(map(len, names)))
        modes = array("I", map(_mode, entries))
        sizes = array("q", map(_size, entries))
        mtimes = array("q", map(_mtime, entries))
        nsecs = array("I", map(_nsec, entries))
        uids = array("I", map(_uid, entries)) if o.uid else None
        gids = array("I", map(_gid, entries)) if o.gid else None
        xflags = array("I", map(_xflags, entries))
    except OverflowError:       # a value beyond the C types: the Python coder
        return encode_python(enc, entries)
    plain = bytes(map(is_, map(_x, entries), repeat(None)))
    blob = b"".join(names)
    coder = _coder(enc)
    out = []
    start = 0
    n = len(entries)
    while start < n:
        try:
            coder.set_state(enc.mode, enc.mtime, enc.uid, enc.gid, enc.count)
        except OverflowError:   # state left by an odd entry coded in Python
            out.append(encode_python(enc, entries[start:]))
            break
        stop, data = coder.encode(enc.lastname, blob, ends, modes, sizes, mtimes, nsecs,
                                  uids, gids, xflags, plain, start)
        if stop > start:
            out.append(data)
            enc.mode, enc.mtime, enc.uid, enc.gid, enc.count = coder.state
            enc.lastname = names[stop - 1]
        if stop < n:
            out.append(encode_python(enc, entries[stop:stop + 1]))
        start = stop + 1
    return b"".join(out)


def decode_batch(dec, buf, limit: int) -> list:
    """Up to ``limit`` whole entries (the last may be an EndOfList) for
    FlistDecoder ``dec``, as flist_batch.decode_batch; NeedMore only when
    not even one is there."""
    coder = _coder(dec)
    o = dec.opts
    out = []
    data = buf._data
    modes_seen = dec._ints      # one int object per mode / uid / gid value
    keep = o.hard_links
    while len(out) < limit:
        coder.set_state(dec.mode, dec.mtime, dec.uid, dec.gid)
        reason, pos, fields = coder.decode(dec.lastname, data, buf._pos, limit - len(out))
        if fields is not None:
            entries = _entries(fields, o, modes_seen)
            buf._pos = pos
            dec.mode, dec.mtime, dec.uid, dec.gid, _ = coder.state
            dec.lastname = entries[-1].name
            if keep:
                dec.entries.extend(entries)
            out += entries
        if reason == _native.FLIST_FULL and fields is not None:
            continue        # (FULL with nothing decoded cannot be: careful path then)
        if reason == _native.FLIST_NEED:
            if out:
                return out
            raise NeedMore
        start = buf._pos
        try:
            item = dec.decode(buf)      # the careful path: the end, odd entries, errors
        except NeedMore:
            buf._pos = start
            if out:
                return out
            raise
        out.append(item)
        if item.__class__ is EndOfList:
            break
    return out


def _entries(fields, o, seen) -> list:
    names, links, sums, modes, sizes, mtimes, nsecs, uids, gids, extras = fields
    names = names.split(b"\0")
    names.pop()
    setdefault = seen.setdefault
    modes = list(map(setdefault, modes, modes))
    if o.uid:
        uids = list(map(setdefault, uids, uids))
    if o.gid:
        gids = list(map(setdefault, gids, gids))
    same = {}
    mtimes = list(map(same.setdefault, mtimes, mtimes))
    entries = list(map(FileEntry, names, modes, sizes, mtimes, nsecs, uids, gids))
    if extras is not None:
        targets = iter(links.split(b"\0"))
        n = o.checksum_len
        j = 0
        for e, x in zip(entries, extras):
            if not x:
                continue
            if x & _native.FLIST_HAS_LINK:
                e.link = next(targets) if o.links else b""
            if x & _native.FLIST_HAS_SUM:
                e.sum = sums[j:j + n]
                j += n
            e.xflags = x & 0x1FF
    return entries
