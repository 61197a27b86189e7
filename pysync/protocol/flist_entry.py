"""A file-list entry in memory: ``FileEntry`` (the common fields as slots,
the optional ones in an ``_Extra`` made only for the entries that have
one) and ``SourceDir`` (the sender's shared directory path of a walked
source's entries).  flist.py codes entries on the wire; scan.py makes them.
"""

from __future__ import annotations

import stat

__all__ = ["FileEntry", "SourceDir"]


class FileEntry:
    """One file-list entry.  ``name`` is the path relative to the transfer
    root as bytes.  ``xflags`` keeps the meaningful transmit flags
    (XMIT_TOP_DIR, XMIT_NO_CONTENT_DIR, XMIT_HLINKED, XMIT_HLINK_FIRST).
    ``hlink`` is the transmit index of the first member of the entry's
    hard-link group (its own index for the first), else None.
    ``src`` / ``dev`` / ``ino`` are sender-local (never on the wire).
    ``xattrs`` is the entry's xattr item tuple with -X (protocol/xattrs.py)
    and ``xattr_ndx`` the index of that set on the wire; ``acl`` /
    ``def_acl`` the access and (directories) default ACL with -A;
    ``atime`` the access time in seconds with -U (never for directories).

    A list holds one of these per file, so it is kept small (as rsync's
    file_struct keeps its optional fields out of the common part): the
    fields every entry uses are slots; the ones few entries or few runs
    have (link target, -c sum, device numbers, hard-link and -X/-A data)
    live in an ``_Extra`` made for the entries that have one.  A sender's
    ``src`` is usually its directory's path, shared (``SourceDir``), plus
    the name."""

    __slots__ = ("name", "mode", "size", "mtime", "nsec", "uid", "gid", "xflags", "cleared",
                 "_src", "_x")

    def __init__(self, name: bytes, mode: int, size: int = 0, mtime: int = 0, nsec: int = 0,
                 uid: int = 0, gid: int = 0, rdev=(0, 0), link: bytes | None = None,
                 sum: bytes | None = None, xflags: int = 0):
        self.name = name
        self.mode = mode
        self.size = size
        self.mtime = mtime
        self.nsec = nsec
        self.uid = uid
        self.gid = gid
        self.xflags = xflags
        self.cleared = False
        self._src = None
        if link is None and sum is None and (rdev is _NO_RDEV or rdev == _NO_RDEV):
            self._x = None
        else:
            x = self._x = _Extra()
            x.link = link
            x.sum = sum
            x.rdev = rdev

    @property
    def src(self):
        """The sender's path to the file."""
        s = self._src
        return s.path_of(self.name) if s.__class__ is SourceDir else s

    @src.setter
    def src(self, value) -> None:
        self._src = value

    def _extra(self) -> "_Extra":
        x = self._x
        if x is None:
            x = self._x = _Extra()
        return x

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_device(self) -> bool:
        return stat.S_ISCHR(self.mode) or stat.S_ISBLK(self.mode)

    @property
    def is_special(self) -> bool:
        return stat.S_ISFIFO(self.mode) or stat.S_ISSOCK(self.mode)

    def __repr__(self):
        return f"FileEntry({self.name!r}, mode={self.mode:o}, size={self.size})"


class _Extra:
    """The optional fields of a FileEntry (see there)."""

    __slots__ = ("rdev", "link", "sum", "hlink", "dev", "ino", "xattrs", "xattr_ndx",
                 "acl", "def_acl", "atime")

    def __init__(self):
        self.rdev = _NO_RDEV
        self.link = None
        self.sum = None
        self.hlink = None
        self.dev = None
        self.ino = None
        self.xattrs = None
        self.xattr_ndx = -1
        self.acl = None
        self.def_acl = None
        self.atime = 0


_NO_RDEV = (0, 0)


def _optional(field: str, default):
    """A FileEntry property for one field of its ``_Extra``: the default
    while the entry has none; setting the default makes none."""
    get_field = _Extra.__dict__[field].__get__
    set_field = _Extra.__dict__[field].__set__

    def get(self):
        x = self._x
        return default if x is None else get_field(x)

    def set_(self, value):
        x = self._x
        if x is None:
            if value is default or (default is not None and value == default):
                return
            x = self._x = _Extra()
        set_field(x, value)
    return property(get, set_, doc=f"optional field {field} (default {default!r})")


for _field, _default in (("rdev", _NO_RDEV), ("link", None), ("sum", None), ("hlink", None),
                         ("dev", None), ("ino", None), ("xattrs", None), ("xattr_ndx", -1),
                         ("acl", None), ("def_acl", None), ("atime", 0)):
    setattr(FileEntry, _field, _optional(_field, _default))
del _field, _default


class SourceDir:
    """The sender's path of a directory whose entries are listed below a
    name prefix: an entry named ``prefix + rest`` is the file ``path/rest``.
    One per walked source, shared by its entries instead of a path each."""

    __slots__ = ("dir", "cut")

    def __init__(self, path: bytes, prefix: bytes):
        self.dir = path + b"/"
        self.cut = len(prefix)

    def path_of(self, name: bytes) -> bytes:
        return self.dir + name[self.cut:]
