"""Keeping a transfer out of the page cache (``--drop-cache``; notes/directio.md §3, §7.5).

Write side (used by pysync.io.sink):

- ``dontcache``: ``pwritev2(RWF_DONTCACHE)`` (Linux 6.14+, ext4/xfs): pages
  the write instantiates are pruned when their writeback completes.  Probed
  once per file system; ``EOPNOTSUPP`` (btrfs, tmpfs, older kernels)
  switches that file system to
- ``dropbehind``: ``DropBehind`` windows trailing the writer:
  ``sync_file_range(WRITE)`` for the window just written, then
  ``sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)`` + ``POSIX_FADV_DONTNEED``
  for the one before, so at most ~2 windows are in the cache.
- small files: ``DropBatcher`` starts their writeback at close and drops them
  in batches (64 files or 64 MiB), never one fdatasync per small file.
  ``flush_pending_drops()`` runs at exit and may be called at the end of a
  run.

Read side (the sender's source, the receiver's basis):

- ``SourceReader`` / ``read_chunks()``: ``preadv2(RWF_DONTCACHE)`` where
  the kernel has it (it never evicts pages that were already cached);
  otherwise a ``mincore`` snapshot at open and ``DONTNEED`` behind the reader
  of only the pages that were *not* resident then (nocache's method), so
  pages that were cached before the run stay cached.

All of it is Linux-only and silently does nothing where a call is missing.
"""

from __future__ import annotations

import atexit
import errno
import os
import threading

from .. import native
from .geometry import PAGE_SIZE, fs_info

__all__ = ["RWF_DONTCACHE", "WINDOW", "DropBehind", "DropBatcher", "BATCHER",
           "flush_pending_drops", "dontcache_write_ok", "note_dontcache_write",
           "drop_file", "drop_range_synced", "SourceReader", "open_source_reader",
           "read_chunks", "READ_CHUNK", "resident_bytes", "clear_caches"]

RWF_DONTCACHE = 0x80
WINDOW = 8 << 20
READ_CHUNK = 1 << 20
_SFR_WRITE = native.SYNC_FILE_RANGE_WRITE
_SFR_WAIT_ALL = (native.SYNC_FILE_RANGE_WAIT_BEFORE | native.SYNC_FILE_RANGE_WRITE
                 | native.SYNC_FILE_RANGE_WAIT_AFTER)
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}

_lock = threading.Lock()
_dontcache_write: dict[int, bool] = {}
_dontcache_read: dict[int, bool] = {}


def clear_caches() -> None:
    with _lock:
        _dontcache_write.clear()
        _dontcache_read.clear()


def dontcache_write_ok(st_dev: int) -> "bool | None":
    """True/False once probed on this file system, None before."""
    with _lock:
        return _dontcache_write.get(st_dev)


def note_dontcache_write(st_dev: int, ok: bool) -> None:
    with _lock:
        _dontcache_write[st_dev] = ok


def _sfr(fd: int, offset: int, nbytes: int, flags: int) -> bool:
    try:
        native.sync_file_range(fd, offset, nbytes, flags)
        return True
    except OSError as e:
        if e.errno in _NOT_SUPPORTED or e.errno == errno.ESPIPE:
            return False
        raise


def _dontneed(fd: int, offset: int, length: int) -> None:
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def drop_range_synced(fd: int, offset: int, length: int = 0) -> None:
    """Wait for writeback of [offset, offset+length) (0 = to EOF), then drop
    it from the cache.  Falls back to fdatasync without sync_file_range."""
    start = offset - offset % PAGE_SIZE
    nbytes = 0 if length == 0 else offset + length - start
    if not _sfr(fd, start, nbytes, _SFR_WAIT_ALL):
        os.fdatasync(fd)
    _dontneed(fd, start, nbytes)


def drop_file(fd: int, synced: bool = False) -> None:
    """Drop all of a written file's pages (waiting for writeback first
    unless the caller just fsynced)."""
    if not synced:
        if not _sfr(fd, 0, 0, _SFR_WAIT_ALL):
            os.fdatasync(fd)
    _dontneed(fd, 0, 0)


class DropBehind:
    """sync_file_range/DONTNEED windows trailing a sequential writer.

    Call ``wrote(end)`` after each write that ended at file offset ``end``
    (window boundaries should be page aligned: whole chunks), ``finish()``
    at the end."""

    __slots__ = ("fd", "window", "started", "dropped")

    def __init__(self, fd: int, window: int = WINDOW):
        self.fd = fd
        self.window = window
        self.started = 0   # [.., started) has had SFR_WRITE
        self.dropped = 0   # [0, dropped) has been waited for and dropped

    def wrote(self, end: int) -> None:
        if end - self.started < self.window:
            return
        fd = self.fd
        _sfr(fd, self.started, end - self.started, _SFR_WRITE)
        if self.dropped < self.started:
            if not _sfr(fd, self.dropped, self.started - self.dropped, _SFR_WAIT_ALL):
                os.fdatasync(fd)
            _dontneed(fd, self.dropped, self.started - self.dropped)
            self.dropped = self.started
        self.started = end

    def finish(self, synced: bool = False) -> None:
        fd = self.fd
        if not synced:
            if not _sfr(fd, self.dropped, 0, _SFR_WAIT_ALL):
                os.fdatasync(fd)
        _dontneed(fd, 0, 0)
        self.dropped = self.started = 0


class DropBatcher:
    """Drops small written files in batches: ``add(fd, size)`` starts the
    file's writeback and keeps a dup of its fd; when ``max_files`` or
    ``max_bytes`` are pending, all of them are waited for, dropped and
    closed."""

    def __init__(self, max_files: int = 64, max_bytes: int = 64 << 20):
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._bytes = 0

    def add(self, fd: int, size: int, synced: bool = False) -> None:
        if not synced:
            _sfr(fd, 0, 0, _SFR_WRITE)
        try:
            dup = os.dup(fd)
        except OSError:
            drop_file(fd, synced)
            return
        with self._lock:
            self._pending.append(dup)
            self._bytes += size
            full = len(self._pending) >= self.max_files or self._bytes >= self.max_bytes
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._bytes = 0
        for fd in pending:
            try:
                drop_file(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def __len__(self) -> int:
        return len(self._pending)


BATCHER = DropBatcher()


def flush_pending_drops() -> None:
    """Drop every small file still waiting in the batch (end of a run)."""
    BATCHER.flush()


atexit.register(flush_pending_drops)


# ---------------------------------------------------------------------------------------
# read side


def resident_bytes(fd: int, offset: int = 0, length: "int | None" = None) -> int:
    """Bytes of [offset, offset+length) of the readable fd in the page cache
    (whole pages; the last page counts fully)."""
    if length is None:
        length = max(0, os.fstat(fd).st_size - offset)
    start = offset - offset % PAGE_SIZE
    total = 0
    step = 1 << 30
    pos, end = start, offset + length
    while pos < end:
        n = min(step, end - pos)
        total += native.mincore(fd, pos, n).count(1)
        pos += n
    return total * PAGE_SIZE


def _resident_runs(fd: int, size: int) -> list:
    """Byte ranges [(start, end)] of fd resident in the page cache now."""
    runs = []
    step = 1 << 30
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        vec = native.mincore(fd, pos, n)
        i = vec.find(1)
        while i >= 0:
            j = vec.find(0, i)
            if j < 0:
                j = len(vec)
            s, e = pos + i * PAGE_SIZE, min(pos + j * PAGE_SIZE, size)
            if runs and runs[-1][1] == s:
                runs[-1] = (runs[-1][0], e)
            else:
                runs.append((s, e))
            i = vec.find(1, j)
        pos += n
    return runs


class SourceReader:
    """Reads a file sequentially (or at offsets) with the cache rules of
    ``--drop-cache``: pages that were cached before stay cached, pages this
    reader brings in are dropped behind it.

    ``mode`` is ``"plain"`` (no dropping), ``"dontcache"``
    (preadv2 RWF_DONTCACHE) or ``"nocache"`` (mincore snapshot + DONTNEED).
    Reads use pread at the reader's own position (``pos``, starting at the
    fd's current offset); the fd's file offset is not moved.  ``close()``
    does the final drop and does not close the fd.
    """

    def __init__(self, fd: int, drop_cache: bool = False, *, lag: int = WINDOW):
        self.fd = fd
        self.pos = os.lseek(fd, 0, os.SEEK_CUR)
        self.lag = lag
        self._hi = self.pos          # highest offset read
        self._dropped = self.pos     # nocache: [.., _dropped) handled
        self._runs: "list | None" = None
        self._size = 0
        self.mode = "plain"
        st = os.fstat(fd)
        self.st_dev = st.st_dev
        if drop_cache and _is_regular(st.st_mode) and not fs_info(fd, st.st_dev).memory_only:
            with _lock:
                ok = _dontcache_read.get(st.st_dev)
            if ok is False:
                self._start_nocache(st.st_size)
            else:
                self.mode = "dontcache"

    def _start_nocache(self, size: "int | None" = None) -> None:
        if size is None:
            size = os.fstat(self.fd).st_size
        self._size = size
        try:
            self._runs = _resident_runs(self.fd, size)
        except OSError:
            self.mode = "plain"   # e.g. not mappable: leave the cache alone
            return
        self.mode = "nocache"

    def _preadv_dontcache(self, view, offset: int) -> int:
        try:
            return os.preadv(self.fd, [view], offset, RWF_DONTCACHE)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                raise
            with _lock:
                _dontcache_read[self.st_dev] = False
            self._start_nocache()
            return os.preadv(self.fd, [view], offset)
        finally:
            with _lock:
                if self.st_dev not in _dontcache_read and self.mode == "dontcache":
                    _dontcache_read[self.st_dev] = True

    def readinto_at(self, view, offset: int) -> int:
        """Read into the writable buffer ``view`` from ``offset``; returns
        the byte count (0 at EOF).  Does not move ``pos``."""
        if self.mode == "dontcache":
            n = self._preadv_dontcache(view, offset)
        else:
            n = os.preadv(self.fd, [view], offset)
        self._advanced(offset + n)
        return n

    def readinto(self, view) -> int:
        n = self.readinto_at(view, self.pos)
        self.pos += n
        return n

    def pread(self, n: int, offset: int):
        """Up to n bytes at offset (bytes or bytearray)."""
        if self.mode == "dontcache":
            buf = bytearray(n)
            got = self._preadv_dontcache(buf, offset)
            if got < n:
                del buf[got:]
            self._advanced(offset + got)
            return buf
        data = os.pread(self.fd, n, offset)
        self._advanced(offset + len(data))
        return data

    def read(self, n: int = READ_CHUNK):
        """Up to n bytes at ``pos`` (bytes or bytearray); empty at EOF."""
        data = self.pread(n, self.pos)
        self.pos += len(data)
        return data

    def _advanced(self, end: int) -> None:
        if end > self._hi:
            self._hi = end
        if self.mode == "nocache" and self._hi - self._dropped >= 2 * self.lag:
            upto = self._hi - self.lag
            upto -= upto % PAGE_SIZE
            self._drop_new(self._dropped, upto)
            self._dropped = upto

    def _drop_new(self, start: int, end: "int | None") -> None:
        """DONTNEED the parts of [start, end) (None: to EOF) that were not
        resident at the snapshot."""
        start -= start % PAGE_SIZE
        fd = self.fd
        pos = start
        for s, e in self._runs or ():
            if e <= pos:
                continue
            if end is not None and s >= end:
                break
            if s > pos:
                _dontneed(fd, pos, s - pos)
            # Round the resident run outward to whole pages it touches.
            pos = max(pos, -(-e // PAGE_SIZE) * PAGE_SIZE)
        if end is None:
            _dontneed(fd, pos, 0)
        elif end > pos:
            _dontneed(fd, pos, end - pos)

    def close(self) -> None:
        if self.mode == "nocache":
            self._drop_new(min(self._dropped, self.pos), None)
            self._dropped = max(self._hi, self._size)
        elif self.mode == "dontcache":
            pass  # RWF_DONTCACHE never keeps what it brought in
        self.mode = "closed"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_regular(mode: int) -> bool:
    import stat
    return stat.S_ISREG(mode)


def open_source_reader(fd: int, drop_cache: bool) -> SourceReader:
    """A SourceReader over fd (see SourceReader)."""
    return SourceReader(fd, drop_cache)


def read_chunks(fd: int, size: "int | None" = None, drop_cache: bool = False,
                chunk: int = READ_CHUNK):
    """Yield the file's data from the fd's current offset in pieces of at
    most ``chunk`` bytes (bytes or bytearray), ``size`` bytes at most
    (None: to EOF), with the read-side cache rules of ``--drop-cache``.
    The fd's own offset is left where it was."""
    reader = SourceReader(fd, drop_cache)
    try:
        left = size
        while left is None or left > 0:
            n = chunk if left is None else min(chunk, left)
            data = reader.read(n)
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data
    finally:
        reader.close()
