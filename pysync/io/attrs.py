"""Applying a file-list entry's attributes: owner, group, permissions and
times (nanoseconds), through an fd where we have one, else by name beneath
a directory fd without following symlinks."""

from __future__ import annotations

import os
import stat

__all__ = ["AttrPolicy", "OwnerError", "NewPerms", "apply_fd", "apply_name", "wanted_mode", "differs",
           "time_differs", "keeps_time"]

_AM_ROOT = os.geteuid() == 0


class AttrPolicy:
    """What to preserve (-p -o -g -t -U -E) and how to map ids."""

    __slots__ = ("perms", "owner", "group", "times", "umask", "uid_map", "gid_map",
                 "dir_times", "link_times", "executability", "modify_window", "fake", "atimes",
                 "owner_refused", "new_perms")

    def __init__(self, perms=False, owner=False, group=False, times=False,
                 uid_map=None, gid_map=None, omit_dir_times=False, omit_link_times=False,
                 am_root: int | None = None, atimes=False, executability=False):
        self.perms = perms
        # rsync's am_root (None: as our uid says): owners are set by root
        # and with --super (2); --no-super (0) leaves them.  --fake-super
        # (-1) keeps what it cannot apply in the %stat xattr (io/fakesuper.py).
        if am_root is None:
            am_root = int(_AM_ROOT)
        self.owner = owner and am_root != 0
        self.fake = am_root < 0
        # -U: access times of non-directories (whole seconds, flist.c).
        self.atimes = atimes
        # -E without -p: an existing file keeps its mode but for the
        # execute bits (rsync.c dest_mode).
        self.executability = executability and not perms
        # Called as (entry, op, error) when apply_name's chown is refused
        # (root without CAP_CHOWN, --super as a user); None: ignored.
        self.owner_refused = None
        self.group = group
        self.times = times
        # -O / -J: the times of directories / symlinks are neither compared
        # nor set (rsync's omit_dir_times, omit_link_times).
        self.dir_times = times and not omit_dir_times
        self.link_times = times and not omit_link_times
        old = os.umask(0)
        os.umask(old)
        self.umask = old
        # Without -p: the permissions a new object may have, by its name
        # (NewPerms: its directory's default ACL); None: 0777 less the umask.
        self.new_perms = None
        self.uid_map = uid_map or {}
        self.gid_map = gid_map or {}
        if am_root == 0 and group:
            # Not root (or --no-super): only our own groups are given
            # (uidlist.c: the others are skipped, not tried).
            self.gid_map = _OwnGroups(self.gid_map)
        self.modify_window = 0


class OwnerError(PermissionError):
    """A receiver that may set owners (root, --super) was refused the
    chown: rsync logs "chown NAME failed" (``op`` "chgrp" when only the
    group changes) and leaves the file's other attributes alone."""

    def __init__(self, op: str, e: OSError):
        super().__init__(e.errno, e.strerror)
        self.op = op


class _OwnGroups(dict):
    """A gid map that gives -1 (leave the group) for a group we are not in."""

    __slots__ = ("have",)

    def __init__(self, mapping):
        super().__init__(mapping)
        self.have = frozenset(os.getgroups()) | {os.getegid()}

    def get(self, key, default=None):
        gid = dict.get(self, key, default)
        return gid if gid in self.have else -1


def wanted_mode(entry, policy: AttrPolicy, existing_mode: int | None, made_mode: int | None = None) -> int:
    """Permission bits the destination should end with (rsync dest_mode()).
    ``existing_mode``: the object whose permissions a run without -p keeps
    (the one replaced, or the basis a file's data is rebuilt from); None
    for a new one.  ``made_mode``: the mode a directory this run made got
    from the kernel, whose set-gid bit (inherited from its parent) a run
    without -p keeps (rsync.c set_file_attrs)."""
    perm = stat.S_IMODE(entry.mode)
    if policy.perms:
        return perm
    if existing_mode is not None:
        mode = stat.S_IMODE(existing_mode)
        if policy.executability and stat.S_ISREG(entry.mode):
            if not perm & 0o111:
                mode &= ~0o111
            elif not mode & 0o111:
                mode |= (mode & 0o444) >> 2      # execute for whoever may read
        return mode
    # New without -p: the sender's bits less our umask (or within the
    # directory's default ACL), and no set-id bits (rsync does the same).
    allowed = policy.new_perms(entry.name) if policy.new_perms is not None else ~policy.umask & 0o777
    mode = perm & allowed
    if made_mode is not None and made_mode & stat.S_ISGID and stat.S_ISDIR(entry.mode):
        mode |= stat.S_ISGID
    return mode


class NewPerms:
    """The permissions a new object gets without -p (rsync's dflt_perms,
    acls.c default_perms_for_dir): where the directory it is made in has a
    default ACL, that ACL's owner, mask (else group) and other entries;
    otherwise 0777 less the umask.  The kernel gives a new file the same,
    whatever the umask, so rsync asks and so do we, with or without -A."""

    __slots__ = ("tree", "fallback")

    def __init__(self, tree, umask: int):
        self.tree = tree
        self.fallback = ~umask & 0o777

    def __call__(self, name: bytes) -> int:
        try:
            data = os.getxattr(self.tree.dir_fd(name.rpartition(b"/")[0]), _DEFAULT_ACL)
            from ..protocol.acls import from_xattr
            acl = from_xattr(data)
        except (OSError, ValueError):
            return self.fallback          # no default ACL (or no directory yet)
        if acl.user is None:
            return self.fallback
        group = acl.mask if acl.mask is not None else acl.group
        return acl.user << 6 | (group or 0) << 3 | (acl.other or 0)


_DEFAULT_ACL = "system.posix_acl_default"


def _ids(entry, policy):
    uid = policy.uid_map.get(entry.uid, entry.uid) if policy.owner else -1
    gid = policy.gid_map.get(entry.gid, entry.gid) if policy.group else -1
    return uid, gid


def time_differs(st, entry, window: int) -> bool:
    """rsync's comparison: whole seconds within the window, or exact
    nanoseconds with a negative window."""
    if window < 0:
        return st.st_mtime_ns != entry.mtime * 1_000_000_000 + entry.nsec
    return abs(st.st_mtime_ns // 1_000_000_000 - entry.mtime) > window


def keeps_time(mode: int, policy: AttrPolicy) -> bool:
    """Whether an object of this type gets the sender's mtime."""
    if stat.S_ISDIR(mode):
        return policy.dir_times
    if stat.S_ISLNK(mode):
        return policy.link_times
    return policy.times


def differs(entry, st, policy: AttrPolicy, is_link: bool = False) -> int:
    """Which attributes of ``st`` differ from the entry: bits of
    1=time 2=perms 4=owner 8=group 16=atime.  A symlink's time counts
    (Linux can set it), its permission bits and access time do not
    (generator.c itemize)."""
    # Called for every entry of a re-sync: keeps_time, time_differs and
    # _ids written out.
    out = 0
    mode = entry.mode
    fmt = mode & 0o170000
    if fmt == 0o040000:
        keep = policy.dir_times
    elif fmt == 0o120000:
        keep = policy.link_times
    else:
        keep = policy.times
    if keep:
        window = policy.modify_window
        if window < 0:
            if st.st_mtime_ns != entry.mtime * 1_000_000_000 + entry.nsec:
                out = 1
        elif abs(st.st_mtime_ns // 1_000_000_000 - entry.mtime) > window:
            out = 1
    if policy.perms and not is_link and (st.st_mode ^ mode) & 0o7777:
        out |= 2
    if policy.executability and fmt == 0o100000 \
            and bool(st.st_mode & 0o111) != bool(mode & 0o111):
        out |= 2
    if policy.atimes and fmt != 0o040000 and fmt != 0o120000 \
            and st.st_atime_ns // 1_000_000_000 != entry.atime:
        out |= 16
    if policy.owner:
        uid = entry.uid
        uid = policy.uid_map.get(uid, uid)
        if uid != -1 and st.st_uid != uid:
            out |= 4
    if policy.group:
        gid = entry.gid
        gid = policy.gid_map.get(gid, gid)
        if gid != -1 and st.st_gid != gid:
            out |= 8
    return out


def _store_fake(target, st, entry, policy: AttrPolicy, existing_mode) -> None:
    """--fake-super: owner, group, set-id bits and device numbers into the
    %stat xattr instead of chown/chmod (``st`` the real stat)."""
    from .fakesuper import fold, store
    folded = fold(st, target)
    uid, gid = _ids(entry, policy)
    rdev = os.makedev(*entry.rdev) if entry.is_device else 0
    mode = stat.S_IFMT(entry.mode) | wanted_mode(entry, policy, existing_mode)
    store(target, st, mode, rdev, folded.st_uid if uid == -1 else uid,
          folded.st_gid if gid == -1 else gid)


def _store_fake_at(dir_fd, base: bytes, real, entry, policy: AttrPolicy, existing_mode) -> None:
    """_store_fake by name: through an fd opened without following a
    symlink; a file we may not open (not ours to read) by its no-follow
    /proc path instead, whose xattr calls do not follow either."""
    try:
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except PermissionError:
        from .xattrs import at_path
        _store_fake(at_path(dir_fd, base), real, entry, policy, existing_mode)
        return
    try:
        _store_fake(fd, os.fstat(fd), entry, policy, existing_mode)
    finally:
        os.close(fd)


def _times_ns(entry, policy: AttrPolicy, current):
    """The (atime, mtime) to set in nanoseconds, or None: the sender's
    mtime where kept, with -U the sender's atime on a non-directory; the
    other one stays what ``current()`` (the object's stat) has, as rsync's
    set_file_attrs keeps it."""
    keep = keeps_time(entry.mode, policy)
    atime = policy.atimes and not stat.S_ISDIR(entry.mode)
    if not (keep or atime):
        return None
    if keep and atime:
        return entry.atime * 1_000_000_000, entry.mtime * 1_000_000_000 + entry.nsec
    st = current()
    if keep:
        return st.st_atime_ns, entry.mtime * 1_000_000_000 + entry.nsec
    return entry.atime * 1_000_000_000, st.st_mtime_ns


def apply_fd(fd: int, entry, policy: AttrPolicy, existing_mode=None) -> None:
    if policy.fake:
        _store_fake(fd, os.fstat(fd), entry, policy, existing_mode)
        times = _times_ns(entry, policy, lambda: os.fstat(fd))
        if times is not None:
            os.utime(fd, ns=times)
        return
    uid, gid = _ids(entry, policy)
    if uid != -1 or gid != -1:
        try:
            os.fchown(fd, uid, gid)
        except PermissionError as e:
            if policy.owner:
                st = os.fstat(fd)
                raise OwnerError("chown" if uid not in (-1, st.st_uid) else "chgrp", e) from None
    os.fchmod(fd, wanted_mode(entry, policy, existing_mode))
    times = _times_ns(entry, policy, lambda: os.fstat(fd))
    if times is not None:
        os.utime(fd, ns=times)


def apply_name(dir_fd, base: bytes, entry, policy: AttrPolicy, st=None, what: int = 0x1F) -> None:
    """Fix attributes of an existing object by name (dirs, links, specials).
    ``st`` is its current lstat, ``what`` limits the changes (bits as differs())."""
    is_link = stat.S_ISLNK(entry.mode)
    if policy.fake:
        real = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        if (what & 14 or st is None) and not stat.S_ISLNK(real.st_mode):
            _store_fake_at(dir_fd, base, real, entry, policy,
                           st.st_mode if st is not None else None)
        is_link = stat.S_ISLNK(real.st_mode)
        what &= 17
    uid, gid = _ids(entry, policy)
    if (what & 12) and (uid != -1 or gid != -1):
        try:
            os.chown(base, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError as e:
            if policy.owner and policy.owner_refused is not None:
                # As rsync.c set_file_attrs: logged, and the mode left as
                # it is (the times are set: its directory pass does that).
                cur = os.stat(base, dir_fd=dir_fd, follow_symlinks=False).st_uid
                policy.owner_refused(entry, "chown" if uid not in (-1, cur) else "chgrp", e)
                what &= 17
    if not is_link and (what & 2 or (what & 12 and entry.mode & 0o6000)):
        existing = st.st_mode if st is not None else None
        made = None
        if st is None and not policy.perms and stat.S_ISDIR(entry.mode):
            made = os.stat(base, dir_fd=dir_fd, follow_symlinks=False).st_mode
        os.chmod(base, wanted_mode(entry, policy, existing, made), dir_fd=dir_fd)
    times = _times_ns(entry, policy, lambda: os.stat(base, dir_fd=dir_fd, follow_symlinks=False)) \
        if what & 17 else None
    if times is not None:
        try:
            os.utime(base, ns=times, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            if not is_link:
                raise
