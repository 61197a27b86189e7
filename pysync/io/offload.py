"""Local whole-file copies without moving data through Python when possible
(notes/directio.md §4, §7.8).

1. ``FICLONE`` (reflink: xfs, btrfs): shares extents, copies nothing, no
   cache effect -- allowed in every mode.
2. ``copy_file_range`` (in-kernel copy) -- only without --direct-io and
   --drop-cache, because on a non-reflink file system it leaves both copies
   in the page cache.
3. The pysync pipeline: ``SourceReader`` (read-side cache rules) into a
   ``make_sink`` sink (O_DIRECT / drop-cache as asked), reading straight
   into the sink's aligned staging buffers.

``copy_file`` leaves ``dst_fd`` complete (exact size, fsync if asked), ready
for attributes and the rename, and returns which method did the copy.
``clone_or_copy`` is steps 1-2 alone, for a caller whose fallback is its own
(the local transfer falls back to the socket stream, engine/offload.py).
"""

from __future__ import annotations

import errno
import fcntl
import os

from .. import native
from ..errors import FileIOError
from .cache import SourceReader
from .sink import WriteMode, make_sink
from .sinkbase import _show

__all__ = ["clone_or_copy", "copy_file", "FICLONE", "reflink"]

FICLONE = 0x40049409
# errnos meaning "this method does not apply here; try the next one"
_NEXT = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY,
         errno.ENOSYS, errno.EBADF, errno.EPERM, errno.ETXTBSY}


def reflink(src_fd: int, dst_fd: int) -> bool:
    """FICLONE src onto dst; False when the file systems can't."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
        return True
    except OSError as e:
        if e.errno in _NEXT:
            return False
        raise


# One copy_file_range call copies at most this much, so a cancelled copy
# stops within one step.
_STEP = 64 << 20


def _copy_range(src_fd: int, dst_fd: int, size: int, cancelled=None) -> "int | None":
    """copy_file_range loop; None when it does not apply (nothing copied)
    or ``cancelled()`` said stop."""
    off = 0
    while off < size:
        if cancelled is not None and cancelled():
            return None
        try:
            n = os.copy_file_range(src_fd, dst_fd, min(size - off, _STEP), off, off)
        except OSError as e:
            if off == 0 and e.errno in _NEXT:
                return None
            raise
        if n == 0:
            if off == 0:
                return None  # some pseudo file systems copy nothing
            break            # the source shrank
        off += n
    return off


def _kernel_copy(src_fd: int, dst_fd: int, size: int, mode: WriteMode,
                 cancelled=None) -> "str | None":
    """FICLONE, else (not with --direct-io/--drop-cache) copy_file_range.
    None when neither applies; dst_fd is then empty.  Raises OSError."""
    if size > 0 and reflink(src_fd, dst_fd):
        return "reflink"
    if mode.direct_io or mode.drop_cache:
        return None
    if mode.preallocate and size:
        try:
            native.fallocate(dst_fd, 0, 0, size)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                os.ftruncate(dst_fd, 0)
                raise
    copied = _copy_range(src_fd, dst_fd, size, cancelled) if size else 0
    if copied is None:
        os.ftruncate(dst_fd, 0)
        return None
    if os.fstat(dst_fd).st_size != copied:
        os.ftruncate(dst_fd, copied)
    return "copy_file_range"


def clone_or_copy(src_fd: int, dst_fd: int, size: int, mode: WriteMode,
                  cancelled=None) -> "str | None":
    """Copy ``size`` bytes of ``src_fd`` into the empty ``dst_fd`` in the
    kernel only: ``"reflink"`` or ``"copy_file_range"`` (fsync'ed if asked),
    with exactly ``size`` bytes in ``dst_fd``.  None -- ``dst_fd`` emptied --
    when neither method applies (other file system, no support, the cache
    rules of --direct-io/--drop-cache) or the source did not hold ``size``
    bytes (it changed meanwhile), or ``cancelled()`` turned true between
    steps.  Other errors (ENOSPC, EIO) raise OSError."""
    how = _kernel_copy(src_fd, dst_fd, size, mode, cancelled)
    if how is None:
        return None
    if os.fstat(dst_fd).st_size != size:
        os.ftruncate(dst_fd, 0)
        return None
    if mode.fsync:
        os.fsync(dst_fd)
    return how


def copy_file(src_fd: int, dst_fd: int, size: int, mode: WriteMode, *, dir_fd: int = -1,
              temp_name: bytes = b"", shown_path: bytes = b"") -> str:
    """Copy ``size`` bytes of ``src_fd`` into the empty temp file ``dst_fd``.
    Returns ``"reflink"``, ``"copy_file_range"`` or ``"pipeline"``.
    Raises FileIOError (exit 11) as make_sink does."""
    shown = _show(shown_path or temp_name)
    try:
        how = _kernel_copy(src_fd, dst_fd, size, mode)
        if how == "reflink" and os.fstat(dst_fd).st_size != size:
            os.ftruncate(dst_fd, size)    # the source changed size meanwhile
        if how is not None:
            if mode.fsync:
                os.fsync(dst_fd)
            return how
        if not (mode.direct_io or mode.drop_cache):
            mode = WriteMode(fsync=mode.fsync, write_behind=mode.write_behind,
                             queue_bytes=mode.queue_bytes, chunk_bytes=mode.chunk_bytes,
                             warn=mode.warn)  # preallocation is done
    except OSError as e:
        raise FileIOError(f"rsync: [receiver] write failed on \"{shown}\": "
                          f"{e.strerror} ({e.errno})") from None
    _pipeline(src_fd, dst_fd, size, mode, dir_fd, temp_name, shown_path or temp_name)
    return "pipeline"


def _pipeline(src_fd, dst_fd, size, mode, dir_fd, temp_name, shown_path) -> None:
    sink = make_sink(dst_fd, dir_fd, temp_name, shown_path, size, mode)
    reader = None
    try:
        start = os.lseek(src_fd, 0, os.SEEK_CUR)
        reader = SourceReader(src_fd, mode.drop_cache or mode.direct_io)
        left = size
        while left > 0:
            view = sink.writable()
            if len(view) > left:
                view = view[:left]
            try:
                n = reader.readinto(view)
            except OSError as e:
                raise FileIOError(f"rsync: read errors mapping \"{_show(shown_path)}\": "
                                  f"{e.strerror} ({e.errno})") from None
            finally:
                view.release()
            if n == 0:
                break  # the source shrank
            sink.advance(n)
            left -= n
        sink.finish()
        os.lseek(src_fd, start, os.SEEK_SET)
    except BaseException:
        sink.abort()
        raise
    finally:
        if reader is not None:
            reader.close()
