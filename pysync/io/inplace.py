"""--inplace and --append: the destination file itself is the output.

The receiver writes the new data at explicit offsets into the existing
file (the inode, and with it every hard link to it, is kept), leaves alone
the blocks the sender found unchanged at their own offset, and cuts the
file to its new length at the end.  There is no temp file and nothing to
roll back: an interrupted transfer leaves a file that is part new, part
old, which is the point of the option (and why it implies --partial).

A destination without write permission for its owner is opened by adding
owner-write for the moment of the open (rsync does the same); the mode is
put back before any data is written.
"""

from __future__ import annotations

import os
import stat

__all__ = ["InPlaceFile", "DeviceStat", "device_size"]

_OPEN = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class InPlaceFile:
    """The open destination ``base`` in ``dir_fd``, written at ``offset``.

    ``updating`` says the basis of matched blocks is this file's own old
    data (or a copy of it): a block sent back to its own offset is then
    skipped instead of rewritten.
    """

    def __init__(self, dir_fd: int, base: bytes, updating: bool, *, fsync: bool = False,
                 preallocate: bool = False, drop_cache: bool = False, size: int = 0):
        self.fd = _open_writable(dir_fd, base)
        # --write-devices: an existing device node is written into, never
        # cut to length.
        mode = os.fstat(self.fd).st_mode
        self.device = stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
        self.updating = updating
        self.offset = 0
        self._fsync = fsync
        self._drop_cache = drop_cache
        if preallocate and size > 0:
            old = os.fstat(self.fd).st_size
            if size > old:
                try:
                    os.posix_fallocate(self.fd, old, size - old)
                except OSError:
                    pass    # as rsync: preallocation is a hint (the data still goes)

    # the interface the receiver writes through (see io/sink.py)
    def write(self, data) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, self.offset)
            self.offset += n
            view = view[n:]

    def write_block(self, data, basis_offset: int) -> None:
        """A matched block read from the basis at ``basis_offset``."""
        if self.updating and basis_offset == self.offset:
            self.offset += len(data)     # the same bytes are already there
        else:
            self.write(data)

    def seek(self, offset: int) -> None:
        """--append: keep the first ``offset`` bytes as they are."""
        self.offset = offset

    def finish(self) -> int:
        """Cut the file to what was written; fsync / drop from the cache if
        asked.  Returns the file's size."""
        if not self.device:
            os.ftruncate(self.fd, self.offset)
        if self._fsync or self._drop_cache:
            os.fsync(self.fd)
        if self._drop_cache:
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return self.offset

    def abort(self) -> None:
        """Nothing to undo: what was written stays (as with rsync)."""

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def device_size(fd: int) -> int:
    """A device's size: its end offset (flist.c get_device_size)."""
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        return size
    except OSError:
        return 0


class DeviceStat:
    """The stat of a device node that --write-devices treats as a regular
    file: its size is the device's (a device's own st_size is 0)."""

    __slots__ = ("_st", "st_size")

    def __init__(self, st, size: int):
        self._st = st
        self.st_size = size

    def __getattr__(self, name):
        return getattr(self._st, name)

    @classmethod
    def at(cls, dir_fd: int, base: bytes, st):
        try:
            fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=dir_fd)
        except OSError:
            return cls(st, 0)
        try:
            return cls(st, device_size(fd))
        finally:
            os.close(fd)


def _open_writable(dir_fd: int, base: bytes) -> int:
    try:
        return os.open(base, _OPEN, 0o600, dir_fd=dir_fd)
    except PermissionError:
        st = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or st.st_mode & stat.S_IWUSR:
            raise
    # A read-only file of ours: owner-write just for the open.
    mode = stat.S_IMODE(st.st_mode)
    os.chmod(base, mode | stat.S_IWUSR, dir_fd=dir_fd)
    try:
        return os.open(base, _OPEN, 0o600, dir_fd=dir_fd)
    finally:
        os.chmod(base, mode, dir_fd=dir_fd)
