"""The system calls of pysync/io/ in C, wrapped over native.py's loaded
module (native.py is the only importer of pysync._native; callers use the
names below through it, ``native.statx_dio`` ...).

dio.c, Linux calls for the write path:

- ``statx_dio(fd) -> (mask, mem_align, offset_align, read_offset_align)``
- ``mincore(fd, offset, length) -> bytes``: one 0/1 byte per page
  (offset page aligned, fd readable).
- ``sync_file_range(fd, offset, nbytes, flags)``, ``fallocate(fd, mode,
  offset, length)``.

All raise OSError with the C errno on failure.  A compiled module built
before dio.c existed (no PYSYNC_DIO_ABI: native.DIO_BACKEND is "ref")
falls back to the ctypes twins.

prefetch.c, the destination cache warmer (io/prefetch.py):

- ``StopFlag()``: ``set()`` / ``is_set()``, read by a running warm_names.
- ``warm_names(root_fd, blob, flag) -> (found, seconds)``: lstat each NUL-ended name of
  ``blob`` beneath ``root_fd`` without following symlinks (see
  _reference.warm_names); the C loop runs without the GIL.
- ``warm_dir(path, flag) -> (found, seconds)``: list a directory and lstat its entries
  (see _reference.warm_dir), also without the GIL.  Found by name,
  as mallopt: an older extension without it uses the Python twin.
"""

import os

from pysync.native import BACKEND, DIO_BACKEND, _ffi, _lib

__all__ = ["statx_dio", "mincore", "sync_file_range", "fallocate", "SYNC_FILE_RANGE_WAIT_BEFORE",
           "SYNC_FILE_RANGE_WRITE", "SYNC_FILE_RANGE_WAIT_AFTER", "StopFlag", "warm_names",
           "warm_dir"]

SYNC_FILE_RANGE_WAIT_BEFORE = 1
SYNC_FILE_RANGE_WRITE = 2
SYNC_FILE_RANGE_WAIT_AFTER = 4


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


# ---- the destination cache warmer (native/prefetch.c) ---------------------------------

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
