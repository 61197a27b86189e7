"""The basis a requested file's delta works from, as the generator sees
it: the --partial-dir file kept from an interrupted transfer (and its
removal once the file turns out up to date), and the sum head and block
sums of the basis sent with the request (generator.c
generate_and_send_sums).  Which basis a file uses is recorded in the
generator's ``basis`` map, shared with the receiver."""

from __future__ import annotations

import os
import stat
import struct

from .. import native
from ..protocol.sums import SumHead, encode_sum_head, sum_head_for

__all__ = ["partial_path", "drop_stale_partial", "append_length", "send_sums", "SUMS_READ_SIZE"]

SUMS_READ_SIZE = 256 << 10   # bytes of the basis read per call when summing it
SUMS_WRITE_UNIT = 1 << 20    # the sums are written at the end of such a stretch of the basis
SUMS_PER_WRITE = 4096        # ... once this many are waiting
_WEAK = struct.Struct("<I")


def partial_path(gen, name: bytes) -> bytes:
    """Where --partial-dir keeps the partial file of ``name``."""
    pdir = gen.cfg.partial_dir
    parent, base = os.path.split(name)
    if os.path.isabs(pdir):
        return os.path.join(pdir, base)
    return os.path.join(gen.tree.root, parent, pdir, base)


def drop_stale_partial(gen, path: bytes) -> None:
    """A partial-dir file for a file that turned out up to date is of
    no more use (generator.c): remove it, and its directory if empty."""
    try:
        os.unlink(path)
    except OSError:
        return
    if not os.path.isabs(gen.cfg.partial_dir):
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


def append_length(gen, ndx: int, entry, st):
    """--append: the length the file counts as having already (-1: none):
    the destination file's, or for a missing one its -y or --*-dest
    basis's (rsync's generator compares the length of whichever basis it
    found, so a file whose basis is at least as long is skipped, without
    a line).  A --partial-dir file is not counted (rsync turns to it
    before comparing)."""
    if st is not None:
        return st.st_size
    path = gen.basis.get(ndx)
    if path is None:
        return -1
    if ndx not in gen.fuzzy_basis:
        if not gen.cfg.alt_dests or not path.startswith(b"/"):
            return -1
        if gen.cfg.partial_dir is not None and path == partial_path(gen, entry.name):
            return -1
    try:
        bst = os.lstat(path) if path.startswith(b"/") else gen.tree.lstat(path)
    except OSError:
        return -1
    return bst.st_size


def send_sums(gen, entry, redo: bool, basis_name: bytes) -> None:
    cfg = gen.cfg
    digest_len = cfg.checksum.digest_len
    fd = -1
    size = 0
    if not cfg.whole_file or redo:
        try:
            if basis_name.startswith(b"/"):
                fd = os.open(basis_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            else:
                dfd, base = gen.tree.locate(basis_name)
                fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                size = st.st_size
            elif cfg.write_devices and (stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode)):
                from ..io.inplace import device_size
                size = device_size(fd)      # the device is the basis
        except OSError:
            fd = -1
    if fd < 0 or size == 0 or (cfg.whole_file and not redo):
        if fd >= 0:
            os.close(fd)
        gen.wire.write(encode_sum_head(SumHead(0, 0, 0, 0)))
        return
    try:
        head = sum_head_for(size, digest_len, cfg.block_size, redo=redo)
        gen.wire.write(encode_sum_head(head))
        if cfg.append and not redo:
            return      # --append: the head tells the sender how much is kept
        strong = cfg.checksum.seeded(cfg.seed)
        s2 = head.s2length
        block_weaks = native.block_weaks
        pack = _WEAK.pack
        blen = head.blength
        count = head.count
        last = head.remainder or blen
        # Read SUMS_READ_SIZE at a time into one buffer reused from read to
        # read (a fresh 1 MiB bytes per read made 2-3 MiB of this thread's
        # peak), and keep the sums encoded, not as (weak, strong) pairs.
        # The writes are what they were (a write once SUMS_PER_WRITE sums
        # are waiting at the end of a SUMS_WRITE_UNIT of the basis), so
        # the data frames on the wire are too.  A file that shrank since
        # the fstat reads as zeros.
        per_read = max(1, SUMS_READ_SIZE // blen)
        per_unit = max(1, SUMS_WRITE_UNIT // blen)
        buf = bytearray(min(per_read, count) * blen)
        out = bytearray()
        waiting = 0
        with memoryview(buf) as view:
            for unit in range(0, count, per_unit):
                unit_end = min(unit + per_unit, count)
                for first in range(unit, unit_end, per_read):
                    n = min(per_read, unit_end - first)
                    want = (n - 1) * blen + (last if first + n == count else blen)
                    with view[:want] as mv:
                        got = os.preadv(fd, (mv,), first * blen)
                        if got < want:
                            mv[got:] = bytes(want - got)
                        weaks = block_weaks(mv, blen)
                        for j, off in enumerate(range(0, want, blen)):
                            out += pack(weaks[j])
                            out += strong(mv[off:off + blen])[:s2]
                    waiting += n
                if waiting >= SUMS_PER_WRITE:
                    gen.wire.write(out)
                    out = bytearray()
                    waiting = 0
        gen.wire.write(out)
    finally:
        os.close(fd)
