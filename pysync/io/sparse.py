"""--sparse: write a new file leaving its runs of zeros as holes.

The temp file starts empty, so not writing a range leaves a hole that
reads as zeros; the sink's final ftruncate gives the file its size when
it ends in zeros.  Zeros are skipped in whole 4 KiB blocks aligned to the
file offset (the granularity file systems allocate in), and so is a zero
piece at either end of a write; a block holding any data is written
whole.  rsync skips zero runs of 1 KiB and more; the resulting files read
the same and, on block-based file systems, take the same blocks."""

from __future__ import annotations

__all__ = ["pwrite_sparse", "HOLE_BLOCK"]

HOLE_BLOCK = 4096
_ZERO = bytes(HOLE_BLOCK)


def pwrite_sparse(view, offset: int, write) -> None:
    """Write ``view`` at ``offset`` with ``write(view, offset)`` (the sink's
    full-write loop), skipping aligned all-zero blocks."""
    n = len(view)
    if n < HOLE_BLOCK:
        if any(view):
            write(view, offset)
        return
    data = bytes(view)
    if _ZERO not in data:          # the common case: nothing to skip
        write(view, offset)
        return
    start = None                   # where the pending data run began
    b = 0
    while b < n:
        e = min(n, (offset + b) // HOLE_BLOCK * HOLE_BLOCK + HOLE_BLOCK - offset)
        if data[b:e] == _ZERO[:e - b]:
            if start is not None:
                write(view[start:b], offset + start)
                start = None
        elif start is None:
            start = b
        b = e
    if start is not None:
        write(view[start:], offset + start)
