"""Extended attributes of files on disk (-X): listing and reading them with
rsync's namespace rules, and making a file's set match a wanted list.

Objects are reached without following symlinks: by an open fd for files
the receiver holds, else as ``/proc/self/fd/<dir fd>/<name>`` with the
no-follow calls, so a path component swapped for a symlink cannot send
us elsewhere (the directory fd is the one the tree resolved safely).
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["XattrPolicy", "XattrError", "read_pairs", "apply_xattrs", "at_path", "read_value"]

AM_ROOT = os.geteuid() == 0

_NOT_SUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP)
_DISGUISE = b"user.rsync."


class XattrError(OSError):
    """A listing/reading/setting failure, with rsync's wording in ``what``."""

    def __init__(self, what: str, err: OSError):
        super().__init__(err.errno, err.strerror)
        self.what = what


class XattrPolicy:
    """Which names a side reads and writes (xattrs.c rsync_xal_get/_set):
    the sender sends every namespace but system.*; a receiver that is root
    keeps all but system.*, any other only user.*.  user.rsync.%* names
    (rsync's own metadata) only with -XX.  ``name_ok`` adds filter rules."""

    __slots__ = ("sending", "root", "level", "name_ok", "fake")

    def __init__(self, sending: bool, level: int = 1, root: bool = AM_ROOT, name_ok=None,
                 fake: bool = False):
        self.sending = sending
        # --fake-super: a receiver keeps only user.* names, the others
        # disguised as user.rsync.NAME, which its sender lists as NAME.
        self.root = root and not (fake and not sending)
        self.level = level
        self.name_ok = name_ok
        self.fake = fake

    def wanted(self, name: bytes) -> bool:
        if self.name_ok is not None:
            # Filter rules with 'x' replace the namespace defaults (as in
            # rsync), but a receiver never touches its system.* names.
            if not self.name_ok(name):
                return False
            if not self.sending and name.startswith(b"system."):
                return False
        elif self.sending or self.root:
            if name.startswith(b"system."):
                return False
        elif not name.startswith(b"user."):
            return False
        if name.startswith(b"user.rsync.%") and self.level < 2:
            return False
        return True

    def storable(self, name: bytes):
        """May a name that came from the peer be written here?  Never
        system.* (ACLs are -A's business), and trusted.*/security.* only
        as root, whatever the peer sends.  With --fake-super those are
        kept as user.rsync.NAME: that name is returned."""
        if name.startswith(b"system."):
            return False
        if self.fake and not name.startswith(b"user."):
            if self.name_ok is not None and not self.name_ok(name):
                return False
            return _DISGUISE + name
        if not self.root and not name.startswith(b"user."):
            return False
        if self.name_ok is not None and not self.name_ok(name):
            return False
        if name.startswith(b"user.rsync.%") and self.level < 2:
            return False
        return True


def at_path(dir_fd: int, base: bytes) -> bytes:
    return b"/proc/self/fd/%d/%s" % (dir_fd, base)


def carries_xattrs(mode: int, links: bool, devices: bool, specials: bool) -> bool:
    """xattrs.c get_xattr: regular files and dirs always; links, devices
    and specials only when they are preserved."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return True
    if stat.S_ISLNK(mode):
        return links
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return devices
    return specials


def read_pairs(target, policy: XattrPolicy) -> list:
    """[(name, value)] of ``target`` (an fd or a path, not followed) that
    the policy wants.  A file system without xattrs has none."""
    follow = False if not isinstance(target, int) else True
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError as e:
        if e.errno in _NOT_SUPPORTED:
            return []
        raise XattrError("get_xattr_names: llistxattr", e) from None
    out = []
    for n in names:
        name = os.fsencode(n)
        if not policy.wanted(name):
            continue
        try:
            value = os.getxattr(target, name, follow_symlinks=follow)
        except OSError as e:
            if e.errno == errno.ENODATA:
                continue            # removed while we looked
            raise XattrError(f"get_xattr_data: lgetxattr(\"{n}\")", e) from None
        if policy.fake and policy.sending and name.startswith(_DISGUISE) \
                and name[len(_DISGUISE):len(_DISGUISE) + 1] != b"%":
            name = name[len(_DISGUISE):]        # a --fake-super receiver's disguise
        out.append((name, value))
    return out


def read_value(target, name: bytes) -> bytes | None:
    follow = isinstance(target, int)
    try:
        return os.getxattr(target, name, follow_symlinks=follow)
    except OSError:
        return None


def apply_xattrs(target, wanted: list, policy: XattrPolicy) -> None:
    """Make ``target``'s attributes (those the policy covers) exactly
    ``wanted`` [(name, value)]: set what differs, remove the rest.
    Raises XattrError for the first failure after trying all."""
    follow = isinstance(target, int)
    current = dict(read_pairs(target, XattrPolicy(False, policy.level, policy.root,
                                                  policy.name_ok)))
    first = None
    keep = set()
    for name, value in wanted:
        keep.add(name)
        if current.get(name) == value:
            continue
        try:
            os.setxattr(target, name, value, follow_symlinks=follow)
        except OSError as e:
            first = first or XattrError(f"rsync_xal_set: lsetxattr(\"{_s(name)}\")", e)
    for name in current:
        if name in keep:
            continue
        try:
            os.removexattr(target, name, follow_symlinks=follow)
        except OSError as e:
            first = first or XattrError(f"rsync_xal_set: lremovexattr(\"{_s(name)}\")", e)
    if first is not None:
        raise first


def _s(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")
