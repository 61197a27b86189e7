"""The destination tree, reached only beneath its root.

Every path the receiver touches is resolved one component at a time with
O_NOFOLLOW|O_DIRECTORY from a directory fd held on the destination root,
so neither a hostile sender nor a local attacker can make us write
through a symlink planted in a parent component (reliability.md §2.2).
Directory fds are cached by their relative path, one cache per thread:
the generator and the receiver use the tree at the same time, and one
thread's cache evicting (closing) a directory fd must never pull it from
under the other, which may be writing a file there (the fd number could
even come back as another directory's).  ``forget`` (a directory removed
or replaced) reaches every cache: another thread's fd is closed only at
that thread's next lookup, never while it may be in use.

-K (--keep-dirlinks) is the one exception, and the user's own choice: a
component that is a symlink to a directory is followed, wherever it
points, as rsync does with that option.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict

__all__ = ["DestTree", "split_name"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_CACHED = 64


def split_name(name: bytes):
    """(parent relative dir or b"", base name)."""
    i = name.rfind(b"/")
    if i < 0:
        return b"", name
    return name[:i], name[i + 1:]


class _Cache:
    """One thread's directory fds, and those ``forget`` took from it that
    it closes itself at its next lookup."""
    __slots__ = ("fds", "retired")

    def __init__(self):
        self.fds: OrderedDict[bytes, int] = OrderedDict()
        self.retired: list = []


class DestTree:
    def __init__(self, root: bytes, keep_dirlinks: bool = False):
        self.root = root
        self.keep_dirlinks = keep_dirlinks
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._caches: list = []

    def _cache(self) -> _Cache:
        c = getattr(self._local, "cache", None)
        if c is None:
            c = self._local.cache = _Cache()
            with self._lock:
                self._caches.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._caches:
                for fd in list(c.fds.values()) + c.retired:
                    os.close(fd)
                c.fds.clear()
                c.retired.clear()
        os.close(self.root_fd)

    def dir_fd(self, reldir: bytes) -> int:
        """An fd for directory ``reldir`` (b"" or b"." = root); raises OSError
        (ENOTDIR/ELOOP for a symlink or non-directory component).  It stays
        open until this thread looks up more directories than it caches, or
        the directory is forgotten."""
        if reldir in (b"", b"."):
            return self.root_fd
        c = self._cache()
        fds = c.fds
        retired = None
        with self._lock:        # forget() may go through this cache meanwhile
            if c.retired:
                retired, c.retired = c.retired, []
            fd = fds.get(reldir)
            if fd is not None:
                fds.move_to_end(reldir)
        if retired:
            for old in retired:
                os.close(old)
        if fd is not None:
            return fd
        parent, base = split_name(reldir)
        pfd = self.dir_fd(parent)
        try:
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
        except OSError:
            if not (self.keep_dirlinks and stat.S_ISLNK(
                    os.stat(base, dir_fd=pfd, follow_symlinks=False).st_mode)):
                raise
            fd = os.open(base, _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=pfd)   # -K
        with self._lock:
            fds[reldir] = fd
            old = fds.popitem(last=False)[1] if len(fds) > _MAX_CACHED else None
        if old is not None:
            os.close(old)       # this thread's own: not in use any more
        return fd

    def forget(self, reldir: bytes) -> None:
        """Drop cached fds at and below ``reldir`` (it was removed/replaced),
        in every thread's cache."""
        pfx = reldir + b"/"
        mine = getattr(self._local, "cache", None)
        with self._lock:
            for c in self._caches:
                for k in [k for k in c.fds if k == reldir or k.startswith(pfx)]:
                    fd = c.fds.pop(k)
                    if c is mine:
                        os.close(fd)
                    else:
                        c.retired.append(fd)

    def locate(self, name: bytes):
        """(parent dir fd, base name) for an entry name.  The root is
        (its own fd, "."): a call made with them acts on the root, never
        on the process's working directory."""
        if name == b".":
            return self.root_fd, b"."
        parent, base = split_name(name)
        return self.dir_fd(parent), base

    def lstat(self, name: bytes):
        if name == b".":
            return os.fstat(self.root_fd)
        dfd, base = self.locate(name)
        return os.stat(base, dir_fd=dfd, follow_symlinks=False)

    def stat_entry(self, name: bytes, is_dir: bool):
        """The lstat of what is at ``name``; with -K, for a directory of the
        list, that of the directory a symlink there points to (rsync's
        link_stat with follow_dirlinks)."""
        st = self.lstat(name)
        if is_dir and self.keep_dirlinks and stat.S_ISLNK(st.st_mode):
            try:
                return os.fstat(self.dir_fd(name))
            except OSError:
                pass
        return st

    def path(self, name: bytes) -> bytes:
        """A path for messages only (never used to open anything)."""
        return self.root if name == b"." else os.path.join(self.root, name)
