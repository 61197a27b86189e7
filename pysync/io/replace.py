"""Temp file next to the destination, then an atomic rename.

A file is written to ``.name.XXXXXX`` (O_EXCL, mode 0600) in the
destination's own directory, finished (attributes applied through its
fd) and renamed over the old file.  Any failure removes the temp file,
so the old destination is never torn and no temp file is left behind.

With ``--temp-dir`` the temp file is ``name.XXXXXX`` (no dot, as rsync)
in that directory.  When it is on another file system the rename fails
(EXDEV); rsync then copies the data into the destination name itself,
so a reader can see a torn file.  We copy it, with its attributes, to a
second temp file beside the destination and rename that: the
replacement stays atomic.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["TempFile", "temp_name", "copy_attrs_and_data"]

_ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# A random byte to a letter or digit in one translate() (the slight bias
# of 256 % 62 does not matter: O_EXCL guards against any clash).
_TO_ALNUM = bytes(_ALNUM[i % len(_ALNUM)] for i in range(256))

# Temp names need to be unlikely to collide, not secret (O_EXCL guards
# against any clash): one getrandom per process, then a 64-bit linear
# congruential sequence (Knuth's MMIX constants; its high 48 bits make the
# name), reseeded after a fork so parent and child do not walk the same
# sequence.  random.py would cost every receiver five more modules to load.
_MASK64 = (1 << 64) - 1
_state: int | None = None


def _reseed() -> None:
    global _state
    _state = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def _suffix() -> bytes:
    global _state
    state = _state
    if state is None:
        state = int.from_bytes(os.urandom(8), "little")
    state = _state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
    return (state >> 16).to_bytes(6, "little").translate(_TO_ALNUM)


def temp_name(base: bytes, dot: bool = True) -> bytes:
    suffix = _suffix()
    stem = base[:240]  # keep the temp name under NAME_MAX
    return (b"." if dot else b"") + stem + b"." + suffix


class TempFile:
    """An open temp file that will replace ``base`` in directory ``dir_fd``.
    It lives in ``dir_fd`` too, or in ``temp_dir_fd`` (--temp-dir); its
    own directory is ``self.dir_fd`` and the destination's ``dest_fd``."""

    def __init__(self, dir_fd: int, base: bytes, mode: int = 0o600, temp_dir_fd=None):
        self.dest_fd = dir_fd
        self.dir_fd = dir_fd if temp_dir_fd is None else temp_dir_fd
        self.base = base
        self.fsync = False          # --fsync: also the copy made across file systems
        for _ in range(100):
            name = temp_name(base, temp_dir_fd is None)
            try:
                self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, mode, dir_fd=self.dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"cannot create a temp file for {base!r}")
        self.name = name
        self.done = False

    def commit(self) -> None:
        """Close and rename over the destination."""
        self.move_to(self.dest_fd, self.base)

    def move_to(self, dir_fd: int, name: bytes) -> None:
        """Close and rename to ``name`` in ``dir_fd`` (the destination, or
        --delay-updates' holding directory)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
        try:
            os.rename(self.name, name, src_dir_fd=self.dir_fd, dst_dir_fd=dir_fd)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            self._copy_across(dir_fd, name)
        self.done = True

    def _copy_across(self, dir_fd: int, name: bytes) -> None:
        """--temp-dir on another file system: data, owner, mode, xattrs
        (ACLs among them) and times go to a temp file beside the
        destination, which is then renamed into place."""
        src = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            near = TempFile(dir_fd, name)
            try:
                copy_attrs_and_data(src, near.fd)
                if self.fsync:
                    os.fsync(near.fd)
                near.commit()
            except BaseException:
                near.discard()
                raise
        finally:
            os.close(src)
        os.unlink(self.name, dir_fd=self.dir_fd)

    def discard(self) -> None:
        if self.done:
            return
        self.done = True
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        try:
            os.unlink(self.name, dir_fd=self.dir_fd)
        except OSError:
            pass


def copy_attrs_and_data(src: int, dst: int) -> None:
    """Everything of file ``src`` onto the empty file ``dst``: the data
    (sendfile, in the kernel), then xattrs, owner, mode and times, in
    the order that keeps set-id bits (chown clears them)."""
    st = os.fstat(src)
    offset = 0
    while offset < st.st_size:
        n = os.sendfile(dst, src, offset, min(st.st_size - offset, 1 << 30))
        if n == 0:
            break
        offset += n
    try:
        names = os.listxattr(src)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        names = []
    for n in names:
        try:
            os.setxattr(dst, n, os.getxattr(src, n))
        except OSError as e:
            # A file system's own labels (security.*) may not carry over.
            if not (n.startswith("security.")
                    and e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)):
                raise
    try:
        os.fchown(dst, st.st_uid, st.st_gid)
    except PermissionError:
        pass
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
