"""-b/--backup, --backup-dir, --suffix: keep the old version of a file the
transfer replaces or deletes.  A replaced file keeps its name until the
new one is renamed over it (the backup is a hard link made first), so the
destination is never without the file; a deleted one is moved."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["Backups"]


class Backups:
    def __init__(self, root: bytes, backup_dir: bytes | None, suffix: bytes | None,
                 delete_excluded: bool = False, owner: bool = False, group: bool = False,
                 times: bool = False):
        self.root = root
        self.owner = owner          # -o / -g: the backup dirs take the owner too
        self.group = group
        self.times = times          # -t: a copied backup keeps the file's time
        self.dir = os.path.join(root, backup_dir) if backup_dir is not None else None
        self.suffix = suffix if suffix is not None else (b"" if backup_dir is not None else b"~")
        # rsync's "P *SUFFIX" rule, which --delete-excluded leaves out.
        self.protect_suffix = not delete_excluded

    def is_backup(self, name: bytes) -> bool:
        """A backup's name beside the files (no --backup-dir)."""
        return self.dir is None and bool(self.suffix) and name.endswith(self.suffix)

    def path_for(self, name: bytes) -> bytes:
        base = self.dir if self.dir is not None else self.root
        return os.path.join(base, name + self.suffix)

    def protects(self, name: bytes) -> bool:
        """Names --delete must leave alone: the backups themselves."""
        if self.dir is not None:
            rel = os.path.relpath(self.dir, self.root)
            return name == rel or name.startswith(rel + b"/")
        return self.protect_suffix and self.is_backup(name)

    def _parents(self, name: bytes, parent: bytes) -> None:
        """The directories a backup goes in.  Under --backup-dir each one
        made is given the mode (and with -o/-g, as root, the owner and
        group) of the destination directory it stands for, as rsync's
        backup.c does; one whose directory is gone keeps mkdir's."""
        if self.dir is None:
            if parent:
                os.makedirs(parent, exist_ok=True)
            return
        os.makedirs(self.dir, exist_ok=True)
        parts = name.split(b"/")[:-1]
        path = self.dir
        for i, part in enumerate(parts):
            path = os.path.join(path, part)
            try:
                os.mkdir(path, 0o777)
            except FileExistsError:
                continue
            try:
                st = os.stat(os.path.join(self.root, *parts[:i + 1]), follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                continue
            uid = st.st_uid if self.owner else -1
            gid = st.st_gid if self.group else -1
            if (uid != -1 or gid != -1) and os.geteuid() == 0:
                os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, stat.S_IMODE(st.st_mode))

    def copy(self, name: bytes) -> bytes:
        """Back up regular file ``name`` as a copy (for --inplace, which
        rewrites the original inode): its mode, and its owner, group and
        time as -o, -g and -t keep them; returns the backup's path.  The copy is made under a temp name and renamed into place."""
        src = os.path.join(self.root, name)
        dst = self.path_for(name)
        parent = os.path.dirname(dst)
        self._parents(name, parent)
        tmp = os.path.join(parent, b"." + os.path.basename(dst) + b".bak%d" % os.getpid())
        sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(sfd)
            dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600)
            try:
                left = st.st_size
                while left > 0:
                    n = os.copy_file_range(sfd, dfd, left)
                    if n == 0:
                        break
                    left -= n
                # the attributes rsync's set_file_attrs gives it: the owner
                # and group with -o/-g, the time with -t (else now's)
                if os.geteuid() == 0 and (self.owner or self.group):
                    os.fchown(dfd, st.st_uid if self.owner else -1, st.st_gid if self.group else -1)
                os.fchmod(dfd, stat.S_IMODE(st.st_mode))
                if self.times:
                    os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dfd)
            os.rename(tmp, dst)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        finally:
            os.close(sfd)
        return os.path.abspath(dst)

    def keep(self, name: bytes, move: bool = False) -> None:
        """Back up destination entry ``name`` (not a directory).  One that
        goes (``move``) and is itself a backup is removed, as rsync does."""
        src = os.path.join(self.root, name)
        dst = self.path_for(name)
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            return
        if move and self.is_backup(name):
            os.unlink(src)
            return
        self._parents(name, os.path.dirname(dst))
        try:
            if stat.S_ISDIR(os.lstat(dst).st_mode):
                return
            os.unlink(dst)
        except FileNotFoundError:
            pass
        if move:
            os.rename(src, dst)
            return
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            os.rename(src, dst)
