"""The one interface the receiver writes a file's data through.

    sink = make_sink(tmp.fd, dir_fd, tmp.name, shown_path, expected_size, mode)
    try:
        for piece in pieces:
            sink.write(piece)        # any size, sequential
        size = sink.finish()         # everything on disk as asked, exact size
    except BaseException:
        sink.abort()
        raise
    # then fchmod/fchown/futimens on tmp.fd and the rename

Three implementations (notes/directio.md §7):

- ``BufferedSink``: plain buffered writes (the default).
- ``DropCacheSink`` (``--drop-cache``): ``RWF_DONTCACHE`` where the file
  system has it (probed once per file system), else sync_file_range windows
  + DONTNEED trailing the writer; small files are dropped in batches.
- ``DirectSink`` (``--direct-io``): ``O_DIRECT`` set with ``F_SETFL`` on the
  temp fd; 4 MiB page-aligned chunks at aligned offsets through a
  write-behind thread; the unaligned tail written with O_DIRECT cleared,
  then waited for and dropped.  Files below max(1 MiB, alignment) skip
  O_DIRECT and take the drop-cache path.

Every failure is a ``FileIOError`` (exit 11) with one line of text.
Alignment violations are checked before each direct write and raise
``AlignmentBug`` (an AssertionError: a pysync bug, never sent to the kernel).

This module owns the choice (``make_sink``) and the two buffered sinks;
the ``Sink`` base they share is sinkbase.py's, ``DirectSink`` (with the
per-file-system O_DIRECT verdicts) directsink.py's: both re-exported here.
"""

from __future__ import annotations

import errno
import os

from .. import native
from ..errors import FileIOError
from . import cache
from .directsink import AlignmentBug, DirectSink, _direct_ok, _direct_refused, _probe_direct
from .geometry import PAGE_SIZE, fs_info, geometry_for_fd, set_direct
from .sinkbase import Sink, _File, _lock, _warned
from .writemode import CHUNK, WriteMode

__all__ = ["WriteMode", "Sink", "BufferedSink", "DropCacheSink", "DirectSink", "make_sink",
           "AlignmentBug", "SMALL_FILE", "CHUNK", "PAGE_CACHE_CHUNK", "clear_caches"]

MiB = 1 << 20
SMALL_FILE = 1 * MiB     # below max(this, alignment): no O_DIRECT, batched drops
_EARLY_WRITEBACK = 8 * MiB


def clear_caches() -> None:
    """Forget per-file-system verdicts and notices (tests)."""
    from . import geometry
    with _lock:
        _warned.clear()
        _direct_refused.clear()
        _direct_ok.clear()
    geometry.clear_caches()
    cache.clear_caches()


# ---- the sinks -------------------------------------------------------------------------


class BufferedSink(Sink):
    """Plain buffered writes.  With a writer thread (large files), every
    ``_EARLY_WRITEBACK`` bytes written go to the kernel's writeback at once
    (sync_file_range WRITE, which does not wait for the disk): the rename
    over an existing file would otherwise start the writeback of the whole
    file and wait for it (ext4 auto_da_alloc; 256 MiB: 0.11-0.17 s of
    rename against 0.06 s)."""

    kind = "buffered"
    _flushed = 0        # the file's first bytes already handed to writeback

    def _write_chunk(self, buf, length: int, offset: int) -> None:
        super()._write_chunk(buf, length, offset)
        if not self._wb:
            return
        end = offset + length
        if end - self._flushed >= _EARLY_WRITEBACK and self._flushed >= 0:
            try:
                native.sync_file_range(self.fd, self._flushed, end - self._flushed,
                                       native.SYNC_FILE_RANGE_WRITE)
                self._flushed = end
            except OSError:
                self._flushed = -1      # not here: leave it to the kernel


class DropCacheSink(Sink):
    """Buffered writes that leave (almost) nothing in the page cache."""

    kind = "drop-cache"

    def __init__(self, f: _File, chunk: int, nbufs: int, write_behind: bool, small: bool):
        super().__init__(f, chunk, nbufs, write_behind)
        self.small = small
        ok = cache.dontcache_write_ok(f.st_dev)
        self.policy = "dropbehind" if ok is False else "dontcache"
        self._behind = cache.DropBehind(f.fd) if self.policy == "dropbehind" else None

    def _write_chunk(self, buf, length: int, offset: int) -> None:
        view = buf.view[:length]
        if self.policy == "dontcache":
            fd = self.fd
            pos = 0
            try:
                while pos < length:
                    w = os.pwritev(fd, [view[pos:]], offset + pos, cache.RWF_DONTCACHE)
                    if w <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    pos += w
                if cache.dontcache_write_ok(self.f.st_dev) is None:
                    cache.note_dontcache_write(self.f.st_dev, True)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP) or pos:
                    raise self.f.io_error(e) from None
            cache.note_dontcache_write(self.f.st_dev, False)
            self.policy = "dropbehind"
            self._behind = cache.DropBehind(self.fd)
        self._pwrite_all(view, offset)
        self._behind.wrote(offset + length)

    def _drop(self, size: int) -> None:
        if size == 0:
            return
        synced = self.mode.fsync
        if self.small and size < SMALL_FILE:
            cache.BATCHER.add(self.fd, size, synced)
        elif self._behind is not None:
            self._behind.finish(synced)
        else:
            cache.drop_file(self.fd, synced)


# ---- the factory -----------------------------------------------------------------------


def _preallocate(f: _File, size: int) -> None:
    try:
        native.fallocate(f.fd, 0, 0, size)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL):
            return  # no preallocation on this file system: write normally
        try:
            os.ftruncate(f.fd, 0)  # a failed fallocate can leave blocks behind
        except OSError:
            pass
        raise f.io_error(e, "preallocate") from None


# A plain buffered write only copies into the page cache and the kernel
# writes back on its own: with write-behind, one buffer filling while the
# other is written is enough.  (The queue_bytes worth a direct or
# cache-dropping sink stages held 8 MiB more per receiver for nothing: a
# 256 MiB delta peaked at 34.8 MiB, now 27.9, in the same time.)
_PAGE_CACHE_NBUFS = 2
# ... and small ones: the page cache takes a write at memory speed, so
# 2 x 256 KiB keep the writer thread as busy as 2 x 4 MiB did.  (Those
# made 8 MiB of a 256 MiB delta's receiver peak; 256 KiB buffers cost
# ~20 ms more CPU per 256 MiB written than 1 MiB ones, in the same wall
# time.)
PAGE_CACHE_CHUNK = 256 << 10


def _nbufs(mode: WriteMode, chunk: int, inline: int = 1) -> int:
    """Staging buffers per file: queue_bytes worth with write-behind, else
    ``inline``."""
    return max(2, mode.queue_bytes // chunk) if mode.write_behind else inline


def make_sink(tmp_fd: int, dir_fd: int, temp_name: bytes, shown_path: bytes,
              expected_size: int, mode: WriteMode) -> Sink:
    """The sink for one temp file (see module doc).

    ``tmp_fd``: the open, empty temp file (O_WRONLY is enough; it must not
    have O_APPEND).  ``dir_fd``/``temp_name`` name it for messages,
    ``shown_path`` is the destination as rsync prints it, ``expected_size``
    the size announced by the sender (a hint: more or fewer bytes may come).
    Raises FileIOError (exit 11) when --direct-io is impossible on this file
    system or preallocation finds no space.
    """
    st = os.fstat(tmp_fd)
    f = _File(tmp_fd, dir_fd, temp_name, shown_path, st.st_dev, fs_info(tmp_fd, st.st_dev), mode)
    expected_size = max(0, expected_size)
    if mode.direct_io:
        _probe_direct(f)
        geo = geometry_for_fd(tmp_fd, st.st_dev)
        if not geo.capable:
            raise FileIOError(f.no_direct("statx reports no direct I/O alignment for this file: "
                                          "data=journal, encryption or verity", None))
        if mode.preallocate and expected_size:
            _preallocate(f, expected_size)
        if expected_size >= max(SMALL_FILE, geo.offset_align):
            unit = max(geo.offset_align, PAGE_SIZE)
            chunk = max(-(-mode.chunk_bytes // unit) * unit, unit)
            try:
                set_direct(tmp_fd, True)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise FileIOError(f.no_direct("fcntl F_SETFL O_DIRECT", e)) from None
                raise f.io_error(e, "fcntl(F_SETFL, O_DIRECT)") from None
            return DirectSink(f, geo, chunk, _nbufs(mode, chunk), mode.write_behind)
        # Small: buffered, but keep the promise of no cache.
        if f.fs.memory_only:
            return BufferedSink(f, mode.chunk_bytes, 1, False)
        return DropCacheSink(f, mode.chunk_bytes, 1, False, small=True)
    if mode.preallocate and expected_size and not mode.sparse:
        _preallocate(f, expected_size)     # (a sparse file keeps its holes instead)
    if mode.drop_cache:
        if f.fs.memory_only:
            f.warn_once("memory-only-drop", f"pysync: --drop-cache: {f.fs.describe()} keeps file "
                                            f"data in memory; dropping its cache does nothing there")
            return BufferedSink(f, mode.chunk_bytes, _nbufs(mode, mode.chunk_bytes),
                                mode.write_behind)
        return DropCacheSink(f, mode.chunk_bytes, _nbufs(mode, mode.chunk_bytes),
                             mode.write_behind, small=expected_size < SMALL_FILE)
    chunk = min(mode.chunk_bytes, PAGE_CACHE_CHUNK)
    return BufferedSink(f, chunk, min(_PAGE_CACHE_NBUFS, _nbufs(mode, chunk)), mode.write_behind)
