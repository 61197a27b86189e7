"""-m/--prune-empty-dirs: the receiver drops from the sorted file list the
directories that would stay empty (flist.c, after sorting): a directory
is kept when a non-directory lies somewhere below it, or when the
receiver's rules exclude it (it and its parents then stay).  Dropped
entries keep their index, as every cleared entry does."""

from __future__ import annotations

__all__ = ["prune_empty_dirs"]


def prune_empty_dirs(flist, filters) -> int:
    """Mark the empty directory chains of ``flist`` cleared; their count."""
    keep = set()

    def keep_chain(name: bytes) -> None:
        while True:
            i = name.rfind(b"/")
            if i < 0:
                return
            name = name[:i]
            if name in keep:
                return
            keep.add(name)

    for e in flist:
        if e.cleared or e.name == b".":
            continue
        if not e.is_dir:
            keep_chain(e.name)
        elif filters is not None and filters.excluded(e.name, True, None):
            keep.add(e.name)
            keep_chain(e.name)
    pruned = 0
    for e in flist:
        if e.is_dir and not e.cleared and e.name != b"." and e.name not in keep:
            e.cleared = True
            pruned += 1
    return pruned
