"""The hot loops of pysync, in C (pysync._native), behind a Python API.

This is the only module that touches pysync._native: it loads it, checks
the versions of its parts, and passes buffers with ffi.from_buffer (no
copy), ties C lifetimes to Python objects with ffi.gc and turns C failures
into Python exceptions.  pysync/_reference.py holds the pure-Python twin of
every function, which is the specification.  The wrappers of the other C
parts live beside it and use the module loaded here (its ``_ffi`` and
``_lib``; none imports pysync._native): native_io.py (dio.c, prefetch.c),
native_zstd.py (zstd.c), native_flist.py (flist.c).  Their names are this
module's too, each group loaded with the first use of one of its names
(``native.ZstdCompress``, ``from pysync.native import statx_dio``).

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

From native_io.py: ``statx_dio``, ``mincore``, ``sync_file_range``,
``fallocate`` (``SYNC_FILE_RANGE_*``), ``StopFlag``, ``warm_names``,
``warm_dir``.  From native_zstd.py: zstd streams on the system libzstd
(``zstd_version``, ``ZstdCompress``, ``ZstdDecompress``, ``ZstdError``),
which have no twin here.  From native_flist.py: ``FlistCoder`` and its
``FLIST_*`` constants.
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


# ---- versions of the compiled module's other parts --------------------------------
# Checked here, as the module loads, so that a mismatched build fails its
# import whichever part is used first.

# ``DIO_BACKEND``: "native" when dio.c is there (native_io.py), else "ref": a
# module built before it (no PYSYNC_DIO_ABI) leaves the ctypes twins to do it.
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


# ``FLIST_BACKEND``: "native" when the C loops of flist.c are there
# (native_flist.py), else "ref": then (and with ``PYSYNC_NATIVE=ref``) the
# Python coder of pysync/protocol/flist.py, which is the specification, does
# all the work.
def _flist_native_ok():
    if BACKEND != "native":
        return False
    version = getattr(_lib, "PYSYNC_FLIST_ABI", None)
    return version == 1


FLIST_BACKEND = "native" if _flist_native_ok() else "ref"


# ---- allocator tuning (native/malloc.c) -------------------------------------------
# Found by name: an extension built before malloc.c existed lacks it, and the
# ctypes twin stands in (as it does for PYSYNC_NATIVE=ref).

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


# ---- the other parts' wrappers, loaded on first use -----------------------------------

_LAZY = {}
for _module, _names in (
        ("pysync.native_io", ("statx_dio", "mincore", "sync_file_range", "fallocate",
                              "SYNC_FILE_RANGE_WAIT_BEFORE", "SYNC_FILE_RANGE_WRITE",
                              "SYNC_FILE_RANGE_WAIT_AFTER", "StopFlag", "warm_names", "warm_dir")),
        ("pysync.native_zstd", ("zstd_version", "ZstdCompress", "ZstdDecompress", "ZstdError")),
        ("pysync.native_flist", ("FlistCoder", "FLIST_FULL", "FLIST_NEED", "FLIST_CAREFUL",
                                 "FLIST_HAS_LINK", "FLIST_HAS_SUM"))):
    _LAZY.update(dict.fromkeys(_names, _module))
del _module, _names

__all__ += ["DIO_ABI", "DIO_BACKEND", "statx_dio", "mincore", "sync_file_range", "fallocate",
            "SYNC_FILE_RANGE_WAIT_BEFORE", "SYNC_FILE_RANGE_WRITE", "SYNC_FILE_RANGE_WAIT_AFTER",
            "mallopt", "buffer_address", "zstd_version", "ZstdCompress", "ZstdDecompress",
            "ZstdError", "StopFlag", "warm_names", "warm_dir", "FLIST_BACKEND", "FlistCoder"]


def __getattr__(name):
    """A name of native_io.py, native_zstd.py or native_flist.py: import that
    module and keep all its names here (a name already set here, say by a
    test, is left as it is)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    __import__(module)
    part = sys.modules[module]
    here = globals()
    for n in part.__all__:
        here.setdefault(n, getattr(part, n))
    return here[name]
