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
"""

from __future__ import annotations

import errno
import os
import threading

from .. import native
from ..errors import FileIOError
from . import cache
from .buffers import POOL
from .geometry import (PAGE_SIZE, DioGeometry, FsInfo, fs_info, geometry_for_fd,
                       max_request_bytes, set_direct)
from .writebehind import InlineWriter, WriteBehind
from .writemode import CHUNK, WriteMode

__all__ = ["WriteMode", "Sink", "BufferedSink", "DropCacheSink", "DirectSink", "make_sink",
           "AlignmentBug", "SMALL_FILE", "CHUNK", "PAGE_CACHE_CHUNK", "clear_caches"]

MiB = 1 << 20
SMALL_FILE = 1 * MiB     # below max(this, alignment): no O_DIRECT, batched drops
# Largest single buffered write.  The page cache fills a write with folios
# as large as the request allows; 2 MiB ones cost 5-8x the system time of
# 1 MiB ones here (256 MiB: 0.33-0.64 s against 0.04-0.06 s, a VM on
# Linux 6.18), so larger staging buffers go out in 1 MiB pieces.
_PAGE_CACHE_WRITE = 1 * MiB
_EARLY_WRITEBACK = 8 * MiB

class _IoLogger:
    """The "pysync.io" logger, looked up on first use: ``logging`` costs
    ~4 ms to import and a run only needs it for a notice."""

    def warning(self, text: str) -> None:
        import logging
        logging.getLogger("pysync.io").warning(text)


_log = _IoLogger()


class AlignmentBug(AssertionError):
    """A direct write that would violate the file's alignment: a pysync bug."""


# ---- per-file-system memory -----------------------------------------------------------

_lock = threading.Lock()
_warned: set = set()
_direct_refused: dict[int, OSError] = {}   # st_dev -> the EINVAL from F_SETFL
_direct_ok: set = set()


def clear_caches() -> None:
    """Forget per-file-system verdicts and notices (tests)."""
    from . import geometry
    with _lock:
        _warned.clear()
        _direct_refused.clear()
        _direct_ok.clear()
    geometry.clear_caches()
    cache.clear_caches()


def _addr_of(view) -> int:
    import ctypes
    c = ctypes.c_char.from_buffer(view)
    try:
        return ctypes.addressof(c)
    finally:
        del c


def _show(name) -> str:
    if isinstance(name, str):
        return name
    return bytes(name).decode("utf-8", "backslashreplace")


class _File:
    """What every sink knows about its file, and the error texts."""

    __slots__ = ("fd", "dir_fd", "temp_name", "shown", "st_dev", "fs", "mode")

    def __init__(self, fd, dir_fd, temp_name, shown_path, st_dev, fs: FsInfo, mode: WriteMode):
        self.fd = fd
        self.dir_fd = dir_fd
        self.temp_name = temp_name
        self.shown = _show(shown_path)
        self.st_dev = st_dev
        self.fs = fs
        self.mode = mode

    def warn_once(self, kind: str, text: str) -> None:
        key = (self.st_dev, kind)
        with _lock:
            if key in _warned:
                return
            _warned.add(key)
        (self.mode.warn or _log.warning)(text)

    def io_error(self, e: OSError, what: str = "write") -> FileIOError:
        return FileIOError(f"rsync: [receiver] {what} failed on \"{self.shown}\": "
                           f"{e.strerror or os.strerror(e.errno)} ({e.errno})")

    def no_direct(self, how: str, e: "OSError | None") -> str:
        why = f"{how}: {e.strerror} ({e.errno})" if e is not None else how
        hint = ("rerun without --direct-io (its data is in memory anyway)" if self.fs.memory_only
                else "rerun without --direct-io (--drop-cache keeps the page cache clean without it)")
        return (f"pysync: --direct-io: {self.fs.fs_type} file system mounted at "
                f"{self.fs.mount_point} does not support O_DIRECT ({why} on \"{self.shown}\"); "
                f"{hint}")


# ---- the sinks -------------------------------------------------------------------------


class Sink:
    """Staged sequential writer (see module doc).  Subclasses provide
    ``_write_chunk(buf, length, offset)`` and may override ``_write_last``
    and ``_drop``."""

    kind = "buffered"

    def __init__(self, f: _File, chunk: int, nbufs: int, write_behind: bool):
        self.f = f
        self.fd = f.fd
        self.mode = f.mode
        self.chunk = chunk
        self._nbufs = max(1, nbufs)
        self._wb = write_behind and nbufs >= 2
        # Chunks the writer thread may join into one pwritev (DirectSink
        # raises it where the device takes requests that large).
        self._max_batch = 1
        self._offset = 0          # file offset of the staging buffer
        self._fill = 0
        self._buf = None
        self._io = None
        self._bufs: list = []
        self._state = "open"      # open, finished, aborted
        self.notes: list[str] = []
        self._said: list = []     # (kind, text) from the writer thread, not yet said

    # -- staging ---------------------------------------------------------------------
    @property
    def bytes_written(self) -> int:
        """Bytes accepted so far (the file's size after finish())."""
        return self._offset + self._fill

    def _start_io(self) -> None:
        for _ in range(self._nbufs):
            self._bufs.append(POOL.acquire(self.chunk))
        write = self._write_batch
        if self._wb:
            self._io = WriteBehind(write, list(self._bufs), max_batch=self._max_batch)
        else:
            self._io = InlineWriter(write, list(self._bufs))

    def _say(self) -> None:
        """Pass notices from the writer thread on, in the caller's thread."""
        while self._said:
            kind, text = self._said.pop(0)
            self.notes.append(text)
            self.f.warn_once(kind, text)

    def _take_buffer(self):
        if self._said:
            self._say()
        if self._state != "open":
            raise ValueError(f"write to a {self._state} sink")
        if self._io is None:
            self._start_io()
        self._buf = self._io.get_buffer()
        return self._buf

    def _full(self) -> None:
        buf, off = self._buf, self._offset
        self._buf = None
        self._fill = 0
        self._offset = off + self.chunk
        self._io.submit(buf, self.chunk, off)

    def write(self, data) -> None:
        """Append ``data`` (any bytes-like object)."""
        mv = data if type(data) is memoryview else memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        n = len(mv)
        pos = 0
        chunk = self.chunk
        while pos < n:
            buf = self._buf or self._take_buffer()
            fill = self._fill
            take = chunk - fill
            if take > n - pos:
                take = n - pos
            buf.view[fill:fill + take] = mv[pos:pos + take]
            pos += take
            self._fill = fill + take
            if fill + take == chunk:
                self._full()

    def writable(self) -> memoryview:
        """The free part of the current staging buffer, to receive into
        directly (``sock.recv_into``, ``os.preadv``); follow with
        ``advance(n)``.  Do not keep it across other calls."""
        buf = self._buf or self._take_buffer()
        return buf.view[self._fill:self.chunk]

    def advance(self, n: int) -> None:
        """Account ``n`` bytes placed into ``writable()``."""
        if n < 0 or self._buf is None or self._fill + n > self.chunk:
            raise ValueError("advance() beyond the staging buffer")
        self._fill += n
        if self._fill == self.chunk:
            self._full()

    # -- end ---------------------------------------------------------------------------
    def finish(self) -> int:
        """Write everything out, make the size exact, fsync if asked, drop
        the cache as the mode says; returns the file size.  The fd stays
        open (O_DIRECT cleared) for attributes and the rename."""
        if self._state != "open":
            raise ValueError(f"finish() on a {self._state} sink")
        try:
            if self._io is not None:
                self._io.drain()
            size = self._offset + self._fill
            if self._fill:
                self._write_last(self._buf, self._fill, self._offset)
            self._close_io(abort=False)
            self._finalize(size)
        except BaseException:
            self.abort()
            raise
        finally:
            self._say()
        self._state = "finished"
        return size

    def abort(self) -> None:
        """Stop: no more writes, the writer thread is joined and buffers go
        back to the pool.  Never raises; the caller removes the temp file."""
        if self._state == "aborted":
            return
        self._state = "aborted"
        try:
            self._close_io(abort=True)
        except BaseException:  # pragma: no cover - joining cannot fail
            pass

    def _close_io(self, abort: bool) -> None:
        io, self._io = self._io, None
        self._buf = None
        if io is not None:
            io.abort() if abort else io.close()
        bufs, self._bufs = self._bufs, []
        for b in bufs:
            POOL.release(b)

    def _finalize(self, size: int) -> None:
        fd = self.fd
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            if self.mode.fsync:
                os.fsync(fd)
            self._drop(size)
        except OSError as e:
            raise self.f.io_error(e) from None

    # -- hooks -------------------------------------------------------------------------
    def _pwrite_all(self, view, offset: int) -> None:
        try:
            if self.mode.sparse:
                from .sparse import pwrite_sparse
                pwrite_sparse(view, offset, self._pwrite)
            else:
                self._pwrite(view, offset)
        except OSError as e:
            raise self.f.io_error(e) from None

    def _pwrite(self, view, offset: int) -> None:
        """All of ``view`` at ``offset``, in writes the page cache takes well."""
        fd = self.fd
        n = len(view)
        pos = 0
        while pos < n:
            w = os.pwrite(fd, view[pos:pos + _PAGE_CACHE_WRITE], offset + pos)
            if w <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            pos += w

    def _write_batch(self, items) -> None:
        for buf, length, offset in items:
            self._write_chunk(buf, length, offset)

    def _write_chunk(self, buf, length: int, offset: int) -> None:
        self._pwrite_all(buf.view[:length], offset)

    def _write_last(self, buf, length: int, offset: int) -> None:
        self._write_chunk(buf, length, offset)

    def _drop(self, size: int) -> None:
        pass


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


class DirectSink(Sink):
    """O_DIRECT for the aligned body, buffered for the unaligned tail."""

    kind = "direct"
    # Round the O_DIRECT part of the last buffer down to whole pages (so the
    # buffered tail is one partial page and needs no read); tests set it
    # False to round to the offset alignment only.
    tail_to_page = True

    def __init__(self, f: _File, geo: DioGeometry, chunk: int, nbufs: int, write_behind: bool):
        super().__init__(f, chunk, nbufs, write_behind)
        self.geo = geo
        # Join queued chunks into one request only up to the device's
        # largest request: measured here (max_sectors_kb 4096), 8 and 16 MiB
        # pwritev calls were 7-16% slower than 4 MiB ones.
        biggest = max_request_bytes(f.st_dev)
        if biggest:
            self._max_batch = max(1, min(self._nbufs // 2, biggest // chunk))
        self._checked = False         # silent-fallback probe done
        self.buffered_fallback = False
        self._behind = None           # drop-behind when O_DIRECT went buffered
        self._tail = None             # (offset, length) written buffered
        self._padded = False          # tail strategy B used

    def _check_alignment(self, addr: int, length: int, offset: int) -> None:
        g = self.geo
        if offset % g.offset_align or length % g.offset_align or addr % g.mem_align:
            raise AlignmentBug(
                f"pysync bug: unaligned O_DIRECT write to \"{self.f.shown}\": offset {offset}, "
                f"length {length}, buffer {addr:#x}; alignment {g.describe()}")

    def _direct(self, buf, start: int, length: int, offset: int) -> None:
        self._direct_many([(buf, start, length)], offset)

    def _direct_many(self, parts, offset: int) -> None:
        """One O_DIRECT pwritev of the file-contiguous ``parts`` ((buf,
        start, length), ...) at ``offset``; every piece checked first."""
        pos = offset
        for buf, start, length in parts:
            self._check_alignment(buf.addr + start, length, pos)
            pos += length
        fd = self.fd
        views = [buf.view[start:start + length] for buf, start, length in parts]
        total = pos - offset
        done = 0
        while done < total:
            try:
                w = os.pwritev(fd, views, offset + done)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise self._einval(e, _addr_of(views[0]), total - done,
                                       offset + done) from None
                raise self.f.io_error(e) from None
            if w <= 0:
                raise self.f.io_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            done += w
            if done < total:  # short write (ENOSPC follows): the rest must stay aligned
                while w and views:
                    if w >= len(views[0]):
                        w -= len(views[0])
                        views.pop(0)
                    else:
                        views[0] = views[0][w:]
                        w = 0
                if (offset + done) % self.geo.offset_align or _addr_of(views[0]) % self.geo.mem_align:
                    raise AlignmentBug(f"pysync bug: short O_DIRECT write to \"{self.f.shown}\" "
                                       f"left offset {offset + done} unaligned")

    def _einval(self, e: OSError, addr: int, length: int, offset: int) -> FileIOError:
        f = self.f
        tmp = _show(f.temp_name)
        return FileIOError(
            f"pysync: --direct-io: O_DIRECT write to \"{f.shown}\" (temp file {tmp}) failed: "
            f"{e.strerror} ({e.errno}) at offset {offset}, length {length}, buffer {addr:#x}; "
            f"alignment {self.geo.describe()} on {f.fs.describe()} is wrong for this file; "
            f"rerun without --direct-io")

    def _write_batch(self, items) -> None:
        offset = items[0][2]
        self._direct_many([(buf, 0, length) for buf, length, _ in items], offset)
        if not self._checked:
            self._checked = True
            self._probe_fallback(offset, items[0][1])
        if self._behind is not None:
            last = items[-1]
            self._behind.wrote(last[2] + last[1])

    def _write_chunk(self, buf, length: int, offset: int) -> None:
        self._write_batch([(buf, length, offset)])

    def _probe_fallback(self, offset: int, length: int) -> None:
        """One mincore sample after the first O_DIRECT chunk: resident pages
        mean the file system quietly buffered it (ext4 data=journal, ...)."""
        if self.f.fs.memory_only:  # said once already by _probe_direct
            self.buffered_fallback = True
            return
        try:
            rfd = os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            resident = native.mincore(rfd, offset, length).count(1)
        except OSError:
            return
        finally:
            os.close(rfd)
        if not resident:
            return
        self.buffered_fallback = True
        fs = self.f.fs
        text = (f"pysync: --direct-io: {fs.describe()} accepted O_DIRECT but buffered the "
                f"data (\"{self.f.shown}\"); dropping the cache behind the writer instead")
        self._behind = cache.DropBehind(self.fd)
        self._said.append(("direct-buffered", text))  # said by the producer thread

    def _write_last(self, buf, length: int, offset: int) -> None:
        g = self.geo
        unit = max(g.offset_align, PAGE_SIZE) if self.tail_to_page else g.offset_align
        aligned = length - length % unit
        if aligned:
            self._direct(buf, 0, aligned, offset)
            if self._behind is not None:
                self._behind.wrote(offset + aligned)
        rest = length - aligned
        if not rest:
            return
        tail_off = offset + aligned
        try:
            set_direct(self.fd, False)
        except OSError:
            # Strategy B: pad the tail to the alignment, write it with
            # O_DIRECT, finish() truncates to the real size.
            pad = -(-rest // g.offset_align) * g.offset_align
            buf.view[aligned + rest:aligned + pad] = bytes(pad - rest)
            self._direct(buf, aligned, pad, tail_off)
            self._padded = True
            return
        self._pwrite_all(buf.view[aligned:length], tail_off)
        self._tail = (tail_off, rest)

    def _finalize(self, size: int) -> None:
        try:
            set_direct(self.fd, False)
        except OSError:
            pass
        super()._finalize(size)

    def _drop(self, size: int) -> None:
        synced = self.mode.fsync
        if self._behind is not None:
            self._behind.finish(synced)
        elif self._tail is not None:
            off, n = self._tail
            if synced:
                cache._dontneed(self.fd, off - off % PAGE_SIZE, 0)
            else:
                cache.drop_range_synced(self.fd, off, 0)


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


def _probe_direct(f: _File) -> None:
    """Fail fast, once per file system, when it refuses O_DIRECT."""
    st_dev = f.st_dev
    with _lock:
        refused = _direct_refused.get(st_dev)
        known = st_dev in _direct_ok
    if refused is not None:
        raise FileIOError(f.no_direct("fcntl F_SETFL O_DIRECT", refused))
    if known:
        return
    try:
        set_direct(f.fd, True)
        set_direct(f.fd, False)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise f.io_error(e, "fcntl(F_SETFL, O_DIRECT)") from None
        with _lock:
            _direct_refused[st_dev] = e
        raise FileIOError(f.no_direct("fcntl F_SETFL O_DIRECT", e)) from None
    with _lock:
        _direct_ok.add(st_dev)
    if f.fs.memory_only:
        f.warn_once("memory-only", f"pysync: --direct-io: {f.fs.describe()} keeps file data in "
                                   f"memory; O_DIRECT and cache dropping do nothing there")


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
