"""End-of-run statistics on the wire (main.c handle_stats, write_del_stats).

A server sender ends with five varlong(3) values; a client receiver reads
them with the first two swapped (what the server read is what the client
wrote).  Deletion counts travel after NDX_DEL_STATS as five varints.
"""

from __future__ import annotations


from ..record import record
from .buffer import ProtocolError, ReadBuffer
from .ints import decode_varint, decode_varlong, encode_varint, encode_varlong

__all__ = ["TransferStats", "encode_stats", "decode_stats", "DeleteStats",
           "encode_del_stats", "decode_del_stats", "MAX_WIRE_DEL_STAT"]

MAX_WIRE_DEL_STAT = 1 << 28


@record
class TransferStats:
    total_read: int = 0
    total_written: int = 0
    total_size: int = 0
    flist_buildtime: int = 0  # milliseconds
    flist_xfertime: int = 0   # milliseconds


def encode_stats(s: TransferStats) -> bytes:
    """As the server sender writes them."""
    return b"".join(encode_varlong(v, 3) for v in (
        s.total_read, s.total_written, s.total_size, s.flist_buildtime, s.flist_xfertime))


def decode_stats(buf: ReadBuffer) -> TransferStats:
    """As the client receiver reads them: from its own point of view, what
    the server read is what it wrote, so the first two swap."""
    written = decode_varlong(buf, 3)
    read = decode_varlong(buf, 3)
    size = decode_varlong(buf, 3)
    build = decode_varlong(buf, 3)
    xfer = decode_varlong(buf, 3)
    return TransferStats(read, written, size, build, xfer)


@record
class DeleteStats:
    files: int = 0     # regular files (and anything not counted below)
    dirs: int = 0
    symlinks: int = 0
    devices: int = 0
    specials: int = 0

    @property
    def total(self) -> int:
        return self.files + self.dirs + self.symlinks + self.devices + self.specials


def encode_del_stats(d: DeleteStats) -> bytes:
    """The five varints after NDX_DEL_STATS (the ndx is written by the caller)."""
    return b"".join(encode_varint(v) for v in (d.files, d.dirs, d.symlinks, d.devices, d.specials))


def decode_del_stats(buf: ReadBuffer) -> DeleteStats:
    vals = [decode_varint(buf) for _ in range(5)]
    for v in vals:
        if not 0 <= v <= MAX_WIRE_DEL_STAT:
            raise ProtocolError(f"Invalid deleted-file count {v}", 2)
    return DeleteStats(*vals)
