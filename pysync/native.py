"""The hot loops of pysync, in C (pysync._native), behind a Python API.

This is the only module that touches pysync._native: it passes buffers with
ffi.from_buffer (no copy), ties C lifetimes to Python objects with ffi.gc and
turns C failures into Python exceptions.  pysync/_reference.py holds the
pure-Python twin of every function, which is the specification.

Setting the environment variable ``PYSYNC_NATIVE=ref`` before the first
import exports the reference implementations instead, under the same names;
that is for tests and debugging, not for use (it is slow).

Public API (both backends):

- ``BACKEND``: ``"native"`` or ``"ref"``.
- ``ABI``: version of the C interface (``PYSYNC_NATIVE_ABI``).
- ``weak_checksum(buf) -> int``: rsync's weak checksum of a buffer.
- ``WeakTable(sums)``: read-only set of 32-bit weak sums; ``len``, ``in``.
- ``search(buf, start, blen, table, prev=None) -> (offset, s1, s2)``: first
  window at or after start whose weak sum is in table (see _reference.search).
- ``make_searcher(table) -> f(buf, start, blen, prev=None)``: ``search`` bound
  to one table, without per-call argument checks (the delta loop).
- ``block_weaks(buf, blen)``: the weak sums of buf's consecutive blocks.
- ``make_block_runner(weaks) -> f(buf, pos, blen, want, most) -> k``: how
  many windows from pos on, one block apart, go on matching weaks[want:].
- ``md4(data=b"") -> bytes`` and ``Md4(data=b"")`` with ``update``,
  ``digest``, ``hexdigest``, ``copy`` (the shape of a hashlib object).

zstd streams on the system libzstd (``zstd_version``, ``ZstdCompress``,
``ZstdDecompress``; native/zstd.c) have no twin here: without the native
module or a libzstd, pysync/protocol/compress.py uses python-zstandard.
"""

import array
import os
import sys

from pysync import _reference

__all__ = ["BACKEND", "ABI", "weak_checksum", "WeakTable", "search", "make_searcher",
           "block_weaks", "make_block_runner", "BLOCK_RUNS", "md4", "Md4"]

_MASK32 = 0xFFFFFFFF


def _choose_backend():
    policy = os.environ.get("PYSYNC_NATIVE", "") or "native"
    if policy not in ("native", "ref"):
        raise ImportError(
            "PYSYNC_NATIVE=%r is not understood: use 'ref' for the pure-Python "
            "reference, or leave it unset" % policy)
    return policy


def _load_native():
    try:
        from pysync._native import ffi, lib
    except ImportError as exc:
        raise ImportError(
            "pysync's compiled module pysync._native is missing or broken (%s); "
            "install pysync with `pip install .` (in a checkout, "
            "`python native/build.py` builds it in place)" % exc) from exc
    if lib.PYSYNC_NATIVE_ABI != _reference.ABI:
        raise ImportError(
            "pysync._native has C interface version %d but pysync/native.py "
            "expects %d: rebuild it with `pip install .`"
            % (lib.PYSYNC_NATIVE_ABI, _reference.ABI))
    return ffi, lib


BACKEND = _choose_backend()
ABI = _reference.ABI
_ffi = _lib = None
if BACKEND == "native":
    _ffi, _lib = _load_native()


def _bytes_of(buf):
    """A zero-copy `unsigned char[]` over any contiguous buffer; use it as a
    context manager so the buffer is released (mmap can then be closed)."""
    return _ffi.from_buffer("unsigned char[]", buf)


def weak_checksum(buf):
    """rsync's weak checksum of buf (see _reference.weak_checksum)."""
    with _bytes_of(buf) as p:
        return _lib.pysync_weak_checksum(p, len(p))


def _uint32_array(sums):
    if isinstance(sums, array.array) and sums.itemsize == 4 and sums.typecode in "IL":
        return _ffi.from_buffer("uint32_t[]", sums)
    if not isinstance(sums, (list, tuple)):
        sums = list(sums)
    try:
        return _ffi.new("uint32_t[]", sums)
    except OverflowError:
        raise ValueError("weak sums must be in 0..2**32-1") from None


class WeakTable:
    """A read-only set of 32-bit weak sums, built once per file.

    ``sums`` is any iterable of ints in 0..2**32-1 (duplicates allowed); an
    ``array.array('I')`` is read without a copy.  ``len()`` counts distinct
    values and ``in`` tests membership.
    """

    __slots__ = ("_table",)

    def __init__(self, sums):
        values = _uint32_array(sums)
        table = _lib.pysync_table_new(values, len(values))
        if table == _ffi.NULL:
            raise MemoryError("no memory for a weak-sum table of %d entries" % len(values))
        # Slots (2-4 per entry) and the prefilter: a hint for the collector.
        self._table = _ffi.gc(table, _lib.pysync_table_free, size=16 * len(values))

    def __len__(self):
        return _lib.pysync_table_size(self._table)

    def __contains__(self, value):
        return (isinstance(value, int) and 0 <= value <= _MASK32
                and bool(_lib.pysync_table_contains(self._table, value)))


def search(buf, start, blen, table, prev=None):
    """First window buf[o:o+blen], o >= start, whose weak sum is in table,
    as (o, s1, s2); (-1, s1, s2) of the last window when none matches;
    (-1, 0, 0) when no window fits.  See _reference.search."""
    start, blen, prev = _reference.check_search_args(start, blen, table, prev, WeakTable)
    with _bytes_of(buf) as p:
        n = len(p)
        if start + blen > n:
            return (-1, 0, 0)
        sums = _ffi.new("uint32_t[2]", prev or (0, 0))
        offset = _lib.pysync_search(p, n, start, blen, table._table,
                                    prev is not None, sums, sums + 1)
        return (offset, sums[0], sums[1])


def make_searcher(table):
    """``search`` bound to ``table``, for a caller making many calls on
    one table: ``f(buf, start, blen, prev) -> (offset, s1, s2)`` with the
    results of :func:`search`.  The table is checked once here; the other
    arguments are not checked per call (pass what ``search`` accepts)."""
    if not isinstance(table, WeakTable):
        raise TypeError("table must be a %s.%s, not %s" % (
            WeakTable.__module__, WeakTable.__qualname__, type(table).__name__))
    ctable = table._table
    sums = _ffi.new("uint32_t[2]")
    sums1 = sums + 1
    from_buffer = _ffi.from_buffer
    c_search = _lib.pysync_search

    def fast_search(buf, start, blen, prev=None):
        with from_buffer("unsigned char[]", buf) as p:
            n = len(p)
            if start + blen > n:
                return (-1, 0, 0)
            if prev is not None:
                sums[0] = prev[0] & _MASK32
                sums[1] = prev[1] & _MASK32
                offset = c_search(p, n, start, blen, ctable, 1, sums, sums1)
            else:
                offset = c_search(p, n, start, blen, ctable, 0, sums, sums1)
            return (offset, sums[0], sums[1])

    fast_search.table = table   # keeps the C table alive
    return fast_search


# Functions added after ABI 1 (rolling.c).  A compiled module built before
# them lacks the symbols: block_weaks then sums block by block, and
# BLOCK_RUNS says that make_block_runner would be the (slow) reference.
_RUNS_NATIVE = BACKEND == "native" and hasattr(_lib, "pysync_block_run")
BLOCK_RUNS = _RUNS_NATIVE


def block_weaks(buf, blen):
    """The weak checksums of buf's consecutive blocks of ``blen`` bytes, the
    last one short when blen does not divide len(buf) (a sequence of
    ints; see _reference.block_weaks)."""
    if blen < 1:
        raise ValueError("blen must be >= 1, got %d" % blen)
    if not _RUNS_NATIVE:
        with memoryview(buf) as view:
            return [weak_checksum(view[o:o + blen]) for o in range(0, len(view), blen)]
    with _bytes_of(buf) as p:
        n = len(p)
        out = array.array("I", bytes(4 * (-(-n // blen))))
        with _ffi.from_buffer("uint32_t[]", out, require_writable=True) as o:
            _lib.pysync_block_weaks(p, n, blen, o)
    return out


def make_block_runner(weaks):
    """``f(buf, pos, blen, want, most) -> k``: the number of consecutive
    windows from buf[pos] on, one block apart, whose weak checksums are
    weaks[want], weaks[want + 1], ... (at most ``most``; see
    _reference.make_block_runner).  Arguments are not checked per call."""
    if not _RUNS_NATIVE:
        return _reference.make_block_runner(weaks)
    cweaks = _uint32_array(weaks)
    nweaks = len(cweaks)
    from_buffer = _ffi.from_buffer
    c_run = _lib.pysync_block_run

    def block_run(buf, pos, blen, want, most):
        with from_buffer("unsigned char[]", buf) as p:
            return c_run(p, len(p), pos, blen, cweaks, nweaks, want, most)

    block_run.weaks = cweaks    # keeps the C array alive
    return block_run


def _md4_context(ctx):
    if ctx == _ffi.NULL:
        raise MemoryError("no memory for an MD4 context")
    return _ffi.gc(ctx, _lib.pysync_md4_free)


class Md4:
    """Incremental MD4 (RFC 1320) with the shape of a hashlib object.
    One object must not be updated from two threads at once."""

    __slots__ = ("_ctx",)
    name = "md4"
    digest_size = 16
    block_size = 64

    def __init__(self, data=b""):
        self._ctx = _md4_context(_lib.pysync_md4_new())
        self.update(data)

    def update(self, data):
        with _bytes_of(data) as p:
            _lib.pysync_md4_update(self._ctx, p, len(p))

    def digest(self):
        out = _ffi.new("unsigned char[16]")
        _lib.pysync_md4_digest(self._ctx, out)
        return _ffi.buffer(out)[:]

    def hexdigest(self):
        return self.digest().hex()

    def copy(self):
        other = Md4.__new__(Md4)
        other._ctx = _md4_context(_lib.pysync_md4_copy(self._ctx))
        return other


def md4(data=b""):
    """The 16-byte MD4 digest of data."""
    out = _ffi.new("unsigned char[16]")
    with _bytes_of(data) as p:
        _lib.pysync_md4(p, len(p), out)
    return _ffi.buffer(out)[:]


if BACKEND == "ref":
    from pysync._reference import (  # noqa: E402,F811
        Md4, WeakTable, block_weaks, make_block_runner, md4, search, weak_checksum)
    BLOCK_RUNS = True   # the reference is the specification: exercise it

    def make_searcher(table):  # noqa: F811
        if not isinstance(table, WeakTable):
            raise TypeError("table must be a %s.%s, not %s" % (
                WeakTable.__module__, WeakTable.__qualname__, type(table).__name__))

        def ref_search(buf, start, blen, prev=None):
            return search(buf, start, blen, table, prev)
        return ref_search


# ---------------------------------------------------------------------------
# dio.c: Linux calls for the write path (pysync/io/).
#
# - ``statx_dio(fd) -> (mask, mem_align, offset_align, read_offset_align)``
# - ``mincore(fd, offset, length) -> bytes``: one 0/1 byte per page
#   (offset page aligned, fd readable).
# - ``sync_file_range(fd, offset, nbytes, flags)``, ``fallocate(fd, mode,
#   offset, length)``.
# All raise OSError with the C errno on failure.  A compiled module built
# before dio.c existed (no PYSYNC_DIO_ABI) falls back to the ctypes twins.

__all__ += ["DIO_ABI", "DIO_BACKEND", "statx_dio", "mincore", "sync_file_range", "fallocate",
            "SYNC_FILE_RANGE_WAIT_BEFORE", "SYNC_FILE_RANGE_WRITE",
            "SYNC_FILE_RANGE_WAIT_AFTER"]

SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4
DIO_ABI = _reference.DIO_ABI


def _dio_native_ok():
    if BACKEND != "native":
        return False
    version = getattr(_lib, "PYSYNC_DIO_ABI", None)
    if version is None:
        return False
    if version != _reference.DIO_ABI:
        raise ImportError(
            "pysync._native has dio interface version %d but pysync/native.py "
            "expects %d: rebuild it with `pip install .`" % (version, _reference.DIO_ABI))
    return True


DIO_BACKEND = "native" if _dio_native_ok() else "ref"


def _check(ret, what):
    if ret < 0:
        raise OSError(-ret, "%s: %s" % (what, os.strerror(-ret)))
    return ret


def statx_dio(fd):
    """(stx_mask, dio_mem_align, dio_offset_align, dio_read_offset_align)
    of the open file fd (see _reference.statx_dio)."""
    out = _ffi.new("uint32_t[4]")
    _check(_lib.pysync_statx_dio(fd, out), "statx")
    return (out[0], out[1], out[2], out[3])


def mincore(fd, offset, length):
    """Residency of [offset, offset+length) of the readable fd: bytes with
    one 0/1 per page (see _reference.mincore)."""
    if offset < 0 or length < 0:
        raise OSError(22, "mincore: negative offset or length")
    if length == 0:
        return b""
    import mmap as _mmap
    vec = bytearray((length + _mmap.PAGESIZE - 1) // _mmap.PAGESIZE)
    with _ffi.from_buffer("unsigned char[]", vec, require_writable=True) as p:
        _check(_lib.pysync_mincore(fd, offset, length, p), "mincore")
    return bytes(vec)


def sync_file_range(fd, offset, nbytes, flags):
    """sync_file_range(2); OSError on failure."""
    _check(_lib.pysync_sync_file_range(fd, offset, nbytes, flags), "sync_file_range")


def fallocate(fd, mode, offset, length):
    """fallocate(2); OSError on failure (EOPNOTSUPP where unsupported)."""
    _check(_lib.pysync_fallocate(fd, mode, offset, length), "fallocate")


if DIO_BACKEND == "ref":
    from pysync._reference import (  # noqa: E402,F811
        fallocate, mincore, statx_dio, sync_file_range)


# ---- allocator tuning (native/malloc.c) -------------------------------------------
# Found by name: an extension built before malloc.c existed lacks it, and the
# ctypes twin stands in (as it does for PYSYNC_NATIVE=ref).

__all__ += ["mallopt", "buffer_address"]

if BACKEND == "native" and hasattr(_lib, "pysync_mallopt"):
    mallopt = _lib.pysync_mallopt
else:
    from pysync._reference import mallopt  # noqa: E402,F811


def tune_malloc():
    """Keep glibc from returning and re-faulting megabyte buffers."""
    mallopt(-3, 64 << 20)    # M_MMAP_THRESHOLD
    mallopt(-1, 256 << 20)   # M_TRIM_THRESHOLD
    mallopt(-2, 64 << 20)    # M_TOP_PAD


# In the command line's processes (pysync/cli.py TUNE_MALLOC), as the data
# path loads this module and before it allocates its buffers.
if getattr(sys.modules.get("pysync.cli"), "TUNE_MALLOC", False):
    tune_malloc()


def buffer_address(buf):
    """Address of the first byte of a writable buffer (mmap, bytearray),
    without importing ctypes."""
    with _ffi.from_buffer("char[]", buf, require_writable=True) as p:
        return int(_ffi.cast("uintptr_t", p))


if BACKEND != "native":
    from pysync._reference import buffer_address  # noqa: E402,F811


# ---- zstd on the system libzstd (native/zstd.c) ----------------------------------
# - ``zstd_version() -> int``: ZSTD_versionNumber() of the libzstd found at
#   run time, 0 when there is none (or no native module): callers then use
#   python-zstandard.  The library is looked for on the first call.
# - ``ZstdCompress(level)``: ``compress(data) -> bytes`` (ZSTD_e_continue),
#   ``flush() -> bytes`` (ZSTD_e_flush: everything fed so far comes out).
# - ``ZstdDecompress(out_size)``: ``feed(data)``, then ``pull() -> bytes``
#   until it returns b"": at most out_size bytes per call.
# Both raise ZstdError (zstd's error name, bytes written by the failed call).

__all__ += ["zstd_version", "ZstdCompress", "ZstdDecompress", "ZstdError"]

_ZSTD_SCRATCH = 1 << 17
_zstd_version = None


class ZstdError(Exception):
    """A zstd call failed: ``name`` is zstd's error text, ``written`` the
    bytes the failing call had produced."""

    def __init__(self, name, written=0):
        super().__init__(name)
        self.name = name
        self.written = written


def zstd_version():
    """ZSTD_versionNumber() of the system libzstd, or 0 when not usable."""
    global _zstd_version
    if _zstd_version is None:
        ok = BACKEND == "native" and hasattr(_lib, "pysync_zstd_version")
        _zstd_version = _lib.pysync_zstd_version() if ok else 0
    return _zstd_version


def _zstd_error(code, written=0):
    name = _ffi.string(_lib.pysync_zstd_error_name(code)).decode("ascii", "replace")
    return ZstdError(name, written)


class ZstdCompress:
    """One zstd compression stream (frame never ended), at ``level``."""

    __slots__ = ("_ctx", "_buf", "_args")

    def __init__(self, level):
        if not zstd_version():
            raise ImportError("no usable system libzstd")
        ctx = _lib.pysync_zstd_cctx_new(level)
        if ctx == _ffi.NULL:
            raise MemoryError("cannot make a zstd compression context at level %d" % level)
        self._ctx = _ffi.gc(ctx, _lib.pysync_zstd_cctx_free)
        self._buf = _ffi.new("unsigned char[]", _ZSTD_SCRATCH)
        self._args = _ffi.new("size_t[3]")   # input position, written, error code

    def _run(self, src, n, flush):
        args, buf, ctx = self._args, self._buf, self._ctx
        pos, written, err = args, args + 1, args + 2
        args[0] = 0
        chunks = []
        while True:
            r = _lib.pysync_zstd_compress(ctx, src, n, pos, flush, buf, _ZSTD_SCRATCH,
                                          written, err)
            if r < 0:
                raise _zstd_error(args[2], args[1])
            if args[1]:
                chunks.append(_ffi.buffer(buf, args[1])[:])
            if not r:
                break
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def compress(self, data):
        with _ffi.from_buffer("unsigned char[]", data) as src:
            return self._run(src, len(src), 0)

    def flush(self):
        return self._run(_ffi.NULL, 0, 1)


class ZstdDecompress:
    """One zstd decompression stream, fed a record at a time."""

    __slots__ = ("_ctx", "_buf", "_size", "_args", "_src", "_n", "_more")

    def __init__(self, out_size=_ZSTD_SCRATCH):
        if not zstd_version():
            raise ImportError("no usable system libzstd")
        ctx = _lib.pysync_zstd_dctx_new()
        if ctx == _ffi.NULL:
            raise MemoryError("cannot make a zstd decompression context")
        self._ctx = _ffi.gc(ctx, _lib.pysync_zstd_dctx_free)
        self._size = out_size
        self._buf = _ffi.new("unsigned char[]", out_size)
        self._args = _ffi.new("size_t[3]")   # input position, written, error code
        self._src = None   # the fed data, kept alive while zstd reads it
        self._n = 0
        self._more = False

    def feed(self, data):
        self._src = _ffi.from_buffer("unsigned char[]", data)
        self._n = len(self._src)
        self._args[0] = 0
        self._more = True

    def pull(self):
        if not self._more:
            return b""
        args = self._args
        r = _lib.pysync_zstd_decompress(self._ctx, self._src, self._n, args, self._buf,
                                        self._size, args + 1, args + 2)
        w = args[1]
        if r < 0:
            raise _zstd_error(args[2], w)
        self._more = args[0] < self._n or w == self._size
        if not self._more:
            self._src = None
        return _ffi.buffer(self._buf, w)[:] if w else b""

# ---- the destination cache warmer (native/prefetch.c, io/prefetch.py) -------------------
#
# - ``StopFlag()``: ``set()`` / ``is_set()``, read by a running warm_names.
# - ``warm_names(root_fd, blob, flag) -> (found, seconds)``: lstat each NUL-ended name of
#   ``blob`` beneath ``root_fd`` without following symlinks (see
#   _reference.warm_names); the C loop runs without the GIL.
# - ``warm_dir(path, flag) -> (found, seconds)``: list a directory and lstat its entries
#   (see _reference.warm_dir), also without the GIL.  Found by name,
#   as mallopt: an older extension without it uses the Python twin.

__all__ += ["StopFlag", "warm_names", "warm_dir"]

if BACKEND == "native" and hasattr(_lib, "pysync_warm_names") and hasattr(_lib, "pysync_warm_dir"):
    class StopFlag:
        __slots__ = ("cell", "ns")

        def __init__(self):
            self.cell = _ffi.new("int[1]")
            self.ns = _ffi.new("int64_t[1]")      # the time the last call took

        def set(self):
            self.cell[0] = 1

        def is_set(self):
            return bool(self.cell[0])

    def warm_names(root_fd, blob, flag):
        """See _reference.warm_names."""
        found = _lib.pysync_warm_names(root_fd, blob, len(blob), flag.cell, flag.ns)
        return found, flag.ns[0] / 1e9

    def warm_dir(path, flag):
        """See _reference.warm_dir."""
        found = _lib.pysync_warm_dir(path, flag.cell, flag.ns)
        return found, flag.ns[0] / 1e9
else:
    from pysync._reference import StopFlag, warm_dir, warm_names  # noqa: E402,F811


# ---- the file list's ordinary entries (native/flist.c, protocol/flist_native.py) ---------
#
# - ``FLIST_BACKEND``: ``"native"`` when the C loops are there, else ``"ref"``: then (and
#   with ``PYSYNC_NATIVE=ref``) the Python coder of pysync/protocol/flist.py, which is the
#   specification, does all the work.
# - ``FlistCoder(uid, gid, links, csum_len)``: one direction's "same as before" state;
#   ``state`` / ``set_state(mode, mtime, uid, gid, count)``; ``encode(...)`` and
#   ``decode(...)`` (see there).  Values that do not fit the C types raise OverflowError
#   (flist_native.py then codes the rest in Python; the state is set anew before every call).

__all__ += ["FLIST_BACKEND", "FlistCoder"]


def _flist_native_ok():
    if BACKEND != "native":
        return False
    version = getattr(_lib, "PYSYNC_FLIST_ABI", None)
    return version == 1


FLIST_BACKEND = "native" if _flist_native_ok() else "ref"
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
