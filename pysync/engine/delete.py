"""--delete: remove what the destination has and the file list has not
(generator.c delete_in_dir).  As rsync: a directory's extraneous entries
go in reverse file-list order, a directory's contents before the
directory itself, a dry run reports the same deletions without making
them, and nothing is deleted after an I/O error on the sender (the caller
checks).  Every removal goes through directory fds without following
symlinks."""

from __future__ import annotations

import errno
import os
import stat

from ..protocol.constants import IOERR_GENERAL, MSG_DELETED, XMIT_NO_CONTENT_DIR
from ..protocol.flist_sort import sort_key
from ..text import show

__all__ = ["delete_extraneous", "delete_missing", "make_room", "remove_tree", "content_dir", "delete_pass", "delete_in",
           "note_deleted"]


def _listing(dfd: int):
    """(name, lstat) of a directory's entries in reverse file-list order."""
    out = []
    for n in os.listdir(dfd):
        b = os.fsencode(n)
        try:
            st = os.stat(b, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append((b, st))
    out.sort(key=lambda x: sort_key(x[0], stat.S_ISDIR(x[1].st_mode)), reverse=True)
    return out


def delete_extraneous(gen, entry) -> None:
    """Delete the children of directory ``entry`` that are not in the list."""
    names = _names(gen)
    tree = gen.tree
    prefix = b"" if entry.name == b"." else entry.name + b"/"
    try:
        dfd = tree.dir_fd(b"" if entry.name == b"." else entry.name)
        children = _listing(dfd)
    except OSError as e:
        gen.log.error(f"rsync: [generator] opendir \"{show(tree.path(entry.name))}\" "
                      f"failed: {e.strerror} ({e.errno})")
        return
    filters = gen.cfg.filters
    ctx = _context(gen, entry.name) if filters is not None and filters.merges else None
    for child, st in children:
        name = prefix + child
        if name in names:
            continue
        isdir = stat.S_ISDIR(st.st_mode)
        if filters is not None and filters.protected(name, isdir, ctx,
                                                     delete_excluded=gen.cfg.delete_excluded):
            continue
        backups = gen.cfg.backups
        if backups is not None and backups.protects(name):
            continue
        if not isdir and gen.cfg.max_delete is not None \
                and gen.del_stats.total >= gen.cfg.max_delete:
            gen.skipped_deletes += 1     # a directory's contents are counted first
            continue
        try:
            if isdir:
                remove_tree(tree, name, lambda n, m: note_deleted(gen, n, m), gen.cfg.dry_run,
                            backups, _keeper(gen), gen.log, st.st_mode, _limit(gen))
            else:
                if gen.cfg.dry_run:
                    pass
                elif backups is not None:
                    backups.keep(name, move=True)
                else:
                    os.unlink(child, dir_fd=tree.dir_fd(b"" if entry.name == b"." else entry.name))
                note_deleted(gen, name, st.st_mode)
        except OSError as e:
            gen.log.error(f"rsync: [generator] delete_file: unlink \"{show(tree.path(name))}\" "
                          f"failed: {e.strerror} ({e.errno})")


def make_room(gen, name: bytes) -> bool:
    """Remove directory ``name`` with its contents to make way for an entry
    of another type (--delete/--force).  As delete.c's DEL_MAKE_ROOM: the
    contents are reported, counted and held to --max-delete, the directory
    itself is not; False (after "cannot delete non-empty directory") if
    something stayed."""
    return remove_tree(gen.tree, name,
                       lambda n, m: None if n == name else note_deleted(gen, n, m),
                       gen.cfg.dry_run, gen.cfg.backups, None, gen.log, stat.S_IFDIR,
                       _limit(gen), make_room=True)


def _protected(gen, name: bytes, isdir: bool, perishable: bool = True) -> bool:
    """Does a filter rule keep ``name`` (relative to the destination) from
    deletion, with the rules in effect in its directory?"""
    filters = gen.cfg.filters
    if filters is None:
        return False
    parent = name.rsplit(b"/", 1)[0] if b"/" in name else b"."
    ctx = _context(gen, parent) if filters.merges else None
    return filters.protected(name, isdir, ctx, perishable=perishable,
                             delete_excluded=gen.cfg.delete_excluded)


def _keeper(gen):
    """What protects an entry inside a directory being deleted: the filter
    rules, where perishable ones (-C's defaults) do not count (delete.c)."""
    if gen.cfg.filters is None:
        return None
    return lambda n, d: _protected(gen, n, d, perishable=False)


def delete_missing(gen, entry, st) -> None:
    """--delete-missing-args: the sender's entry of mode 0 names a source
    argument that does not exist; what is at that name here goes, as
    generator.c does it: unless a filter rule excludes the name, a
    directory with its contents only under --delete or --force, within
    --max-delete, into the backups with -b."""
    cfg = gen.cfg
    name = entry.name
    if _protected(gen, name, False):
        return
    if st is None:
        return
    tree = gen.tree
    at_limit = _limit(gen) or (lambda: False)
    try:
        if stat.S_ISDIR(st.st_mode):
            if cfg.delete or cfg.force:
                remove_tree(tree, name, lambda n, m: note_deleted(gen, n, m), cfg.dry_run,
                            cfg.backups, _keeper(gen), gen.log, st.st_mode, _limit(gen))
                return
            if os.listdir(tree.dir_fd(name)):      # only its emptiness matters here
                gen.log.info(f"cannot delete non-empty directory: {show(name)}")
                return
            if at_limit():
                return
            if not cfg.dry_run:
                tree.forget(name)
                pfd, base = tree.locate(name)
                os.rmdir(base, dir_fd=pfd)
        elif at_limit():
            return
        elif cfg.dry_run:
            pass
        elif cfg.backups is not None:
            cfg.backups.keep(name, move=True)
        else:
            pfd, base = tree.locate(name)
            os.unlink(base, dir_fd=pfd)
        note_deleted(gen, name, st.st_mode)
    except OSError as e:
        what = "rmdir" if stat.S_ISDIR(st.st_mode) else "unlink"
        gen.log.error(f"rsync: [generator] delete_file: {what}({show(name)}) "
                      f"failed: {e.strerror} ({e.errno})")


def _context(gen, dirname: bytes):
    """The per-directory filter rules in effect in destination directory
    ``dirname`` (merge files read from the destination, as rsync's
    generator does before deleting there)."""
    cache = getattr(gen, "_filter_ctx", None)
    if cache is None:
        cache = gen._filter_ctx = {}
    if dirname in cache:
        return cache[dirname]
    filters = gen.cfg.filters
    root = os.path.abspath(gen.tree.root)
    if dirname == b".":
        ctx = filters.enter(filters.root_context(root), root)
    else:
        parent = dirname.rsplit(b"/", 1)[0] if b"/" in dirname else b"."
        ctx = filters.enter(_context(gen, parent), os.path.join(root, dirname))
    cache[dirname] = ctx
    return ctx


def _names(gen) -> set:
    s = getattr(gen, "_name_set", None)
    if s is None:
        s = gen._name_set = {e.name for e in gen.flist if not e.cleared}
    return s


def _limit(gen):
    """--max-delete, checked for each entry of a directory being deleted
    (delete.c delete_item): True, and one more skipped, at the limit."""
    if gen.cfg.max_delete is None:
        return None

    def at_limit() -> bool:
        if gen.del_stats.total >= gen.cfg.max_delete:
            gen.skipped_deletes += 1
            return True
        return False
    return at_limit


def remove_tree(tree, name: bytes, on_deleted=None, dry_run: bool = False, backups=None,
                keep=None, log=None, mode: int = stat.S_IFDIR, at_limit=None,
                make_room: bool = False) -> bool:
    """Remove directory ``name`` and everything below it, contents first
    (or, in a dry run, only report what would go); with backups, files are
    moved into the backups instead of removed.  ``keep(name, is_dir)``:
    entries the filter rules protect stay, and so do their directories
    ("cannot delete non-empty directory").  ``at_limit()`` is asked before
    each removal (--max-delete), except for ``name`` itself when it only
    makes room for a new entry (``make_room``): that one is not counted
    (delete.c).  True if ``name`` went."""
    if not _remove_contents(tree, name, on_deleted, dry_run, backups, keep, log, at_limit):
        return False
    if not make_room and at_limit is not None and at_limit():
        return False
    return _remove_dir(tree, name, on_deleted, dry_run, log, mode)


def _remove_contents(tree, name, on_deleted, dry_run, backups, keep, log, at_limit) -> bool:
    """Remove what is in directory ``name``; False, with rsync's message,
    if something stays."""
    kept = False
    for child, st in _listing(tree.dir_fd(name)):
        sub = name + b"/" + child
        if keep is not None and keep(sub, stat.S_ISDIR(st.st_mode)):
            kept = True
            continue
        if stat.S_ISDIR(st.st_mode):
            # As delete.c: a subdirectory that kept something is still
            # tried (and counted against the limit) after its contents,
            # so its rmdir says "non-empty" a second time, and a dry run,
            # whose rmdir always succeeds, reports it deleted.
            if not _remove_contents(tree, sub, on_deleted, dry_run, backups, keep, log, at_limit):
                kept = True
            if at_limit is not None and at_limit():
                kept = True
            elif not _remove_dir(tree, sub, on_deleted, dry_run, log, st.st_mode):
                kept = True
            continue
        if at_limit is not None and at_limit():
            kept = True
            continue
        if dry_run:
            pass
        elif backups is not None:
            backups.keep(sub, move=True)
        else:
            os.unlink(child, dir_fd=tree.dir_fd(name))
        if on_deleted:
            on_deleted(sub, st.st_mode)
    if kept and log is not None:
        log.info(f"cannot delete non-empty directory: {show(name)}")
    return not kept


def _remove_dir(tree, name, on_deleted, dry_run, log, mode) -> bool:
    """rmdir ``name`` (a dry run's always succeeds, as rsync's does)."""
    if not dry_run:
        tree.forget(name)
        pfd, base = tree.locate(name)
        try:
            os.rmdir(base, dir_fd=pfd)
        except OSError as e:
            # Not empty: something stayed, or the backups of its files
            # (-b, no --backup-dir) were made beside them.
            if e.errno != errno.ENOTEMPTY:
                raise
            if log is not None:
                log.info(f"cannot delete non-empty directory: {show(name)}")
            return False
    if on_deleted:
        on_deleted(name, mode)     # the directory's own mode: %B in a deletion's log line
    return True


# ---- the generator's side: when and where to delete, and the count -------------------
def content_dir(entry) -> bool:
    # Protocol >= 30: the sender's flag alone decides (flist.c), so -d
    # deletes in "." of "src/" and in no directory below it.
    return not entry.xflags & XMIT_NO_CONTENT_DIR


def delete_pass(gen) -> None:
    """--delete-before / --delete-after: every content directory that
    exists as a directory, in list order."""
    for entry in gen.flist:
        if entry.cleared or not entry.is_dir or not content_dir(entry):
            continue
        try:
            st = gen.tree.stat_entry(entry.name, True)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            delete_in(gen, entry)


def delete_in(gen, entry) -> None:
    if not io_error_stops(gen):
        delete_extraneous(gen, entry)


def io_error_stops(gen) -> bool:
    """Whether the sender's I/O error stops deletions; said once, at the
    first directory deletions are tried in (one the run made too: rsync's
    delete_in_dir is called for every directory of the list)."""
    if gen.io_error() & IOERR_GENERAL and not gen.cfg.ignore_errors:
        if not getattr(gen, "_warned_io", False):
            gen.log.info("IO error encountered -- skipping file deletion")   # FINFO: stdout
            gen._warned_io = True
        return True
    return False


def note_deleted(gen, name: bytes, mode: int) -> None:
    """Count and report one deletion (the generator's own and those of
    delete_extraneous and remove_tree)."""
    d = gen.del_stats
    if stat.S_ISDIR(mode):
        d.dirs += 1
    elif stat.S_ISLNK(mode):
        d.symlinks += 1
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        d.devices += 1
    elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        d.specials += 1
    else:
        d.files += 1
    shown = name + (b"/" if stat.S_ISDIR(mode) else b"")
    if gen.cfg.am_server:
        gen.wire.send_msg(MSG_DELETED, name + (b"\0" if stat.S_ISDIR(mode) else b""))
    else:
        gen.report.deleted(shown, mode)
