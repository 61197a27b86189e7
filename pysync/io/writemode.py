"""WriteMode: how the receiver writes files, one per run.

Apart from io/sink.py (which re-exports it) so that a receiver is set up
without loading the write path itself (sink, buffers, write-behind, the
cache rules, fcntl and mmap): a run that receives no file data never
needs them."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..record import field, record

__all__ = ["WriteMode", "CHUNK", "PAGE_SIZE"]

MiB = 1 << 20
CHUNK = 4 * MiB          # staging buffer and O_DIRECT write size
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")      # as mmap.PAGESIZE (io/geometry.py)


@record(frozen=True)
class WriteMode:
    """How the receiver writes files (one per run).

    ``write_behind`` None means "on for direct_io": O_DIRECT writes block
    for the device, buffered ones don't.  ``queue_bytes`` bounds one file's
    staging memory (buffers of ``chunk_bytes``).  ``warn`` receives one-line
    notices (each said once per file system); the default logs to the
    "pysync.io" logger.
    """
    direct_io: bool = False
    drop_cache: bool = False
    preallocate: bool = False
    fsync: bool = False
    sparse: bool = False             # --sparse: aligned zero blocks become holes (io/sparse.py)
    write_behind: bool | None = None
    queue_bytes: int = 16 * MiB
    chunk_bytes: int = CHUNK
    warn: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.write_behind is None:
            object.__setattr__(self, "write_behind", bool(self.direct_io))
        if self.chunk_bytes <= 0 or self.chunk_bytes % PAGE_SIZE:
            raise ValueError("chunk_bytes must be a positive multiple of the page size")
        if self.queue_bytes < 0:
            raise ValueError("queue_bytes must not be negative")
