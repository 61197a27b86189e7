"""zstd streams on the system libzstd (native/zstd.c), wrapped over
native.py's loaded module (native.py is the only importer of
pysync._native; callers use these names through it, ``native.ZstdCompress``
...).  They have no pure-Python twin: without the native module or a
libzstd, pysync/protocol/compress.py uses python-zstandard.

- ``zstd_version() -> int``: ZSTD_versionNumber() of the libzstd found at
  run time, 0 when there is none (or no native module): callers then use
  python-zstandard.  The library is looked for on the first call.
- ``ZstdCompress(level)``: ``compress(data) -> bytes`` (ZSTD_e_continue),
  ``flush() -> bytes`` (ZSTD_e_flush: everything fed so far comes out).
- ``ZstdDecompress(out_size)``: ``feed(data)``, then ``pull() -> bytes``
  until it returns b"": at most out_size bytes per call.

Both raise ZstdError (zstd's error name, bytes written by the failed call).
"""

from pysync.native import BACKEND, _ffi, _lib

__all__ = ["zstd_version", "ZstdCompress", "ZstdDecompress", "ZstdError"]

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
