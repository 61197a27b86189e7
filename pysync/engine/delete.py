"""--delete: remove what the destination has and the file list has not
(generator.c delete_in_dir).  As rsync: a directory's extraneous entries
go in reverse file-list order, a directory's contents before the
directory itself, a dry run reports the same deletions without making
them, and nothing is deleted after an I/O error on the sender (the caller
checks).  Every removal goes through directory fds without following
symlinks."""

from __future__ import annotations

import os
import stat

from ..protocol.flist_sort import sort_key
from ..text import show

__all__ = ["delete_extraneous", "remove_tree"]


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
    for child, st in children:
        name = prefix + child
        if name in names:
            continue
        isdir = stat.S_ISDIR(st.st_mode)
        if filters is not None and not gen.cfg.delete_excluded and filters.protected(name, isdir):
            continue
        backups = gen.cfg.backups
        if backups is not None and backups.protects(name):
            continue
        if gen.cfg.max_delete is not None and gen.del_stats.total >= gen.cfg.max_delete:
            gen.skipped_deletes += 1
            continue
        try:
            if isdir:
                remove_tree(tree, name, gen.note_deleted, gen.cfg.dry_run, backups)
            else:
                if gen.cfg.dry_run:
                    pass
                elif backups is not None:
                    backups.keep(name, move=True)
                else:
                    os.unlink(child, dir_fd=tree.dir_fd(b"" if entry.name == b"." else entry.name))
                gen.note_deleted(name, st.st_mode)
        except OSError as e:
            gen.log.error(f"rsync: [generator] delete_file: unlink \"{show(tree.path(name))}\" "
                          f"failed: {e.strerror} ({e.errno})")


def _names(gen) -> set:
    s = getattr(gen, "_name_set", None)
    if s is None:
        s = gen._name_set = {e.name for e in gen.flist if not e.cleared}
    return s


def remove_tree(tree, name: bytes, on_deleted=None, dry_run: bool = False, backups=None) -> None:
    """Remove directory ``name`` and everything below it, contents first
    (or, in a dry run, only report what would go); with backups, files are
    moved into the backups instead of removed."""
    for child, st in _listing(tree.dir_fd(name)):
        sub = name + b"/" + child
        if stat.S_ISDIR(st.st_mode):
            remove_tree(tree, sub, on_deleted, dry_run, backups)
        else:
            if dry_run:
                pass
            elif backups is not None:
                backups.keep(sub, move=True)
            else:
                os.unlink(child, dir_fd=tree.dir_fd(name))
            if on_deleted:
                on_deleted(sub, st.st_mode)
    if not dry_run:
        tree.forget(name)
        pfd, base = tree.locate(name)
        os.rmdir(base, dir_fd=pfd)
    if on_deleted:
        on_deleted(name, stat.S_IFDIR)
