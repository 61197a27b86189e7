"""``--direct-io``'s sink: ``DirectSink`` writes the aligned body of a file
with O_DIRECT (page-aligned staging buffers, several chunks joined into
one request up to the device's largest, each write checked against the
file's alignment first: ``AlignmentBug``) and its unaligned tail buffered,
notices a file system that buffers O_DIRECT quietly, and
``_probe_direct`` refuses, once per file system, one that has no O_DIRECT
(the verdicts kept per st_dev).  make_sink (sink.py) chooses it.
"""

from __future__ import annotations

import errno
import os

from .. import native
from ..errors import FileIOError
from . import cache
from .geometry import PAGE_SIZE, DioGeometry, max_request_bytes, set_direct
from .sinkbase import Sink, _File, _lock, _show

__all__ = ["DirectSink", "AlignmentBug"]


class AlignmentBug(AssertionError):
    """A direct write that would violate the file's alignment: a pysync bug."""


# ---- per-file-system verdicts ----------------------------------------------------------

_direct_refused: dict[int, OSError] = {}   # st_dev -> the EINVAL from F_SETFL
_direct_ok: set = set()


def _addr_of(view) -> int:
    import ctypes
    c = ctypes.c_char.from_buffer(view)
    try:
        return ctypes.addressof(c)
    finally:
        del c


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

