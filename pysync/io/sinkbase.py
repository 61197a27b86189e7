"""The staged sequential writer every sink of sink.py is: ``Sink`` (staging
buffers from the pool, the writer thread or inline writes, ``write`` /
``writable`` + ``advance``, ``finish`` / ``abort``, the final size, fsync
and cache drop hooks) and ``_File`` (what a sink knows of its file: fd,
names for messages, file system, write mode; its one-line error texts and
the notices said once per file system).  The kinds of sink and the factory
are sink.py's (DirectSink directsink.py's).
"""

from __future__ import annotations

import errno
import os
import threading

from ..errors import FileIOError
from .buffers import POOL
from .geometry import FsInfo
from .writebehind import InlineWriter, WriteBehind
from .writemode import WriteMode

__all__ = ["Sink"]

MiB = 1 << 20
# Largest single buffered write.  The page cache fills a write with folios
# as large as the request allows; 2 MiB ones cost 5-8x the system time of
# 1 MiB ones here (256 MiB: 0.33-0.64 s against 0.04-0.06 s, a VM on
# Linux 6.18), so larger staging buffers go out in 1 MiB pieces.
_PAGE_CACHE_WRITE = 1 * MiB


class _IoLogger:
    """The "pysync.io" logger, looked up on first use: ``logging`` costs
    ~4 ms to import and a run only needs it for a notice."""

    def warning(self, text: str) -> None:
        import logging
        logging.getLogger("pysync.io").warning(text)


_log = _IoLogger()


# ---- per-file-system notices -----------------------------------------------------------

_lock = threading.Lock()
_warned: set = set()


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
