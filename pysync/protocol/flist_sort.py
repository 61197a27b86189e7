"""rsync's file-list order (flist.c f_name_cmp, protocol >= 29) and the
cleaning of duplicate names (flist_sort_and_clean).

Both sides sort the received list with this order; from then on an ndx
is a position in the sorted list, so a wrong order silently pairs data
with the wrong names.
"""

from __future__ import annotations

__all__ = ["sort_key", "sort_and_clean"]


def sort_key(name: bytes, is_dir: bool):
    """Order: '.' first; within one directory every non-directory before
    every subdirectory; otherwise byte order of the path with directories
    compared as if their names ended in '/'."""
    if name == b".":
        return ((0, b""),)
    comps = name.split(b"/")
    key = [(1, c + b"/") for c in comps[:-1]]
    last = comps[-1]
    key.append((1, last + b"/") if is_dir else (0, last))
    return tuple(key)


def sort_and_clean(entries: list) -> list:
    """Stable sort by rsync's order; later duplicates of a name are marked
    ``cleared`` (a directory wins over a non-directory), keeping indices."""
    out = sorted(entries, key=lambda e: sort_key(e.name, e.is_dir))
    prev = None
    for e in out:
        if prev is not None and e.name == prev.name:
            if e.is_dir and not prev.is_dir:
                prev.cleared = True
                prev = e
            else:
                e.cleared = True
            continue
        prev = e
    return out
