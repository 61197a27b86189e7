"""The compressors behind the compressed token stream (protocol.md §5.6.3-5).

Two sides per codec, both sans-I/O; the record framing around them lives
in :mod:`pysync.protocol.tokens`.

* Encoder side: ``begin_file()``, ``compress(data) -> bytes`` (literal
  bytes in, whatever compressed bytes are ready out), ``flush() -> bytes``
  (end of a literal run: everything still held back), ``insert(data)``
  (zlib's history trick: a matched block enters the window, nothing goes
  out).
* Decoder side: ``begin_file()``, ``feed(record)`` (one DEFLATED_DATA
  payload), ``pull() -> bytes`` (next piece of output, at most
  ``OUT_CHUNK`` bytes, ``b""`` when the input so far is used up),
  ``end_run()`` (a token or END follows data), ``see(data)`` (the receiver
  mirrors the history trick).

zlib and zlibx: raw deflate (window bits -15, memLevel 8), a fresh stream
per file; a literal run ends with a sync flush whose trailing ``00 00 ff
ff`` is not sent, and the decoder puts those 4 bytes back itself. Only
"zlib" pushes matched blocks into both windows. zstd: one stream for the
whole session, never reset and never ended, a block flush at the end of
each literal run, no history trick. zstd runs on the system libzstd (the
library rsync links) through pysync's native module when it loads, so a
transfer neither imports python-zstandard nor differs from rsync's bytes
where zstd versions encode differently; python-zstandard is the fallback.

Errors in peer data raise ProtocolError with exit code 12, in rsync's
words where it has some.
"""

from __future__ import annotations

import re
import zlib

from .buffer import ProtocolError
from .constants import RERR_STREAMIO

__all__ = [
    "CODECS", "OUT_CHUNK", "SYNC_TAIL",
    "make_compressor", "make_decompressor",
    "Deflater", "Inflater", "ZstdCompressor", "ZstdDecompressor",
]

# Negotiable compression names we implement (lz4 is not: see protocol.md §5.6.6).
CODECS = ("zstd", "zlibx", "zlib")
# Largest piece of decompressed output handed out at once.
OUT_CHUNK = 1 << 17
# What a zlib sync flush ends with; stripped by the sender (token.c).
SYNC_TAIL = b"\x00\x00\xff\xff"
# Default levels: zlib 6 (token.c init_compression_level), zstd 3
# (ZSTD_CLEVEL_DEFAULT).
ZLIB_LEVEL = 6
ZSTD_LEVEL = 3
ZSTD_MIN_LEVEL = -(1 << 17)  # ZSTD_minCLevel()
ZSTD_MAX_LEVEL = 22  # ZSTD_maxCLevel()
# Largest stored block of the fake headers that feed matched data (0xFFFF).
_STORED_MAX = 0xFFFF


def _stream_error(what: str, err: Exception) -> ProtocolError:
    m = re.match(r"Error (-?\d+)", str(err))
    code = m.group(1) if m else "?"
    return ProtocolError(f"{what} returned {code} ({err})", RERR_STREAMIO)


# --- deflate -----------------------------------------------------------------

class Deflater:
    """Sender side of zlib/zlibx; one per session, restarted per file."""

    __slots__ = ("level", "history", "_z")

    def __init__(self, level: int | None = None, history: bool = False):
        if level is None or level == -1:
            level = ZLIB_LEVEL
        if level == 0:
            raise ValueError("zlib level 0 means no compression: use codec None")
        self.level = min(max(level, 1), 9)
        self.history = history
        self._z = None

    def _stream(self):
        z = self._z
        if z is None:
            z = self._z = zlib.compressobj(self.level, zlib.DEFLATED, -15, 8)
        return z

    def begin_file(self) -> None:
        # A new file starts a new deflate stream (rsync's deflateReset);
        # created lazily, so files that are all matches cost nothing.
        self._z = None

    def compress(self, data) -> bytes:
        return self._stream().compress(data)

    def flush(self) -> bytes:
        # upstream: token.c:send_deflated_token(), the Z_SYNC_FLUSH branch
        out = self._stream().flush(zlib.Z_SYNC_FLUSH)
        if out[-4:] != SYNC_TAIL:  # zlib guarantees it; a broken zlib is a bug
            raise AssertionError("zlib sync flush does not end in 00 00 ff ff")
        return out[:-4]

    def insert(self, data) -> None:
        # upstream: token.c:send_deflated_token(), Z_INSERT_ONLY branch.
        # Stock zlib has no Z_INSERT_ONLY; like every rsync built against
        # a system zlib we sync-flush and drop the output. Only the window
        # contents matter to the peer, and they are the same.
        if not self.history or not data:
            return
        z = self._stream()
        z.compress(data)
        z.flush(zlib.Z_SYNC_FLUSH)


class Inflater:
    """Receiver side of zlib/zlibx; one per session, restarted per file."""

    __slots__ = ("history", "_z", "_tail", "_more", "_fed")

    def __init__(self, history: bool = False):
        self.history = history
        self._z = None
        self._tail = b""  # input zlib has not taken yet
        self._more = False  # the last pull filled OUT_CHUNK: maybe more inside
        self._fed = False  # data since the last sync point

    def _stream(self):
        z = self._z
        if z is None:
            z = self._z = zlib.decompressobj(-15)
        return z

    def begin_file(self) -> None:
        self._z = None
        self._tail = b""
        self._more = False
        self._fed = False

    def feed(self, data) -> None:
        if data:
            self._tail = data
            self._more = True
            self._fed = True

    def pull(self) -> bytes:
        if not self._more:
            return b""
        z = self._stream()
        try:
            out = z.decompress(self._tail, OUT_CHUNK)
        except zlib.error as e:
            raise _stream_error("inflate", e) from None
        if z.eof:
            # The peer ended the deflate stream (Z_STREAM_END): rsync dies too.
            raise ProtocolError(f"inflate returned 1 ({len(out)} bytes)", RERR_STREAMIO)
        self._tail = z.unconsumed_tail
        self._more = bool(self._tail) or len(out) == OUT_CHUNK
        return out

    def end_run(self) -> None:
        # upstream: token.c:recv_deflated_token(), the r_inflated branch:
        # the sender cut the sync flush's last 4 bytes; put them back.
        if not self._fed:
            return
        self._fed = False
        z = self._stream()
        try:
            out = z.decompress(SYNC_TAIL)
        except zlib.error as e:
            raise _stream_error("inflate flush", e) from None
        if out or z.eof or z.unconsumed_tail:
            raise ProtocolError("decompressor lost sync!", RERR_STREAMIO)

    def see(self, data) -> None:
        # upstream: token.c:see_deflate_token(): the matched block goes in
        # as stored blocks of at most 0xFFFF bytes; the output is dropped.
        if not self.history:
            return
        z = self._stream()
        view = memoryview(data)
        try:
            for i in range(0, len(view), _STORED_MAX):
                piece = view[i:i + _STORED_MAX]
                n = len(piece)
                z.decompress(bytes((0, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF)))
                z.decompress(piece)
        except zlib.error as e:
            raise _stream_error("inflate (token)", e) from None
        if z.eof or z.unconsumed_tail:
            raise ProtocolError("inflate (token) lost sync", RERR_STREAMIO)


# --- zstd --------------------------------------------------------------------

def _system_zstd():
    """pysync.native when it can use the system libzstd, else None."""
    try:
        from pysync import native
    except ImportError:
        return None
    return native if native.zstd_version() else None


class ZstdCompressor:
    """Sender side of zstd: one stream for the whole session.

    On the system libzstd through pysync's native module when it can (the
    library rsync links, and no python-zstandard import); otherwise on
    python-zstandard.  ``backend`` ("native", "zstandard") forces one.
    """

    __slots__ = ("level", "_z", "_flush")

    def __init__(self, level: int | None = None, backend: str | None = None):
        if level is None or level == 0:
            level = ZSTD_LEVEL
        self.level = min(max(level, ZSTD_MIN_LEVEL), ZSTD_MAX_LEVEL)
        native = _system_zstd() if backend in (None, "native") else None
        if native is not None:
            self._z = native.ZstdCompress(self.level)
            self._flush = self._z.flush
            return
        if backend == "native":
            raise ImportError("no usable system libzstd")
        import zstandard

        z = self._z = zstandard.ZstdCompressor(level=self.level).compressobj()
        mode = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        self._flush = lambda: z.flush(mode)

    def begin_file(self) -> None:
        pass  # the zstd context lives for the whole session

    def compress(self, data) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._flush()

    def insert(self, data) -> None:
        pass


class ZstdDecompressor:
    """Receiver side of zstd: one stream for the whole session.

    Output comes out in pieces of at most ``OUT_CHUNK`` bytes however much
    one record expands. Back ends, best first: the system libzstd through
    pysync's native module ("native"); libzstd's streaming call through
    python-zstandard's cffi backend ("cffi"); python-zstandard's
    decompressobj ("obj"), which expands a record in one go (bounded by
    what one 16 KiB record can encode) before handing it out in pieces.
    ``backend`` forces one.
    """

    __slots__ = ("_impl",)

    def __init__(self, backend: str | None = None):
        impl = None
        if backend in (None, "native"):
            native = _system_zstd()
            if native is not None:
                impl = _ZstdNativeStream(native)
            elif backend == "native":
                raise ImportError("no usable system libzstd")
        if impl is None and backend in (None, "cffi"):
            try:
                impl = _ZstdCffiStream()
            except (ImportError, AttributeError, OSError):  # no usable cffi backend
                if backend == "cffi":
                    raise
        self._impl = impl or _ZstdObjStream()

    def begin_file(self) -> None:
        pass

    def feed(self, data) -> None:
        if data:
            self._impl.feed(data)

    def pull(self) -> bytes:
        return self._impl.pull()

    def end_run(self) -> None:
        pass

    def see(self, data) -> None:
        pass


class _ZstdNativeStream:
    __slots__ = ("_d", "_error", "feed")

    def __init__(self, native):
        self._d = native.ZstdDecompress(OUT_CHUNK)
        self._error = native.ZstdError
        self.feed = self._d.feed

    def pull(self) -> bytes:
        # upstream: token.c:recv_zstd_token(), the r_inflating state
        try:
            return self._d.pull()
        except self._error as e:
            raise ProtocolError(f"ZSTD decomp returned {e.name} ({e.written} bytes)",
                                RERR_STREAMIO) from None


class _ZstdCffiStream:
    __slots__ = ("_ffi", "_lib", "_dctx", "_in", "_out", "_buf", "_src", "_more")

    def __init__(self):
        from zstandard.backend_cffi import ffi, lib

        self._ffi = ffi
        self._lib = lib
        dctx = lib.ZSTD_createDCtx()
        if dctx == ffi.NULL:
            raise MemoryError("ZSTD_createDCtx failed")
        self._dctx = ffi.gc(dctx, lib.ZSTD_freeDCtx)
        self._in = ffi.new("ZSTD_inBuffer *")
        self._out = ffi.new("ZSTD_outBuffer *")
        self._buf = ffi.new("char[]", OUT_CHUNK)
        self._src = None  # keeps the fed record alive while zstd reads it
        self._more = False

    def feed(self, data) -> None:
        self._src = self._ffi.from_buffer(data)
        self._in.src = self._src
        self._in.size = len(data)
        self._in.pos = 0
        self._more = True

    def pull(self) -> bytes:
        # upstream: token.c:recv_zstd_token(), the r_inflating state
        if not self._more:
            return b""
        out = self._out
        out.dst = self._buf
        out.size = OUT_CHUNK
        out.pos = 0
        lib = self._lib
        r = lib.ZSTD_decompressStream(self._dctx, out, self._in)
        if lib.ZSTD_isError(r):
            name = self._ffi.string(lib.ZSTD_getErrorName(r)).decode("ascii", "replace")
            raise ProtocolError(f"ZSTD decomp returned {name} ({out.pos} bytes)",
                                RERR_STREAMIO)
        n = out.pos
        self._more = self._in.pos < self._in.size or n == OUT_CHUNK
        if not self._more:
            self._src = None
        return self._ffi.buffer(self._buf, n)[:] if n else b""


class _ZstdObjStream:
    __slots__ = ("_z", "_pending", "_pos")

    def __init__(self):
        import zstandard

        self._z = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._pos = 0

    def feed(self, data) -> None:
        import zstandard

        try:
            self._pending = self._z.decompress(data)
        except zstandard.ZstdError as e:
            raise ProtocolError(f"ZSTD decomp returned {e}", RERR_STREAMIO) from None
        self._pos = 0

    def pull(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pending):
            return b""
        out = self._pending[pos:pos + OUT_CHUNK]
        self._pos = pos + len(out)
        if self._pos >= len(self._pending):
            self._pending = b""
            self._pos = 0
        return out


# --- by name -----------------------------------------------------------------

def make_compressor(codec: str, level: int | None = None):
    """The sender-side codec for a negotiated compression name."""
    if codec == "zlib":
        return Deflater(level, history=True)
    if codec == "zlibx":
        return Deflater(level, history=False)
    if codec == "zstd":
        return ZstdCompressor(level)
    raise ValueError(f"unsupported compression {codec!r}")


def make_decompressor(codec: str):
    """The receiver-side codec for a negotiated compression name."""
    if codec == "zlib":
        return Inflater(history=True)
    if codec == "zlibx":
        return Inflater(history=False)
    if codec == "zstd":
        return ZstdDecompressor()
    raise ValueError(f"unsupported compression {codec!r}")
