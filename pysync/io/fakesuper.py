"""--fake-super: what an unprivileged side cannot apply (owner, group,
set-id bits, device numbers, the type of devices, specials and symlinks)
kept in the ``user.rsync.%stat`` xattr, and read back as if it were the
object's own stat.

The value is text: ``"MODE MAJOR,MINOR UID:GID"``, the mode in octal as
on the wire (type and all permission bits), e.g. ``"20644 1,3 0:0"`` for a
character device kept as an empty regular file.  The placeholders are
plain files (devices, specials: empty; symlinks: the target as contents,
since Linux allows no user xattrs on a symlink), and every object stays
readable and writable by its owner (files 0600, directories 0700 added)
so the unprivileged side can update it later.

Objects are reached as io/xattrs.py does: an fd, or the no-follow
``/proc/self/fd/<dir fd>/<name>`` path, so no symlink is followed.
"""

from __future__ import annotations

import errno
import os
import stat

from .xattrs import at_path

__all__ = ["XSTAT", "FoldedStat", "CorruptStat", "encode", "decode", "fold", "fold_checked", "fold_in_tree", "full_name",
           "store", "read_link", "write_placeholder"]

XSTAT = b"user.rsync.%stat"
_PERMS = 0o7777
_NO_ATTR = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)


class CorruptStat(ValueError):
    """A %stat value that does not parse (rsync exits 11 on it)."""


class FoldedStat:
    """An os.stat_result with mode, owner, group and rdev taken from the
    %stat xattr; everything else (times, size, inode) is the object's."""

    __slots__ = ("_st", "st_mode", "st_uid", "st_gid", "st_rdev")

    def __init__(self, st, mode: int, rdev: int, uid: int, gid: int):
        self._st = st
        self.st_mode, self.st_rdev, self.st_uid, self.st_gid = mode, rdev, uid, gid

    def __getattr__(self, name):
        return getattr(self._st, name)

    @property
    def real(self):
        return self._st


def encode(mode: int, rdev: int, uid: int, gid: int) -> bytes:
    return b"%o %d,%d %d:%d" % (mode, os.major(rdev), os.minor(rdev), uid, gid)


def decode(value: bytes) -> tuple:
    """-> (mode, rdev, uid, gid); CorruptStat if it is not five numbers."""
    try:
        mode_s, dev_s, ids_s = value.split(b" ")
        major, minor = dev_s.split(b",")
        uid, gid = ids_s.split(b":")
        return int(mode_s, 8), os.makedev(int(major), int(minor)), int(uid), int(gid)
    except ValueError:
        raise CorruptStat(value.decode("utf-8", "backslashreplace")) from None


def _read(target) -> bytes | None:
    try:
        return os.getxattr(target, XSTAT, follow_symlinks=isinstance(target, int))
    except OSError as e:
        if e.errno in _NO_ATTR or e.errno == errno.EPERM:
            return None
        raise


def fold(st, target):
    """``st`` as --fake-super sees it: the %stat xattr of ``target`` (an fd,
    or a no-follow path) folded in.  Real devices and specials (which the
    placeholders never are) and objects without the xattr stay as they are."""
    kind = stat.S_IFMT(st.st_mode)
    if kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
        return st
    value = _read(target)
    if value is None:
        return st
    mode, rdev, uid, gid = decode(value)
    return FoldedStat(st, mode, rdev, uid, gid)


def fold_checked(st, target, shown: str):
    """fold(), a corrupt value being fatal as in rsync (exit 11)."""
    try:
        return fold(st, target)
    except CorruptStat as e:
        from ..errors import FileIOError
        raise FileIOError(f"Corrupt {XSTAT.decode()} xattr attached to {shown}: \"{e}\"") from None


def fold_in_tree(tree, name: bytes, st):
    """The receiver's view of the object at ``name`` of a destination tree."""
    shown = full_name(tree.path(name))
    if name == b".":
        return fold_checked(st, tree.root_fd, shown)
    dfd, base = tree.locate(name)
    return fold_checked(st, at_path(dfd, base), shown)


def full_name(path: bytes) -> str:
    """rsync's full_fname: quoted, made absolute."""
    return '"%s"' % os.path.abspath(path).decode("utf-8", "backslashreplace")


def store(target, st, new_mode: int, rdev: int, uid: int, gid: int) -> None:
    """Make ``target`` (an fd or a no-follow path; ``st`` its real, unfolded
    stat) stand for an object of ``new_mode`` (type and permissions),
    ``rdev``, ``uid`` and ``gid``: its real permissions become the wanted
    ones less the set-id bits, plus owner read/write (and search for a
    directory); what differs from the real object goes to the %stat xattr,
    which is removed when nothing does (xattrs.c set_stat_xattr)."""
    real = st.st_mode
    if stat.S_ISLNK(real):
        return                  # a real symlink holds no user xattr on Linux
    owner_bits = 0o700 if stat.S_ISDIR(real) else 0o600
    mode = stat.S_IFMT(real) | (new_mode & 0o777) | owner_bits
    if stat.S_IMODE(real) != stat.S_IMODE(mode):
        os.chmod(target, stat.S_IMODE(mode))
    real_rdev = st.st_rdev if stat.S_ISCHR(real) or stat.S_ISBLK(real) else 0
    want = stat.S_IFMT(new_mode) | (new_mode & _PERMS)
    current = _read(target)
    if mode == want and real_rdev == rdev and st.st_uid == uid and st.st_gid == gid:
        if current is not None:
            os.removexattr(target, XSTAT, follow_symlinks=isinstance(target, int))
        return
    value = encode(want, rdev, uid, gid)
    if current is not None:
        try:
            if decode(current) == decode(value):
                return
        except CorruptStat:
            pass
    os.setxattr(target, XSTAT, value, follow_symlinks=isinstance(target, int))


def read_link(dir_fd, base: bytes, sending: bool) -> bytes:
    """The target of a symlink kept as a placeholder file (its contents).
    A real symlink found instead: the sender lists it as it is; a
    receiver sees a link with an empty target, so it is replaced."""
    try:
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        return os.readlink(base, dir_fd=dir_fd) if sending else b""
    try:
        out = b""
        while len(out) < 4096:
            chunk = os.read(fd, 4096 - len(out))
            if not chunk:
                break
            out += chunk
        return out
    finally:
        os.close(fd)


def write_placeholder(dir_fd: int, base: bytes, contents: bytes = b"") -> None:
    """A new regular file, 0600, standing for a device, special or symlink
    (its target as ``contents``); never through a symlink at ``base``."""
    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(contents)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
