"""The file list's ordinary entries in C (native/flist.c), wrapped over
native.py's loaded module for protocol/flist_native.py (native.py is the
only importer of pysync._native and says, as ``FLIST_BACKEND``, whether the
C loops are there; callers use these names through it, ``native.FlistCoder``).

- ``FlistCoder(uid, gid, links, csum_len)``: one direction's "same as before" state;
  ``state`` / ``set_state(mode, mtime, uid, gid, count)``; ``encode(...)`` and
  ``decode(...)`` (see there).  Values that do not fit the C types raise OverflowError
  (flist_native.py then codes the rest in Python; the state is set anew before every call).
- ``FLIST_FULL`` / ``FLIST_NEED`` / ``FLIST_CAREFUL``: why a decode call stopped;
  ``FLIST_HAS_LINK`` / ``FLIST_HAS_SUM``: an entry's extra bits.
"""

from pysync.native import _ffi, _lib

__all__ = ["FlistCoder", "FLIST_FULL", "FLIST_NEED", "FLIST_CAREFUL", "FLIST_HAS_LINK",
           "FLIST_HAS_SUM"]

FLIST_FULL, FLIST_NEED, FLIST_CAREFUL = 0, 1, 2
FLIST_HAS_LINK, FLIST_HAS_SUM = 0x1000, 0x2000
_FLIST_CHUNK = 128              # entries per decode call
_FLIST_NAMES = 16 * 1024        # bytes of names per decode call (at least one longest)
_FLIST_LINKS = 8 * 1024


class FlistCoder:
    """native/flist.c over one direction of the file list."""

    __slots__ = ("_st", "_scratch", "_csum_len", "_out", "_written")

    def __init__(self, uid, gid, links, csum_len):
        st = self._st = _ffi.new("pysync_flist_state *")
        st.opts = (_lib.PYSYNC_FLIST_UID if uid else 0) | (_lib.PYSYNC_FLIST_GID if gid else 0) \
            | (_lib.PYSYNC_FLIST_LINKS if links else 0)
        st.csum_len = csum_len
        self._csum_len = csum_len
        self._scratch = None
        self._out = self._written = None

    @property
    def state(self):
        """(mode, mtime, uid, gid, count)."""
        st = self._st
        return st.mode, st.mtime, st.uid, st.gid, st.count

    def set_state(self, mode, mtime, uid, gid, count=0):
        st = self._st
        st.mode, st.mtime, st.uid, st.gid, st.count = mode, mtime, uid, gid, count

    def encode(self, last, blob, ends, modes, sizes, mtimes, nsecs, uids, gids, xflags, plain,
               start):
        """Entries start.. of the batch (arrays of 'I' / 'q' items, ``blob`` the names
        joined, ``ends`` their cumulative lengths, ``uids`` / ``gids`` None when not
        sent, ``plain`` a byte per entry) -> (index of the first entry not encoded,
        the wire bytes of those before it).  ``last``: the name before entry 0."""
        n = len(modes)
        cap = len(blob) + (64 + self._csum_len) * (n - start) + 64
        out = self._out       # one buffer per coder, grown as needed: no churn per batch
        if out is None or len(out) < cap:
            out = self._out = bytearray(max(cap, 32 * 1024))
            self._written = _ffi.new("size_t *")
        written = self._written
        written[0] = 0
        fb = _ffi.from_buffer
        with fb("unsigned char[]", out, require_writable=True) as o:
            stop = _lib.pysync_flist_encode(
                self._st, last, len(last), blob, fb("uint32_t[]", ends),
                fb("uint32_t[]", modes), fb("int64_t[]", sizes), fb("int64_t[]", mtimes),
                fb("uint32_t[]", nsecs), _ffi.NULL if uids is None else fb("uint32_t[]", uids),
                _ffi.NULL if gids is None else fb("uint32_t[]", gids),
                fb("uint32_t[]", xflags), plain, start, n, o, len(out), written)
        return stop, out[:written[0]]

    def decode(self, last, data, pos, most):
        """Whole ordinary entries of ``data`` from ``pos`` (at most ``most``, and
        ``_FLIST_CHUNK``) -> (reason, new pos, fields): the reason the C loop
        stopped (FLIST_FULL / _NEED / _CAREFUL); fields None when no entry was
        decoded, else (names, links, sums, modes, sizes, mtimes, nsecs, uids, gids,
        extras): the names and the link targets each as one NUL-separated blob,
        the sums (of the regular files, in order) as one blob, lists of the
        other fields, and ``extras`` None when no entry has extra bits
        (FLIST_HAS_LINK / _HAS_SUM, kept transmit flags)."""
        sc = self._scratch
        if sc is None:
            # Not cleared: only the part a call writes is ever touched (RSS).
            new = _ffi.new_allocator(should_clear_after_alloc=False)
            sc = self._scratch = (
                new("unsigned char[]", _FLIST_NAMES), new("unsigned char[]", _FLIST_LINKS),
                new("unsigned char[]", max(1, self._csum_len * _FLIST_CHUNK)),
                new("uint32_t[]", _FLIST_CHUNK), new("int64_t[]", _FLIST_CHUNK),
                new("int64_t[]", _FLIST_CHUNK), new("uint32_t[]", _FLIST_CHUNK),
                new("uint32_t[]", _FLIST_CHUNK), new("uint32_t[]", _FLIST_CHUNK),
                new("uint16_t[]", _FLIST_CHUNK), new("size_t[6]"))
        names, links, sums, modes, sizes, mtimes, nsecs, uids, gids, extra, c = sc
        c[0] = pos      # position, names length, links length, count, entries with extras
        c[1] = c[2] = c[3] = c[4] = 0
        with _ffi.from_buffer("unsigned char[]", data) as buf:
            reason = _lib.pysync_flist_decode(
                self._st, last, len(last), buf, len(buf), c, min(most, _FLIST_CHUNK),
                names, _FLIST_NAMES, c + 1, links, _FLIST_LINKS, c + 2, sums, modes, sizes,
                mtimes, nsecs, uids, gids, extra, c + 3, c + 4)
        k = c[3]
        if not k:
            return reason, pos, None
        unpack = _ffi.unpack
        buffer = _ffi.buffer
        return reason, c[0], (buffer(names, c[1])[:],
                buffer(links, c[2])[:] if c[2] else b"",
                buffer(sums, self._csum_len * k)[:] if self._csum_len else b"",
                unpack(modes, k), unpack(sizes, k), unpack(mtimes, k), unpack(nsecs, k),
                unpack(uids, k), unpack(gids, k), unpack(extra, k) if c[4] else None)
