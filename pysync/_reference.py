"""Pure-Python versions of every function in pysync._native.

These are the specification: the C code in native/ must give the same
results, and tests/native/test_native.py checks that it does on random data.
They are also what ``PYSYNC_NATIVE=ref`` runs, which is meant for tests and
debugging, not for speed.  Use them through pysync.native, never directly.
"""

import operator
import struct

__all__ = ["ABI", "weak_checksum", "WeakTable", "search", "block_weaks", "make_block_runner",
           "md4", "Md4"]

# The C interface version these functions describe (PYSYNC_NATIVE_ABI in
# native/pysync_native.h).
ABI = 1

_MASK32 = 0xFFFFFFFF

# A byte's value as a C signed char: rsync sums bytes through `schar *`.
_SIGNED = tuple(b - 256 if b >= 0x80 else b for b in range(256))


def _byte_view(buf):
    """A flat unsigned-byte view of any C-contiguous buffer."""
    view = memoryview(buf)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _sums(data):
    """(s1, s2) of rsync's weak checksum over data, full 32-bit values."""
    # upstream: checksum.c:get_checksum1()
    s1 = s2 = 0
    for b in data:
        s1 += _SIGNED[b]
        s2 += s1
    return s1 & _MASK32, s2 & _MASK32


def _roll(s1, s2, out, new, blen):
    """The sums of a window of blen bytes moved on by one: byte out leaves
    at the front, byte new enters at the back (both unsigned byte values)."""
    out = _SIGNED[out]
    s1 = (s1 - out + _SIGNED[new]) & _MASK32
    s2 = (s2 - blen * out + s1) & _MASK32
    return s1, s2


def _pack(s1, s2):
    return (s1 & 0xFFFF) | ((s2 & 0xFFFF) << 16)


def weak_checksum(buf):
    """rsync's weak checksum of buf as an unsigned 32-bit int:
    (s1 & 0xffff) | (s2 << 16), where over the bytes x[0..n) read as signed
    chars s1 = sum x[i] and s2 = sum (n - i) * x[i], both mod 2**32."""
    with _byte_view(buf) as view:
        return _pack(*_sums(view))


def _table_values(sums):
    values = set()
    for s in sums:
        s = operator.index(s)
        if not 0 <= s <= _MASK32:
            raise ValueError("weak sum %d is outside 0..2**32-1" % s)
        values.add(s)
    return frozenset(values)


class WeakTable:
    """A read-only set of 32-bit weak sums, built once per file.

    ``sums`` is any iterable of ints in 0..2**32-1 (duplicates allowed);
    ``len()`` counts distinct values and ``in`` tests membership.
    """

    __slots__ = ("_values",)

    def __init__(self, sums):
        self._values = _table_values(sums)

    def __len__(self):
        return len(self._values)

    def __contains__(self, value):
        return value in self._values


def check_search_args(start, blen, table, prev, table_type):
    """Validate search() arguments and return (start, blen, prev) with prev
    masked to 32 bits.  Shared with the native wrapper so that both backends
    refuse the same calls with the same errors."""
    start = operator.index(start)
    blen = operator.index(blen)
    if not isinstance(table, table_type):
        raise TypeError("table must be a %s.%s, not %s" % (
            table_type.__module__, table_type.__qualname__,
            type(table).__name__))
    if start < 0:
        raise ValueError("start must be >= 0, got %d" % start)
    if blen < 1:
        raise ValueError("blen must be >= 1, got %d" % blen)
    if prev is not None:
        if start < 1:
            raise ValueError("prev given but there is no window before start=0")
        s1, s2 = prev
        prev = (operator.index(s1) & _MASK32, operator.index(s2) & _MASK32)
    return start, blen, prev


def search(buf, start, blen, table, prev=None):
    """Find the first window buf[o:o+blen], o >= start, whose weak checksum
    is in table.

    With prev=None the window at start is summed from scratch; otherwise
    prev is (s1, s2) of the window at start - 1 and is rolled forward by one
    byte.  Returns (o, s1, s2) for the first hit, or (-1, s1, s2) with the
    sums of the last window examined when nothing matches, or (-1, 0, 0) when
    no window fits.  s1 and s2 are full 32-bit values, ready to be passed
    back as prev to continue at o + 1.
    """
    # upstream: match.c:hash_search()
    start, blen, prev = check_search_args(start, blen, table, prev, WeakTable)
    values = table._values
    with _byte_view(buf) as view:
        n = len(view)
        if start + blen > n:
            return (-1, 0, 0)
        if prev is None:
            s1, s2 = _sums(view[start:start + blen])
        else:
            s1, s2 = _roll(*prev, view[start - 1], view[start - 1 + blen], blen)
        o = start
        while True:
            if _pack(s1, s2) in values:
                return (o, s1, s2)
            if o + blen >= n:
                return (-1, s1, s2)
            s1, s2 = _roll(s1, s2, view[o], view[o + blen], blen)
            o += 1


def block_weaks(buf, blen):
    """The weak checksums of buf's consecutive blocks of blen bytes (the
    last one short when blen does not divide the length), as a list."""
    blen = operator.index(blen)
    if blen < 1:
        raise ValueError("blen must be >= 1, got %d" % blen)
    with _byte_view(buf) as view:
        return [_pack(*_sums(view[o:o + blen])) for o in range(0, len(view), blen)]


def make_block_runner(weaks):
    """``f(buf, pos, blen, want, most) -> k``: how many consecutive windows
    buf[pos + j*blen : pos + (j+1)*blen], j = 0, 1, ..., fit in buf and
    have the weak checksum weaks[want + j]; at most ``most`` of them.  The
    sender's check that the data goes on matching the blocks that follow
    the one just found."""
    weaks = [operator.index(w) & _MASK32 for w in weaks]

    def run(buf, pos, blen, want, most):
        k = 0
        with _byte_view(buf) as view:
            n = len(view)
            while (k < most and want + k < len(weaks) and pos + blen <= n
                   and _pack(*_sums(view[pos:pos + blen])) == weaks[want + k]):
                k += 1
                pos += blen
        return k
    return run


# MD4, RFC 1320.  Word order and shift amounts of the three rounds, and the
# constants added in rounds 2 and 3 (sqrt(2) and sqrt(3) scaled by 2**30).
_MD4_ORDER = (
    tuple(range(16)),
    (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
    (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15),
)
_MD4_SHIFT = ((3, 7, 11, 19), (3, 5, 9, 13), (3, 9, 11, 15))
_MD4_ADD = (0, 0x5A827999, 0x6ED9EBA1)
_MD4_FN = (
    lambda x, y, z: (x & y) | (~x & z),          # F: x selects y or z
    lambda x, y, z: (x & y) | (x & z) | (y & z),  # G: majority
    lambda x, y, z: x ^ y ^ z,                    # H: parity
)
_MD4_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def _md4_block(state, block):
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for r in range(3):
        fn, order, shift, add = _MD4_FN[r], _MD4_ORDER[r], _MD4_SHIFT[r], _MD4_ADD[r]
        for i in range(16):
            t = (a + fn(b, c, d) + x[order[i]] + add) & _MASK32
            s = shift[i & 3]
            t = ((t << s) | (t >> (32 - s))) & _MASK32
            # Each step rewrites A, D, C, B in turn; renaming after every
            # step lets one statement serve all four positions.
            a, b, c, d = d, t, b, c
    return tuple((v + w) & _MASK32 for v, w in zip(state, (a, b, c, d)))


class Md4:
    """Incremental MD4 with the shape of a hashlib object."""

    __slots__ = ("_state", "_length", "_pending")
    name = "md4"
    digest_size = 16
    block_size = 64

    def __init__(self, data=b""):
        self._state = _MD4_INIT
        self._length = 0
        self._pending = b""
        if data:
            self.update(data)

    def update(self, data):
        with _byte_view(data) as view:
            data = self._pending + view.tobytes()
        self._length += len(data) - len(self._pending)
        full = len(data) - len(data) % 64
        state = self._state
        for i in range(0, full, 64):
            state = _md4_block(state, data[i:i + 64])
        self._state = state
        self._pending = data[full:]

    def digest(self):
        tail = b"\x80" + b"\0" * ((55 - self._length) % 64)
        tail += struct.pack("<Q", (self._length * 8) & 0xFFFFFFFFFFFFFFFF)
        data = self._pending + tail
        state = self._state
        for i in range(0, len(data), 64):
            state = _md4_block(state, data[i:i + 64])
        return struct.pack("<4I", *state)

    def hexdigest(self):
        return self.digest().hex()

    def copy(self):
        other = Md4.__new__(Md4)
        other._state = self._state
        other._length = self._length
        other._pending = self._pending
        return other


def md4(data=b""):
    """The 16-byte MD4 digest of data."""
    return Md4(data).digest()


# ---------------------------------------------------------------------------
# dio.c: Linux calls of the write path (pysync/io/).  These twins go through
# ctypes and libc; they are what PYSYNC_NATIVE=ref runs, and what
# pysync.native falls back to when the compiled module predates dio.c.

__all__ += ["DIO_ABI", "statx_dio", "mincore", "sync_file_range", "fallocate"]

# PYSYNC_DIO_ABI in native/pysync_native.h.
DIO_ABI = 1

_STATX_DIOALIGN = 0x2000
_STATX_DIO_READ_ALIGN = 0x20000
_libc = None


def _c():
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.syscall.restype = ctypes.c_long
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                             ctypes.c_int, ctypes.c_int64]
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        lib.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_uint]
        lib.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        _libc = (ctypes, lib)
    return _libc


def _raise_errno(what):
    import ctypes
    import os
    err = ctypes.get_errno()
    raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def statx_dio(fd):
    """(stx_mask, dio_mem_align, dio_offset_align, dio_read_offset_align) of
    the open file fd; alignments whose mask bit is unset are 0.  OSError on
    failure."""
    import platform
    ctypes, lib = _c()
    nr = {"x86_64": 332, "aarch64": 291, "arm64": 291}.get(platform.machine())
    if nr is None:
        raise OSError(38, "statx: unknown syscall number on this machine")
    buf = ctypes.create_string_buffer(256)
    if lib.syscall(ctypes.c_long(nr), ctypes.c_int(fd), ctypes.c_char_p(b""),
                   ctypes.c_int(0x1000),  # AT_EMPTY_PATH
                   ctypes.c_uint(_STATX_DIOALIGN | _STATX_DIO_READ_ALIGN), buf) != 0:
        _raise_errno("statx")
    raw = buf.raw
    mask = struct.unpack_from("<I", raw, 0)[0]
    mem, off = struct.unpack_from("<II", raw, 0x98)
    rd = struct.unpack_from("<I", raw, 0xb4)[0]
    if not mask & _STATX_DIOALIGN:
        mem = off = 0
    if not mask & _STATX_DIO_READ_ALIGN:
        rd = 0
    return (mask, mem, off, rd)


def mincore(fd, offset, length):
    """Page-cache residency of [offset, offset+length) of the readable fd
    (offset page aligned): bytes with one 0/1 per page."""
    import mmap as _mmap
    ctypes, lib = _c()
    page = _mmap.PAGESIZE
    if offset % page or offset < 0 or length < 0:
        raise OSError(22, "mincore: offset must be page aligned")
    if length == 0:
        return b""
    pages = (length + page - 1) // page
    addr = lib.mmap(None, length, _mmap.PROT_READ, _mmap.MAP_SHARED, fd, offset)
    if addr in (None, ctypes.c_void_p(-1).value):
        _raise_errno("mmap")
    try:
        vec = ctypes.create_string_buffer(pages)
        if lib.mincore(addr, length, vec) != 0:
            _raise_errno("mincore")
    finally:
        lib.munmap(addr, length)
    return bytes(b & 1 for b in vec.raw[:pages])


def sync_file_range(fd, offset, nbytes, flags):
    """sync_file_range(2); OSError on failure."""
    ctypes, lib = _c()
    if lib.sync_file_range(fd, offset, nbytes, flags) != 0:
        _raise_errno("sync_file_range")


def fallocate(fd, mode, offset, length):
    """fallocate(2) without posix_fallocate's zero-writing emulation;
    OSError on failure (EOPNOTSUPP where the file system has none)."""
    ctypes, lib = _c()
    if lib.fallocate(fd, mode, offset, length) != 0:
        _raise_errno("fallocate")


# ---- allocator tuning (native/malloc.c) ---------------------------------------

__all__ += ["mallopt", "buffer_address"]


def buffer_address(buf):
    """Address of the first byte of a writable buffer (mmap, bytearray)."""
    import ctypes
    c = ctypes.c_char.from_buffer(buf)
    try:
        return ctypes.addressof(c)
    finally:
        del c


def mallopt(param, value):
    """glibc's mallopt(param, value) through ctypes: 1 on success, 0 on
    failure or without glibc."""
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").mallopt(param, value)
    except (OSError, AttributeError):
        return 0


class StopFlag:
    """A flag a running ``warm_names`` reads before each name."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = False

    def set(self):
        self.value = True

    def is_set(self):
        return self.value


def _safe_component(p):
    return p not in (b"", b".", b"..")


def warm_names(root_fd, blob, flag):
    """Look up each name of ``blob`` (relative names, each ended by a NUL)
    beneath the directory ``root_fd``: its parent's components opened one
    at a time with O_DIRECTORY|O_NOFOLLOW, the last lstat'ed (fstatat
    without following).  A name with a leading '/' or an empty, "." or
    ".." component is skipped; errors are ignored.  Stops before the next
    name once ``flag`` is set.  Returns (how many names were found (their
    lstat succeeded), the seconds it took)."""
    import os
    import time
    t0 = time.monotonic()
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    names = blob.split(b"\0")
    if names and names[-1] == b"":
        names.pop()
    done = 0
    parent = None
    dfd = -1
    try:
        for name in names:
            if flag.is_set():
                break
            if not name or name.startswith(b"/"):
                continue
            parts = name.split(b"/")
            if not all(_safe_component(p) for p in parts):
                continue
            if parts[:-1] != parent:
                if dfd >= 0 and dfd != root_fd:
                    os.close(dfd)
                parent = parts[:-1]
                dfd = root_fd
                for p in parent:
                    try:
                        nfd = os.open(p, flags, dir_fd=dfd)
                    except OSError:
                        nfd = -1
                    if dfd != root_fd:
                        os.close(dfd)
                    dfd = nfd
                    if dfd < 0:
                        break
            if dfd >= 0:
                try:
                    os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
                    done += 1
                except OSError:
                    pass
    finally:
        if dfd >= 0 and dfd != root_fd:
            os.close(dfd)
    return done, time.monotonic() - t0


def warm_dir(path, flag):
    """List the directory ``path`` (bytes, opened as given) and lstat each
    of its entries; errors are ignored.  Stops once ``flag`` is set.
    Returns (how many entries were found, the seconds it took)."""
    import os
    import time
    t0 = time.monotonic()
    done = 0
    try:
        with os.scandir(path) as it:
            for de in it:
                if flag.is_set():
                    break
                try:
                    de.stat(follow_symlinks=False)
                    done += 1
                except OSError:
                    pass
    except OSError:
        return 0, 0.0
    return done, time.monotonic() - t0
