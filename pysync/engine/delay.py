"""--delay-updates on the receiving side (receiver.c handle_delayed_updates).

A finished file (data verified, attributes applied) is not renamed over its
destination: it goes into the partial dir -- ``.~tmp~`` in the file's own
directory unless --partial-dir names another -- and waits.  When the
sender's DONE for the redo phase arrives, every waiting file is renamed
into place in list order, one rename each, and the emptied partial dirs are
removed.  A run that fails before that point leaves the old files as they
were, and the new ones in the partial dir (the next run's basis).
"""

from __future__ import annotations

import os
import stat

from ..text import show

__all__ = ["DelayedUpdates"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class DelayedUpdates:
    def __init__(self, tree, cfg, log, fail, success=None):
        self.tree = tree
        self.pdir = cfg.partial_dir          # bytes; relative: inside each file's directory
        self.backups = cfg.backups
        self.log = log
        self.fail = fail                     # (text) -> None: an error that makes exit 23
        self.success = success               # (ndx, name) -> None, or None
        self.waiting: dict = {}              # ndx -> name

    def _open_pdir(self, dir_fd: int, create: bool) -> int:
        """An fd on the partial dir that belongs to directory ``dir_fd``
        (made, mode 0700, if missing; a non-directory in its place is
        removed first, as rsync does)."""
        if os.path.isabs(self.pdir):
            if create:
                try:
                    os.mkdir(self.pdir, 0o700)
                except FileExistsError:
                    pass
            return os.open(self.pdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if create:
            try:
                st = os.stat(self.pdir, dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(self.pdir, dir_fd=dir_fd)
                    st = None
            except FileNotFoundError:
                st = None
            if st is None:
                os.mkdir(self.pdir, 0o700, dir_fd=dir_fd)
        return os.open(self.pdir, _DIR_FLAGS, dir_fd=dir_fd)

    def park(self, ndx: int, name: bytes, tmp) -> None:
        """Move the finished temp file ``tmp`` into the partial dir."""
        try:
            pfd = self._open_pdir(tmp.dest_fd, create=True)
        except OSError:
            # rsync says so and drops the file, without an error exit.
            tmp.discard()
            self.log.error(f"Unable to create partial-dir for {show(name)} -- "
                           "discarding completed file.")
            return
        try:
            tmp.move_to(pfd, tmp.base)
        finally:
            os.close(pfd)
        self.waiting[ndx] = name

    def finish(self) -> None:
        """Rename every waiting file into place (rsync's order: by index)."""
        for ndx in sorted(self.waiting):
            name = self.waiting[ndx]
            parent, base = os.path.split(name)
            ppath = os.path.join(parent if not os.path.isabs(self.pdir) else b"", self.pdir, base)
            pfd = -1
            try:
                dfd, base = self.tree.locate(name)
                pfd = self._open_pdir(dfd, create=False)
                if self.backups is not None:
                    try:
                        self.backups.keep(name)
                    except FileNotFoundError:
                        pass
                os.rename(base, base, src_dir_fd=pfd, dst_dir_fd=dfd)
            except OSError as e:
                self.fail(f"rsync: [receiver] rename failed for \"{show(self.tree.path(name))}\" "
                          f"(from {show(ppath)}): {e.strerror} ({e.errno})")
                continue
            finally:
                if pfd >= 0:
                    os.close(pfd)
            if self.success is not None:
                self.success(ndx, name)
            if not os.path.isabs(self.pdir):
                try:
                    os.rmdir(self.pdir, dir_fd=dfd)
                except OSError:
                    pass
        self.waiting.clear()
