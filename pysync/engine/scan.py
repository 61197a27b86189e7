"""The sender's walk: source arguments -> file-list entries.

rsync's transfer-root rules (flist.c send_file_list): ``src/`` sends the
contents of src under the name "." ; ``src`` sends a top entry "src" and
its contents below it; a file sends its base name.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from ..text import show
from ..protocol.constants import IOERR_GENERAL, IOERR_VANISHED, MUNGE_PREFIX, XMIT_NO_CONTENT_DIR, XMIT_TOP_DIR
from ..io.acls import AclError, carries_acls, read_acls
from ..io.xattrs import XattrError, carries_xattrs, read_pairs
from ..protocol.flist import FileEntry, SourceDir
from ..protocol.acls import RsyncAcl, strip_perms
from ..protocol.xattrs import make_items
from .xattrs import xattr_policy
from .chmod import tweak_mode
from .symlinks import unsafe_symlink

__all__ = ["Scanner", "split_source"]

# Entries handed to ``Scanner.emit`` at a time.
EMIT_BATCH = 256


def split_source(arg: bytes):
    """(path to lstat, name prefix in the list, contents-only?)."""
    contents = arg.endswith(b"/") or arg.endswith(b"/.") or arg == b"."
    path = arg
    while len(path) > 1 and path.endswith(b"/"):
        path = path[:-1]
    if path.endswith(b"/.") and len(path) > 2:
        path = path[:-2]
    base = os.path.basename(path) if path not in (b"/", b".") else b"."
    return path, base, contents


class Scanner:
    """Builds the file list for one transfer; collects errors as messages."""

    def __init__(self, opts, log, checksum=None, filters=None):
        self.opts = opts
        self.log = log              # log.error(text) / log.info(text)
        self.checksum = checksum    # a Checksum for -c, else None
        self.filters = filters      # an engine.filters.FilterList or None
        self.io_error = 0
        self.entries: list[FileEntry] = []
        self.counter = None         # called with the count every 100 entries
        # Called with each run of finished entries while the walk goes on
        # (in list order), so the list can go out as it is built, as rsync's
        # sender writes it.  The newest entry is held back: its caller may
        # still set its transmit flags.
        self.emit = None
        self._emitted = 0
        self.xfer_failed = False    # an error that fails the run but not the list
        self.verbose = 0            # -v: name the unsafe links --copy-unsafe-links follows
        self.chmod = getattr(opts, "chmod", None) or []
        self.follow_links = any(getattr(opts, k, False) for k in
                                ("copy_links", "copy_dirlinks", "copy_unsafe_links"))
        level = getattr(opts, "xattrs", 0)
        self.xattr_policy = xattr_policy(opts, True) if level else None
        self.acls = getattr(opts, "acls", False)
        self._ints = {}             # modes seen so far, one int object each
        self._last_sec = 0
        # --fake-super: list what the %stat xattr says (io/fakesuper.py).
        self.fake = getattr(opts, "am_root", 0) < 0
        self.munged = getattr(opts, "munge_links", False)
        self.atimes = bool(getattr(opts, "atimes", 0))      # -U: list access times
        self.copy_devices = getattr(opts, "copy_devices", False)
        self.ahead = None           # io.prefetch.ScanAhead: lists the next directories early

    def scan(self, sources) -> list:
        for arg in sources:
            self._scan_arg(arg)
        if self.emit is not None and self._emitted < len(self.entries):
            self.emit(self.entries[self._emitted:])
            self._emitted = len(self.entries)
        return self.entries

    def _scan_arg(self, arg: bytes) -> None:
        if getattr(self.opts, "relative", False):
            self._scan_relative(arg)
            return
        path, base, contents = split_source(arg)
        try:
            st = self._arg_stat(path)
        except OSError as e:
            if not self._missing_arg(base, e):
                self._fail_arg(path, e)
            return
        if stat.S_ISDIR(st.st_mode):
            if not self.opts.recursive:
                if not getattr(self.opts, "xfer_dirs", False):
                    self.log.info(f"skipping directory {_show(b'.' if contents else base)}")
                elif contents:      # --dirs: "." and its entries, not below them
                    self._add(b".", path, st, top=True)
                    self._walk(path, b"", st.st_dev, None, recurse=False)
                elif self._add(base, path, st, top=False):
                    self.entries[-1].xflags = XMIT_NO_CONTENT_DIR
                return
            name = b"." if contents else base
            self._add(name, path, st, top=True)
            ctx = None
            if self.filters is not None and self.filters.merges:
                # Names are relative to the source directory (src/) or its
                # parent (src): per-directory rules anchor there.
                absbase = os.path.abspath(path if contents else os.path.dirname(path) or b".")
                ctx = self.filters.enter(self.filters.root_context(absbase), path)
            self._walk(path, b"" if contents else base + b"/", st.st_dev, ctx)
        else:
            self._add(base, path, st, top=False)

    def _scan_relative(self, arg: bytes) -> None:
        """-R: the name is the path as given (after a "/./" anchor, without
        a leading '/'); its parent directories go first as implied
        directories (XMIT_TOP_DIR|XMIT_NO_CONTENT_DIR), also with
        --no-implied-dirs (a receiver with it skips them, flist.c)."""
        i = arg.find(b"/./")
        if i >= 0:
            basedir, rel = arg[:i] or b"/", arg[i + 3:]
        else:
            basedir, rel = (b"/" if arg.startswith(b"/") else b"."), arg
        parts = [p for p in rel.split(b"/") if p and p != b"."]
        if any(p == b".." for p in parts):
            parts = [p for p in parts if p != b".."]
        name = b"/".join(parts) or b"."
        path = os.path.join(basedir, name) if name != b"." else basedir
        try:
            st = self._arg_stat(path)
        except OSError as e:
            if not self._missing_arg(None, e):
                self._fail_arg(path, e)
                return
            if not getattr(self.opts, "delete_missing_args", False):
                return
            st = None       # --delete-missing-args: its parents, then a mode-0 entry
        sent = self.__dict__.setdefault("_implied", set())
        if True:    # protocol >= 30: always, flagged; the receiver may skip them
            for k in range(1, len(parts)):
                d = b"/".join(parts[:k])
                if d in sent:
                    continue
                dpath = os.path.join(basedir, d)
                try:
                    dst = os.lstat(dpath)
                except OSError as e:
                    self._fail("link_stat", dpath, e, vanished=False)
                    return
                if self._add(d, dpath, dst, top=False):
                    self.entries[-1].xflags = XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR
                sent.add(d)
        if st is None:
            if name not in sent:
                self._add_missing(name)
                sent.add(name)
            return
        if stat.S_ISDIR(st.st_mode):
            if not self.opts.recursive:
                if getattr(self.opts, "xfer_dirs", False):
                    # --files-from implies --dirs: the directory, not its contents.
                    if name not in sent and self._add(name, path, st, top=False):
                        self.entries[-1].xflags = XMIT_NO_CONTENT_DIR
                    sent.add(name)
                else:
                    self.log.info(f"skipping directory {_show(name)}")
                return
            sent.add(name)
            self._add(name, path, st, top=True)
            ctx = None
            if self.filters is not None and self.filters.merges:
                ctx = self.filters.enter(self.filters.root_context(os.path.abspath(basedir)), path)
            self._walk(path, b"" if name == b"." else name + b"/", st.st_dev, ctx)
        else:
            self._add(name, path, st, top=False)

    def _walk(self, dirpath: bytes, prefix: bytes, dev: int, ctx=None, recurse=True) -> None:
        try:
            it = os.scandir(dirpath)
        except OSError as e:
            self._fail("opendir", dirpath, e, vanished=e.errno == 2)
            return
        subdirs = []
        # The entries' source paths: this directory's, shared, plus the name.
        src = SourceDir(dirpath, prefix)
        # A regular file with nothing to read but its stat (no -c, -A, -X,
        # -H, --chmod, --progress count, --fake-super's folded stat) is listed
        # right here (_add_plain).
        plain = not (self.checksum is not None or self.acls or self.xattr_policy is not None
                     or self.chmod or self.counter is not None or self.fake or self.atimes
                     or getattr(self.opts, "hard_links", False))
        with it:
            for de in it:
                name = prefix + de.name
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError as e:
                    self._fail("readlink_stat" if de.is_symlink() else "link_stat",
                               dirpath + b"/" + de.name, e, vanished=e.errno == 2)
                    continue
                if plain and st.st_mode & 0o170000 == 0o100000:
                    if self.filters is None or not self.filters.excluded(name, False, ctx):
                        self._add_plain(name, st, src)
                    continue
                full = dirpath + b"/" + de.name
                if self.follow_links and stat.S_ISLNK(st.st_mode):
                    st = self._follow(full, name, st, ctx)
                    if st is None:
                        continue
                isdir = stat.S_ISDIR(st.st_mode)
                if self.filters is not None and self.filters.excluded(name, isdir, ctx):
                    continue
                if isdir and self.opts.one_file_system and st.st_dev != dev:
                    continue
                if self._add(name, full, st, top=False, src=src) and isdir:
                    if not recurse:
                        self.entries[-1].xflags = XMIT_NO_CONTENT_DIR
                        continue
                    subdirs.append((full, name + b"/"))
        if self.ahead is not None and len(subdirs) > 1:
            self.ahead.push([full for full, _ in subdirs[1:]])
        for full, pfx in subdirs:
            self._walk(full, pfx, dev, self.filters.enter(ctx, full) if ctx is not None else None)

    def _add(self, name: bytes, path: bytes, st, top: bool, src=None) -> bool:
        """List the file at ``path`` as ``name``; ``src`` is the SourceDir
        that gives ``path`` back from the name, when there is one."""
        o = self.opts
        if self.fake:
            from ..io.fakesuper import fold_checked, full_name
            st = fold_checked(st, path, full_name(path))
        # Equal values share one int object (a mode and an mtime second
        # are usually those of the entries before).
        mode = self._ints.setdefault(st.st_mode, st.st_mode)
        link = None
        mtime_ns = st.st_mtime_ns
        rdev = st.st_rdev
        size = None
        if self.copy_devices and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            # --copy-devices: listed as a regular file of the device's
            # size, with "now" as its mtime (flist.c make_file).
            size = _device_size(path)
            mode = stat.S_IFREG | (mode & 0o777)
            mtime_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000
            rdev = 0
        # As rsync's sender, symlinks, devices and specials are listed even
        # when they are not preserved (without target / device numbers);
        # the receiver skips them ("skipping non-regular file").
        if stat.S_ISREG(mode):
            if size is None:
                size = st.st_size
        elif stat.S_ISLNK(mode):
            try:
                link = os.readlink(path) if not self.fake else _fake_link(path)
            except OSError as e:
                self._fail("readlink", path, e, vanished=e.errno == 2)
                return False
            if self.munged and link.startswith(MUNGE_PREFIX) and len(link) > len(MUNGE_PREFIX):
                link = link[len(MUNGE_PREFIX):]     # --munge-links: sent as it was
            size = len(link)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            size = 0
        else:
            size = st.st_size
        sec, nsec = divmod(mtime_ns, 1_000_000_000)
        if sec == self._last_sec:
            sec = self._last_sec
        else:
            self._last_sec = sec
        if self.chmod and mode and not stat.S_ISLNK(mode):
            mode = tweak_mode(mode, self.chmod)
        e = FileEntry(name, mode, size, sec, nsec, st.st_uid, st.st_gid,
                      (os.major(rdev), os.minor(rdev)) if rdev else _NO_RDEV, link)
        if stat.S_ISDIR(mode) and top:
            e.xflags = XMIT_TOP_DIR
        elif self.atimes and not stat.S_ISDIR(mode):
            e.atime = st.st_atime_ns // 1_000_000_000     # whole seconds (flist.c)
        e.src = path if src is None else src
        if o.hard_links and not stat.S_ISDIR(mode) and st.st_nlink > 1:
            e.dev, e.ino = st.st_dev, st.st_ino
        if self.checksum is not None and stat.S_ISREG(mode):
            e.sum = self._file_sum(path)
        if self.acls and not stat.S_ISLNK(mode):
            e.acl = RsyncAcl()
            e.def_acl = RsyncAcl() if stat.S_ISDIR(mode) else None
            if carries_acls(mode, o.devices, o.specials):
                try:
                    access, e.def_acl = read_acls(path, mode)
                except AclError as err:
                    self.io_error |= IOERR_GENERAL
                    self.log.error(f"rsync: [sender] {err.what} \"{_show(os.path.abspath(path))}\" "
                                   f"failed: {err.strerror} ({err.errno})")
                    return False
                e.acl = strip_perms(access, mode)
        if self.xattr_policy is not None:
            e.xattrs = ()
            if carries_xattrs(mode, o.links, o.devices, o.specials):
                try:
                    e.xattrs = make_items(read_pairs(path, self.xattr_policy))
                except XattrError as err:
                    # flist.c send_file_name: the entry is left out.
                    self.io_error |= IOERR_GENERAL
                    self.log.error(f"rsync: [sender] {err.what}(\"{_show(os.path.abspath(path))}\") "
                                   f"failed: {err.strerror} ({err.errno})")
                    return False
        self._append(e)
        return True

    def _add_plain(self, name: bytes, st, src) -> None:
        """``_add`` for a regular file when no option reads more than its
        stat: the same entry, with fewer steps."""
        mode = st.st_mode
        mode = self._ints.setdefault(mode, mode)
        sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
        if sec == self._last_sec:
            sec = self._last_sec
        else:
            self._last_sec = sec
        e = FileEntry(name, mode, st.st_size, sec, nsec, st.st_uid, st.st_gid)
        e._src = src        # the ``src`` property's field, without its call
        entries = self.entries
        entries.append(e)
        if self.emit is not None and len(entries) - self._emitted > EMIT_BATCH:
            last = len(entries) - 1
            self.emit(entries[self._emitted:last])
            self._emitted = last

    def _append(self, e: FileEntry) -> None:
        if self.counter is not None and len(self.entries) % 100 == 0:
            self.counter(len(self.entries))      # --progress: the running count
        self.entries.append(e)
        if self.emit is not None and len(self.entries) - self._emitted > EMIT_BATCH:
            last = len(self.entries) - 1
            self.emit(self.entries[self._emitted:last])
            self._emitted = last

    def _file_sum(self, path: bytes) -> bytes:
        h = self.checksum.file_hasher()
        try:
            with open(path, "rb", buffering=0) as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
        except OSError:
            return bytes(self.checksum.digest_len)
        return h.digest()

    def _arg_stat(self, path: bytes):
        """A source argument's stat (flist.c link_stat): -L follows it, -k
        follows it to a directory."""
        o = self.opts
        if getattr(o, "copy_links", False):
            return os.stat(path)
        st = os.lstat(path)
        if getattr(o, "copy_dirlinks", False) and stat.S_ISLNK(st.st_mode):
            return _dir_behind(path) or st
        return st

    def _follow(self, path: bytes, name: bytes, st, ctx=None):
        """The stat to list a symlink met in a directory with (flist.c
        readlink_stat): its referent's with -L, with --copy-unsafe-links
        when it points out of the transfer, with -k when that is a
        directory; else its own.  None when a followed link is dangling
        (an error, as rsync: "symlink has no referent")."""
        o = self.opts
        follow = getattr(o, "copy_links", False)
        if not follow and getattr(o, "copy_dirlinks", False):
            ref = _dir_behind(path)
            if ref is not None:
                return ref          # -k first: a link to a directory is the directory
        if not follow and getattr(o, "copy_unsafe_links", False):
            try:
                target = os.readlink(path)
            except OSError:
                target = None
            if target is not None and unsafe_symlink(target, name):
                follow = True
                if self.verbose:      # info "symsafe"
                    self.log.info(f"copying unsafe symlink \"{_show(name)}\" -> \"{_show(target)}\"")
        if not follow:
            return st
        try:
            return os.stat(path)
        except OSError as e:
            f = self.filters
            if f is not None and (f.excluded(name, False, ctx) or f.excluded(name, True, ctx)):
                return None         # excluded either way: no error (flist.c make_file)
            if e.errno != errno.ENOENT:
                self._fail("stat", path, e, vanished=False)
            else:
                self.io_error |= IOERR_GENERAL
                self.log.error(f"symlink has no referent: \"{_show(os.path.abspath(path))}\"")
            return None

    def _missing_arg(self, name, e: OSError) -> bool:
        """A source argument that does not exist, with --ignore-missing-args
        (left out, no error) or --delete-missing-args (sent as an entry of
        mode 0, which asks the receiver to delete that name).  ``name`` is
        the entry's name, or None when the caller adds the entry itself."""
        o = self.opts
        if e.errno != errno.ENOENT or not (getattr(o, "ignore_missing_args", False)
                                           or getattr(o, "delete_missing_args", False)):
            return False
        if name is not None and getattr(o, "delete_missing_args", False):
            self._add_missing(name)
        return True

    def _add_missing(self, name: bytes) -> None:
        e = FileEntry(name, 0)
        e.src = None
        if self.acls:
            e.acl = RsyncAcl()
        if self.xattr_policy is not None:
            e.xattrs = ()
        self._append(e)

    def _fail_arg(self, path: bytes, e: OSError) -> None:
        """A source argument that cannot be stat'ed.  As flist.c: one that
        does not exist fails the run (exit 23) without marking the list
        as incomplete, so --delete still runs; any other error does both."""
        if e.errno != errno.ENOENT:
            self._fail("link_stat", path, e, vanished=False)
            return
        self.xfer_failed = True
        self.log.error(f"rsync: [sender] link_stat \"{_show(os.path.abspath(path))}\" failed: "
                       f"{e.strerror} ({e.errno})")

    def _fail(self, what: str, path: bytes, e: OSError, vanished: bool) -> None:
        full = os.path.abspath(path)
        if vanished and what != "link_stat":
            self.io_error |= IOERR_VANISHED
            self.log.warning(f"file has vanished: \"{_show(full)}\"")
            return
        self.io_error |= IOERR_GENERAL
        self.log.error(f"rsync: [sender] {what} \"{_show(full)}\" failed: "
                       f"{e.strerror} ({e.errno})")


_NO_RDEV = (0, 0)


def _device_size(path: bytes) -> int:
    """A device's size as its end offset (flist.c get_device_size); 0 when
    it cannot be opened (rsync lists it so, and the read fails later)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        return 0
    finally:
        os.close(fd)


def _dir_behind(path: bytes):
    """The stat of the directory a symlink points to (-k), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def _fake_link(path: bytes) -> bytes:
    from ..io.fakesuper import read_link
    return read_link(None, path, sending=True)


def _show(name: bytes) -> str:
    return show(name)
