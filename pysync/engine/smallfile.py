"""Small files sent whole, on both sides.

The receiver: a file sent whole (no basis, no compression) and small
enough to hold in memory is taken from the wire in one read -- sum head,
literal records, end marker and whole-file checksum -- and written with
one pwrite, without the staged Sink of io/sink.py.

Anything else in the stream (a block reference, more data than the file
list announced, a malformed record) falls back to the general token reader
(receiver.py ``_read_tokens``), which consumes the same bytes and reports
errors in its own words.  The temp file, verification, attributes and
rename are the general path's (``Receiver._install``).

The sender: a small file with no basis goes out with one write instead of
one per token, the same bytes as the general path (``send_small_whole``).
"""

from __future__ import annotations

import errno
import os
import struct

from ..errors import FileIOError
from ..protocol.sums import decode_sum_head
from ..text import show

__all__ = ["SMALL_FILE_MAX", "small_path_ok", "read_head_and_data", "receive_small",
           "send_small_whole"]

# Files up to this size (in the file list) may take the small-file path.
SMALL_FILE_MAX = 256 * 1024
_I32 = struct.Struct("<i")


def small_path_ok(cfg) -> bool:
    """Whether this run's receiver may use the small-file path: plain
    buffered writes into a temp file, uncompressed tokens, and nothing
    that needs a half-received file (--partial)."""
    return not (cfg.compress or cfg.inplace or cfg.partial or cfg.partial_dir is not None
                or cfg.direct_io or cfg.drop_cache or cfg.preallocate or cfg.fsync
                or cfg.dry_run or cfg.sparse)


def read_head_and_data(buf, digest_len: int, limit: int):
    """Decoder for ``wire.read``: the sum head, and when the file comes
    whole as at most ``limit`` literal bytes, its data and checksum.
    Returns ``(head, data, digest)``; ``data`` is None (with only the head
    consumed) when the tokens are anything else."""
    head = decode_sum_head(buf, digest_len)
    if head.count:
        return head, None, None
    start = buf.tell()
    parts = []
    total = 0
    unpack = buf.unpack
    while True:
        n, = unpack(_I32)
        if n == 0:
            break
        total += n
        if n < 0 or total > limit:
            buf.seek(start)
            return head, None, None
        parts.append(buf.take(n))
    digest = buf.take(digest_len)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    return head, data, digest


def receive_small(recv, ndx, entry, iflags, phase, data, theirs) -> None:
    """One file taken whole by ``read_head_and_data``: as the general path
    would, into a temp file, verified, attributes applied, renamed."""
    name = entry.name
    tree = recv.tree
    size = len(data)
    recv.stats.literal_data += size
    report = recv.report
    total = len(recv.flist)
    report.progress(ndx, total, 0, entry.size, False, name)
    report.progress(ndx, total, size, entry.size, False, name)
    report.progress(ndx, total, size, entry.size, True, name)
    hasher = recv.cfg.checksum.file_hasher()
    hasher.update(data)
    recv.last_sum = theirs
    try:
        dir_fd, base = tree.locate(name)
    except OSError as e:
        recv._fail(f"rsync: [receiver] cannot reach directory of \"{show(tree.path(name))}\": "
                   f"{e.strerror} ({e.errno})")
        return
    existing_mode = recv.old_mode(iflags, dir_fd, base, ndx)
    tmp = recv.make_temp(dir_fd, base, name, entry.mode)
    if tmp is None:
        return
    try:
        if hasher.digest() != theirs:
            tmp.discard()
            recv._verify_failed(ndx, name, phase)
            return
        fd = tmp.fd
        pos = 0
        with memoryview(data) as view:
            while pos < size:
                w = os.pwrite(fd, view[pos:], pos)
                if w <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                pos += w
        recv._install(ndx, name, entry, tmp, existing_mode)
    except FileIOError:
        tmp.discard()
        raise
    except OSError as e:
        tmp.discard()
        raise FileIOError(f"rsync: [receiver] write failed on \"{show(tree.path(name))}\": "
                          f"{e.strerror} ({e.errno})") from None
    except BaseException:
        tmp.discard()
        raise


def send_small_whole(sender, fd: int, size: int, ndx, entry, first: bytes):
    """The sender's side: a small file with no basis, read with plain
    reads and sent with one write -- the same bytes as the general path:
    ``first`` (item record and sum head), literal records, end, checksum.
    Returns the whole-file checksum."""
    wire = sender.wire
    enc = sender.tokens
    report = sender.report
    total = len(sender.flist)
    name = entry.name
    hasher = sender.cfg.checksum.file_hasher()
    out = [first, enc.begin_file()]
    report.progress(ndx, total, 0, entry.size, False, name)
    done = 0
    queued = 0
    while True:
        # Up to one byte past the expected end (to see EOF); a file that
        # grew is read on in record-sized pieces.
        chunk = os.read(fd, size - done + 1 if done <= size else _GROWN_READ)
        if not chunk:
            break
        n = len(chunk)
        hasher.update(chunk)
        parts = enc.literal_iov(chunk)      # views of an immutable chunk: safe to keep
        out.extend(parts)
        done += n
        queued += n
        report.progress(ndx, total, done, entry.size, False, name)
        if queued >= _SEND_HOLD:
            wire.write_iov(out)
            out = []
            queued = 0
    digest = hasher.digest()
    out.append(enc.end())
    out.append(digest)
    wire.write_iov(out)
    report.progress(ndx, total, done, entry.size, True, name)
    stats = sender.stats
    stats.literal_data += done
    stats.files_transferred += 1
    stats.transferred_size += entry.size
    return digest


# A grown file is read this much at a time; at most this much is held
# before it is written.
_GROWN_READ = 64 * 1024
_SEND_HOLD = 1 << 20
