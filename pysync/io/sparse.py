"""--sparse: write a new file leaving its runs of zeros as holes.

The temp file starts empty, so not writing a range leaves a hole that
reads as zeros; the sink's final ftruncate gives the file its size when
it ends in zeros.  Zeros are skipped in whole 4 KiB blocks aligned to the
file offset (the granularity file systems allocate in), and so is a zero
piece at either end of a write; a block holding any data is written
whole.  rsync skips zero runs of 1 KiB and more; the resulting files read
the same and, on block-based file systems, take the same blocks."""

from __future__ import annotations

import errno
import os

__all__ = ["pwrite_sparse", "HOLE_BLOCK"]

HOLE_BLOCK = 4096
_ZERO = bytes(HOLE_BLOCK)


def _pwrite(fd: int, view, offset: int) -> None:
    pos, n = 0, len(view)
    while pos < n:
        w = os.pwrite(fd, view[pos:], offset + pos)
        if w <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        pos += w


def pwrite_sparse(fd: int, view, offset: int) -> None:
    """pwrite ``view`` at ``offset``, skipping aligned all-zero blocks."""
    n = len(view)
    if n < HOLE_BLOCK:
        if any(view):
            _pwrite(fd, view, offset)
        return
    data = bytes(view)
    if _ZERO not in data:          # the common case: nothing to skip
        _pwrite(fd, view, offset)
        return
    start = None                   # where the pending data run began
    b = 0
    while b < n:
        e = min(n, (offset + b) // HOLE_BLOCK * HOLE_BLOCK + HOLE_BLOCK - offset)
        if data[b:e] == _ZERO[:e - b]:
            if start is not None:
                _pwrite(fd, view[start:b], offset + start)
                start = None
        elif start is None:
            start = b
        b = e
    if start is not None:
        _pwrite(fd, view[start:], offset + start)
