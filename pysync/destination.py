"""Where a received file list lands (rsync's main.c get_local_name), which
of its names may land at all (a parent must be a directory of the list),
and the empty stand-in destination of a dry run into a directory that does
not exist yet."""

from __future__ import annotations

import os

from .errors import PysyncError, ProtocolViolation
from .protocol.constants import RERR_FILEIO, RERR_FILESELECT
from .text import show

__all__ = ["get_local_name", "check_parents", "MissingTree"]


class MissingTree:
    """A stand-in destination for a dry run into a directory that does not
    exist yet: every lookup finds nothing."""

    def __init__(self, root: bytes):
        self.root = root
        self.root_fd = -1

    def lstat(self, name):
        raise FileNotFoundError(name)

    def stat_entry(self, name, is_dir):
        raise FileNotFoundError(name)

    def locate(self, name):
        raise FileNotFoundError(name)

    def path(self, name):
        return os.path.join(self.root, name)

    def forget(self, name):
        pass


def check_parents(flist) -> None:
    """Every entry's parent must be a directory of the list (or the root):
    a hostile sender cannot make us write through a name that is a
    symlink or file in the same list."""
    dirs = {e.name for e in flist if e.mode & 0o170000 == 0o040000 and not e.cleared}
    # --delete-missing-args: a missing name may sit below another missing one.
    missing = {e.name for e in flist if e.mode == 0 and not e.cleared}
    for e in flist:
        name = e.name
        i = name.rfind(b"/")
        if i < 0 or e.cleared:
            continue
        parent = name[:i]
        if parent not in dirs and not (e.mode == 0 and parent in missing):
            # rsync allows implied parents of the top-level arguments; ours
            # only come from the list itself.
            names = {x.name for x in flist if not x.cleared}
            if parent in names:
                raise ProtocolViolation(
                    f"ABORTING due to invalid path from sender: {show(e.name)}", 2)


def get_local_name(flist, dest: bytes, log, dry_run: bool, report, mkpath: bool = False):
    """rsync main.c get_local_name(): where the received list lands.
    Returns (the directory the names are relative to, or None for a dry
    run into a directory that would be created; whether we created it)."""
    import stat as _stat
    live = [e for e in flist if not e.cleared]
    count = len(live)
    trailing = dest.endswith(b"/")
    path = dest.rstrip(b"/") or b"/"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PysyncError(f"rsync: [Receiver] stat \"{_show(path)}\" failed: {e.strerror} ({e.errno})",
                          RERR_FILEIO) from None
    if mkpath and st is None and (b"/" in dest or count > 1):
        # --mkpath: the missing directories of the destination (all of it
        # for a directory or several files, its parent for one file).
        whole = count > 1 and not trailing
        target = dest if whole else dest.rsplit(b"/", 1)[0]
        made = _make_path(target, dry_run)     # a dry run counts what it would make
        if made:
            report.created_dirs(made, dest if whole else (target or b"/"))
        if made and not dry_run:
            try:
                st = os.stat(path)
            except OSError:
                st = None
    if st is not None and _stat.S_ISDIR(st.st_mode):
        return path, False
    if st is not None:
        if count > 1:
            raise PysyncError("ERROR: destination must be a directory when copying more than 1 file",
                              RERR_FILESELECT)
        if count == 1 and live[0].is_dir:
            raise PysyncError("ERROR: cannot overwrite non-directory with a directory", RERR_FILESELECT)
    if count == 1 and not live[0].is_dir and (st is not None or not trailing):
        # One file onto a name: the list's single name becomes that name.
        live[0].name = os.path.basename(path)
        parent = os.path.dirname(path) or b"."
        if dry_run and mkpath and not os.path.isdir(parent):
            # --mkpath would have made it (upstream rsync's #880 fix; 3.2.7
            # fails here with "change_dir#3"): nothing there to compare.
            return None, True
        return parent, False
    if dry_run:
        report.created_dir(dest.rstrip(b'/') or dest)
        return None, True
    try:
        os.mkdir(path, 0o777)
    except OSError as e:
        raise PysyncError(f"rsync: [Receiver] mkdir \"{_show(os.path.abspath(path))}\" failed: "
                          f"{e.strerror} ({e.errno})", RERR_FILEIO) from None
    report.created_dir(dest.rstrip(b'/') or dest)
    return path, True


def _make_path(path: bytes, dry_run: bool = False) -> int:
    """mkdir -p; the number of directories made (util1.c make_path), or
    in a dry run that would be."""
    while path.startswith(b"./"):
        path = path[2:]
    path = path.rstrip(b"/")
    if not path:
        return 0
    missing = []
    p = path
    while p and not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    if dry_run:
        return len(missing)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o777)
        except FileExistsError:
            continue
        except OSError as e:
            raise PysyncError(f"rsync: [Receiver] mkdir \"{_show(os.path.abspath(d))}\" failed: "
                              f"{e.strerror} ({e.errno})", RERR_FILEIO) from None
    return len(missing)


def _show(b: bytes) -> str:
    return show(b)
