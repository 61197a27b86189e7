"""Local copy offload (pysync issue #6 part 5; notes/directio.md §4, §7.8).

In a local copy both processes are on this machine, so the receiving child
can copy a whole file from its source in the kernel (FICLONE, else
copy_file_range: io/offload.py) instead of the data crossing the socket.
This module decides when, and keeps the rsync stream rsync's own:

* The session allows it only for a local copy (whose child has the side
  channel, transport/local.py) and without options that need the data
  stream (``offload_allowed``).  Remote transfers never see any of this.
* After the file list the sender sends the child, over the side channel, the
  absolute source path of every regular file of at least ``OFFLOAD_MIN``
  bytes (``SourceTable``; format in SPEC.md §14).
* The generator, about to request such a file in phase 0 whole (no basis
  used), copies it itself (``LocalCopier.try_copy``): source still as the
  file list says (type, size, mtime), same before and after the copy, temp
  file, attributes, backup, atomic rename.  Then it tells the sender "copied"
  on the side channel and sends the request in the record shape rsync uses
  for a transfer without data (its sender's ``!do_xfers`` case, as for -n):
  ndx and iflags, no sum head.  The sender counts and logs the file exactly
  as a sent one and echoes the same record; the receiver logs it.
* Anything else -- FICLONE and copy_file_range both refused (other file
  system, tmpfs, --direct-io/--drop-cache on a file system without reflink),
  a source that changed, any error -- throws the temp file away and sends
  the ordinary request: the file goes over the stream as always, so a
  fallback looks exactly like no offload.

The copy is trusted, not re-read: rsync's whole-file checksum checks the
file rebuilt from the stream against what the sender read; an in-kernel
copy of the same inode rebuilds nothing, and hashing both files would read
them through the page cache, which is what --drop-cache forbids.  -c still
decides which files to copy (from the file list's checksums), as without
offload.  Stats: the file counts in "Number of regular files transferred"
and "Total transferred file size"; its bytes never cross the socket, so
they are in neither "Literal data" nor "Matched data" (``Stats.offloaded``
and the API's ``offloaded_data`` have them).
"""

from __future__ import annotations

import os
import stat
import threading
import time

from ..protocol.buffer import NeedMore, ReadBuffer
from ..protocol.offload import (decode_copied, decode_source, encode_copied, encode_source,
                                encode_table_end)

__all__ = ["OFFLOAD_MIN", "offload_allowed", "SourceTable", "LocalCopier"]

# Smaller files go over the socket: there the sender and receiver work on
# two cores, the copy here is one thread's, and the table stays small.
OFFLOAD_MIN = 128 << 10

# Options whose meaning is in the data stream (or in writing it a special
# way); names of options pysync may not have yet count when they appear.
_NEEDS_STREAM = ("dry_run", "inplace", "append", "append_verify", "sparse", "bwlimit",
                 "write_batch", "only_write_batch", "read_batch", "remove_source_files",
                 "temp_dir", "delay_updates", "fuzzy", "xattrs", "acls", "copy_devices",
                 "write_devices")


# A log or output format with %C shows the checksum of the data as it was
# sent (without -c): that needs the data read, so such runs stream.
_SUM_ESCAPE = r"%[-'0-9]*C"


def _sum_escape_in(fmt: str) -> bool:
    import re  # only runs with a format string get here
    return re.search(_SUM_ESCAPE, fmt) is not None


def offload_allowed(opts) -> bool:
    if any(getattr(opts, name, None) for name in _NEEDS_STREAM):
        return False
    if not getattr(opts, "checksum", False):
        for fmt in (getattr(opts, "log_format", None), getattr(opts, "log_file_format", None)):
            if fmt and _sum_escape_in(fmt):
                return False
    return True


class SourceTable:
    """The sender's end of the side channel: sends the table, then tells
    which requested files the child copied itself."""

    def __init__(self, channel):
        self.channel = channel       # transport.local.SideChannel
        self.offered = set()
        self._copied = {}            # ndx -> seconds the child's copy took
        self._buf = ReadBuffer()
        self._eof = False

    def send(self, flist) -> None:
        parts = []
        for ndx, e in enumerate(flist):
            if e.cleared or not e.is_reg or e.size < OFFLOAD_MIN or e.src is None:
                continue
            path = os.path.abspath(e.src)
            if len(path) >= 4096:
                continue
            parts.append(encode_source(ndx, path))
            self.offered.add(ndx)
        parts.append(encode_table_end())
        try:
            self.channel.send(b"".join(parts))
        except OSError:
            self.offered.clear()     # the child is gone: the stream says why

    def copied(self, ndx: int):
        """The seconds the child took to copy file ``ndx``, or None if it did
        not.  Its word was written before the request that we are reading
        now, so it has already arrived."""
        if ndx not in self.offered:
            return None
        self.offered.discard(ndx)    # one offer per file: a redo is streamed
        while not self._eof:
            data = self.channel.recv_ready()
            if data is None:
                self._eof = True
            if not data:
                break
            self._buf.feed(data)
            while True:
                try:
                    done, usec = self._buf.attempt(decode_copied)
                except NeedMore:
                    break
                self._copied[done] = usec / 1e6
        return self._copied.pop(ndx, None)


class LocalCopier:
    """The child's end: reads the table, and copies files for the generator."""

    def __init__(self, channel):
        self.channel = channel       # transport.local.SideChannel
        self.tree = self.policy = self.cfg = self.mode = None
        self.sources = {}
        self.methods = {}        # method -> files copied that way
        self.last_seconds = 0.0  # how long the last copy took
        self._stop = threading.Event()

    def cancel(self) -> None:
        """The run is ending (error, signal): a copy under way is dropped,
        not renamed into place -- as the stream drops a file it was
        receiving."""
        self._stop.set()

    def bind(self, tree, policy, cfg, write_mode) -> None:
        """The destination and how to write there (known after the table)."""
        self.tree, self.policy, self.cfg, self.mode = tree, policy, cfg, write_mode

    def receive_table(self) -> None:
        buf = ReadBuffer()
        while True:
            try:
                item = buf.attempt(decode_source)
            except NeedMore:
                data = self.channel.recv()
                if not data:
                    self.sources.clear()     # the parent is gone
                    return
                buf.feed(data)
                continue
            if item is None:
                return
            self.sources[item[0]] = item[1]

    def try_copy(self, ndx: int, entry, is_new: bool) -> bool:
        """Copy file ``ndx`` into place if it can be done in the kernel;
        False (nothing changed in the destination) when it goes over the
        stream instead."""
        path = self.sources.pop(ndx, None)
        if path is None or self._stop.is_set():
            return False
        self.last_seconds = 0.0
        start = time.monotonic()
        try:
            sfd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            before = os.fstat(sfd)
            if not self._as_listed(before, entry):
                return False
            if not self._copy(sfd, before, entry, is_new):
                return False
        finally:
            os.close(sfd)
        self.last_seconds = time.monotonic() - start
        return True

    def _as_listed(self, st, entry) -> bool:
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            return False
        sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
        return sec == entry.mtime and (nsec == entry.nsec or self.cfg.protocol < 31)

    def _copy(self, sfd: int, before, entry, is_new: bool) -> bool:
        # The writing half's modules: offload_allowed() runs in the client
        # before a local copy forks, and the sender never writes.
        from ..io.attrs import apply_fd
        from ..io.offload import clone_or_copy
        from ..io.replace import TempFile
        try:
            dir_fd, base = self.tree.locate(entry.name)
        except OSError:
            return False      # the receiver says why, in rsync's words
        existing_mode = None
        if not is_new:
            try:
                existing_mode = os.stat(base, dir_fd=dir_fd, follow_symlinks=False).st_mode
                if not stat.S_ISREG(existing_mode):
                    existing_mode = None
            except OSError:
                pass
        try:
            tmp = TempFile(dir_fd, base, temp_dir_fd=self.cfg.temp_dir_fd)
            tmp.fsync = self.cfg.fsync
        except OSError:
            return False
        try:
            how = clone_or_copy(sfd, tmp.fd, entry.size, self.mode, self._stop.is_set)
            after = os.fstat(sfd)
            if how is None or _identity(after) != _identity(before) or self._stop.is_set():
                tmp.discard()
                return False
            apply_fd(tmp.fd, entry, self.policy, existing_mode)
            if self.cfg.backups is not None:
                try:
                    self.cfg.backups.keep(entry.name)
                except FileNotFoundError:
                    pass
            tmp.commit()
        except OSError:
            # The stream path meets the same condition and reports it in
            # rsync's words (ENOSPC, EIO ...); here it only means "not so".
            tmp.discard()
            return False
        except BaseException:
            tmp.discard()
            raise
        self.methods[how] = self.methods.get(how, 0) + 1
        return True

    def announce(self, ndx: int) -> None:
        """Tell the sender (before the request goes on the main stream)."""
        self.channel.send(encode_copied(ndx, int(self.last_seconds * 1e6)))


def _identity(st):
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns
