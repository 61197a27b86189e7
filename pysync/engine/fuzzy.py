"""-y/--fuzzy: a basis for a file the destination does not have yet.

rsync's generator looks in the file's destination directory (with -yy also
in the same directory under each --compare-dest/--copy-dest/--link-dest)
for a regular, non-empty file to delta against: first one with the same
size and modification time, else the one whose name is closest (an edit
distance over the bytes of the names, where the names' suffixes weigh
ten times more), within a limit.  A file being updated in this run is
never a basis for another.  The choice only changes how much data
travels, never the result.  Our distance is our own: unit cost per
insertion, deletion and substitution, plus a small fraction for how far
apart two substituted bytes are (so "v2" is nearer "v1" than "x1"), with
the same limit and suffix weight as rsync.
"""

from __future__ import annotations

import os
import stat

__all__ = ["FuzzyFinder", "basis_mode", "name_distance", "name_suffix"]

LIMIT = 25            # rsync ignores names farther apart than this
_SUFFIX_WEIGHT = 10
_BYTE = 1.0 / 512     # the fractional cost of a substitution, per byte value apart


def name_suffix(name: bytes) -> bytes:
    """The significant suffix of a name: its last ".ext", not counting
    leading dots, a trailing "~", ".bak"/".old"/".orig" or a numbered
    backup's "~N"; an all-digits extension ("log.1") gives way to an
    earlier one that is not."""
    n = name.lstrip(b".")
    tilde = len(n) > 1 and n.endswith(b"~")
    if tilde:
        n = n[:-1]
    found = b""
    while len(n) > 1:
        i = n.rfind(b".")
        if i <= 0:
            break
        ext, n = n[i:], n[:i]
        if ext in (b".bak", b".old", b".orig"):
            continue
        if tilde and ext[1:2] == b"~" and ext[2:3].isdigit():
            continue
        found = ext
        if len(ext) == 1 or not ext[1:].isdigit():
            break
    return found


def name_distance(a: bytes, b: bytes, limit: float = LIMIT) -> float:
    """Edit distance of two names, or a value above ``limit`` as soon as it
    must exceed it (the length difference alone, or a whole row)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if not a or not b:
        return float(len(a) or len(b))
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)]
        best = cur[0]
        for j, cb in enumerate(b, 1):
            if ca == cb:
                cost = prev[j - 1]
            else:
                cost = prev[j - 1] + 1 + abs(ca - cb) * _BYTE
            ins = cur[j - 1] + 1
            dele = prev[j] + 1
            v = cost if cost < ins else ins
            if dele < v:
                v = dele
            cur.append(v)
            if v < best:
                best = v
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


class FuzzyFinder:
    """Candidate files per directory, listed once; ``taken`` names (files
    this run rewrites) are skipped."""

    def __init__(self, tree, alt_dirs=(), level: int = 1):
        self.tree = tree
        self.alt_dirs = list(alt_dirs) if level > 1 else []
        self.taken: set = set()
        self._lists: dict = {}

    def _listing(self, where, reldir: bytes) -> list:
        key = (where, reldir)
        got = self._lists.get(key)
        if got is not None:
            return got
        out = []
        try:
            if where is None:
                fd = self.tree.dir_fd(reldir)
                names = os.listdir(fd)
            else:
                fd = None
                names = os.listdir(os.path.join(where, reldir) if reldir else where)
        except OSError:
            names = []
        for n in sorted(names):
            b = os.fsencode(n)
            try:
                if fd is not None:
                    st = os.stat(b, dir_fd=fd, follow_symlinks=False)
                else:
                    st = os.lstat(os.path.join(where, reldir, b))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size:
                out.append((b, st.st_size, int(st.st_mtime), reldir + b"/" + b if reldir else b))
        if len(self._lists) > 64:
            self._lists.clear()
        self._lists[key] = out
        return out

    def find(self, entry):
        """(path of the basis: a name relative to the destination, or an
        absolute one in an alternate dir; the place: 0 for the destination,
        i for the i-th alternate dir; its base name), or None."""
        reldir, _, base = entry.name.rpartition(b"/")
        taken = self.taken
        cands = [(i, where, cand, size, mtime, rel)
                 for i, where in enumerate([None] + self.alt_dirs)
                 for cand, size, mtime, rel in self._listing(where, reldir)
                 if where is not None or rel not in taken]

        def found(i, where, cand, rel):
            return (rel if where is None else os.path.join(where, rel)), i, cand

        for i, where, cand, size, mtime, rel in cands:
            if size == entry.size and mtime == entry.mtime:
                return found(i, where, cand, rel)
        suffix = name_suffix(base)
        best = None
        lowest = float(LIMIT)
        for i, where, cand, size, mtime, rel in cands:
            d = name_distance(cand, base, lowest)
            if d > lowest:
                continue
            d += _SUFFIX_WEIGHT * name_distance(name_suffix(cand), suffix, 1e9)
            if d <= lowest:
                lowest, best = d, found(i, where, cand, rel)
        return best


def basis_mode(recv, ndx: int, typed: int):
    """(mode or None,) of the basis of another name a file's data is
    rebuilt from (a fuzzy match, or an absolute --*-dest or backup path;
    ``typed``: the record named its type): a file received without -p
    takes its permissions if it is a regular file (rsync's receiver keeps
    those of the basis it opened).  None for a basis that is the file
    itself, or our --partial-dir file (its permissions are the temp
    file's; the file's new ones are wanted then, as before)."""
    path = recv.basis.get(ndx)
    if path is None or not (typed or path.startswith(b"/")):
        return None
    if recv.cfg.partial_dir is not None:
        from .basis import partial_path
        if path == partial_path(recv, recv.flist[ndx].name):
            return None
    try:
        st = os.lstat(path) if path.startswith(b"/") else recv.tree.lstat(path)
    except OSError:
        return (None,)
    return (st.st_mode if stat.S_ISREG(st.st_mode) else None,)
