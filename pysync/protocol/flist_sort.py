"""rsync's file-list order (flist.c f_name_cmp, protocol >= 29) and the
cleaning of duplicate names (flist_sort_and_clean).

Both sides sort the received list with this order; from then on an ndx
is a position in the sorted list, so a wrong order silently pairs data
with the wrong names.
"""

from __future__ import annotations

__all__ = ["sort_key", "sort_in_order", "sort_and_clean"]


def sort_key(name: bytes, is_dir: bool) -> bytes:
    """Order: '.' first; within one directory every non-directory before
    every subdirectory; otherwise byte order of the path with directories
    compared as if their names ended in '/'.

    The key is one byte string: each directory component becomes
    1, name, '/', NUL and the last component 0, name, NUL (1 ... '/' NUL
    for a directory).  Names hold no NUL, so comparing two keys byte by
    byte compares component by component: the kind first, then the name,
    a shorter name first when one is a prefix of the other."""
    if name == b".":
        return b""
    i = name.rfind(b"/")
    if i < 0:
        return (b"\x01" + name + b"/\x00") if is_dir else (b"\x00" + name + b"\x00")
    head = b"\x01" + name[:i].replace(b"/", b"/\x00\x01") + b"/\x00"
    last = name[i + 1:]
    return head + ((b"\x01" + last + b"/\x00") if is_dir else (b"\x00" + last + b"\x00"))


def _sort_key_reference(name: bytes, is_dir: bool):
    """The same order as tuples of (kind, component); tests compare both."""
    if name == b".":
        return ((0, b""),)
    comps = name.split(b"/")
    key = [(1, c + b"/") for c in comps[:-1]]
    last = comps[-1]
    key.append((1, last + b"/") if is_dir else (0, last))
    return tuple(key)


def _dir_key(d) -> bytes:
    """``sort_key(d, True)`` of a directory name; None is the top ("."),
    whose key is empty."""
    if d is None:
        return b""
    return b"\x01" + d.replace(b"/", b"/\x00\x01") + b"/\x00"


def sort_in_order(entries: list, consume: bool = False) -> list:
    """The entries stably sorted by ``sort_key``, without a key per entry.

    The key of an entry is its directory's key followed by its own part:
    nothing for the directory itself (and for "."), 0, base name, NUL for
    a non-directory.  So the sorted list is: the directories (with their
    own entries, and every non-directory they contain) in the order of
    their keys, each group as its directory's entries first and then its
    non-directories by base name.  Only the groups (one per directory) and
    the names within one group get keys; a list of 20,000 entries held
    ~1.2 MiB of keys at once the other way.  With ``consume`` the input
    list is emptied once its entries are in the groups, so the two lists
    of the whole are never held at once (the sort is a run's peak of
    memory)."""
    groups = {}       # directory name (None for the top) -> (directory entries, others)
    for e in entries:
        name = e.name
        if e.mode & 0o170000 == 0o040000 or name == b".":
            d = None if name == b"." else name
            part = 0
        else:
            i = name.rfind(b"/")
            d = name[:i] if i >= 0 else None
            part = 1
        group = groups.get(d)
        if group is None:
            group = groups[d] = ([], [])
        group[part].append(e)
    if consume:
        entries.clear()
    out = []
    for d in sorted(groups, key=_dir_key):
        dirs, others = groups.pop(d)       # each group's list goes as it is copied
        out += dirs
        if len(others) > 1:
            # By base name, stably: the positions sorted by a C-level key
            # over this group's base names (cut after its directory).
            cut = 0 if d is None else len(d) + 1
            bases = [e.name[cut:] for e in others]
            out += [others[j] for j in sorted(range(len(others)), key=bases.__getitem__)]
        else:
            out += others
    return out


def sort_and_clean(entries: list, consume: bool = False) -> list:
    """Stable sort by rsync's order; later duplicates of a name are marked
    ``cleared`` (a directory wins over a non-directory), keeping indices.
    ``consume``: the caller is done with ``entries``, which is emptied."""
    out = sort_in_order(entries, consume)
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
