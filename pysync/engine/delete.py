"""--delete: remove what the destination has and the file list has not
(generator.c delete_in_dir, in the "during" form: each content directory
is cleaned when the generator reaches it).  Safety as rsync: nothing is
deleted after an I/O error on the sender (the caller checks), and every
removal goes through directory fds without following symlinks."""

from __future__ import annotations

import os
import stat

__all__ = ["delete_extraneous", "remove_tree"]


def delete_extraneous(gen, entry) -> None:
    """Delete the children of directory ``entry`` that are not in the list."""
    names = _names(gen)
    tree = gen.tree
    prefix = b"" if entry.name == b"." else entry.name + b"/"
    try:
        dfd = tree.dir_fd(b"" if entry.name == b"." else entry.name)
        children = sorted(os.fsencode(n) for n in os.listdir(dfd))
    except OSError as e:
        gen.log.error(f"rsync: [generator] opendir \"{tree.path(entry.name).decode('utf-8', 'backslashreplace')}\" "
                      f"failed: {e.strerror} ({e.errno})")
        return
    filters = gen.cfg.filters
    for child in children:
        name = prefix + child
        if name in names:
            continue
        try:
            st = os.stat(child, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        isdir = stat.S_ISDIR(st.st_mode)
        if filters is not None and not gen.cfg.delete_excluded and filters.protected(name, isdir):
            continue
        if gen.cfg.max_delete is not None and gen.del_stats.total >= gen.cfg.max_delete:
            gen.skipped_deletes = getattr(gen, "skipped_deletes", 0) + 1
            continue
        if gen.cfg.dry_run:
            gen.note_deleted(name, st.st_mode)
            continue
        try:
            if isdir:
                remove_tree(tree, name, gen.note_deleted)
            else:
                os.unlink(child, dir_fd=dfd)
                gen.note_deleted(name, st.st_mode)
        except OSError as e:
            gen.log.error(f"rsync: [generator] delete_file: unlink \"{tree.path(name).decode('utf-8', 'backslashreplace')}\" "
                          f"failed: {e.strerror} ({e.errno})")


def _names(gen) -> set:
    s = getattr(gen, "_name_set", None)
    if s is None:
        s = gen._name_set = {e.name for e in gen.flist if not e.cleared}
    return s


def remove_tree(tree, name: bytes, on_deleted=None) -> None:
    """Remove directory ``name`` and everything below it, children first."""
    dfd = tree.dir_fd(name)
    for child in sorted(os.fsencode(n) for n in os.listdir(dfd)):
        st = os.stat(child, dir_fd=dfd, follow_symlinks=False)
        sub = name + b"/" + child
        if stat.S_ISDIR(st.st_mode):
            remove_tree(tree, sub, on_deleted)
            dfd = tree.dir_fd(name)
        else:
            os.unlink(child, dir_fd=dfd)
            if on_deleted:
                on_deleted(sub, st.st_mode)
    tree.forget(name)
    pfd, base = tree.locate(name)
    os.rmdir(base, dir_fd=pfd)
    if on_deleted:
        on_deleted(name, stat.S_IFDIR)
