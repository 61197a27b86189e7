"""Awkward source trees and a tree comparator for end-to-end and interop tests.

The idea is openrsync's ``regress/functional/lib.sh`` (``generate_tree_1`` and
``compare_trees``), written from scratch in Python: every scenario builds a
source tree with one of the ``make_<name>`` builders, runs a transfer (pysync
or stock rsync, either way round), and checks the result with
:func:`compare_trees`.

Builders are deterministic: the same builder run twice produces trees that
compare equal (same bytes, modes, nanosecond mtimes, owners and hard-link
structure), so a test can build an "expected" tree instead of copying one.
All mtimes are set explicitly; directory mtimes are set last, bottom-up,
because creating an entry inside a directory bumps the directory's mtime.

:func:`snapshot` returns a JSON-serializable description of a tree (a dict of
plain values) so a test can record a tree, run something, and assert the tree
did *not* change: ``compare_trees(snapshot(d), d) == []``.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

__all__ = [
    "TREES",
    "Snapshot",
    "compare_trees",
    "is_root",
    "make_awkward_names",
    "make_basic",
    "make_deep",
    "make_empty",
    "make_hardlinks",
    "make_links",
    "make_modes",
    "make_owners",
    "make_specials",
    "make_times",
    "snapshot",
]

#: Default mtime for every entry a builder does not time on purpose:
#: 2023-11-14T22:13:20.5Z, with a non-zero nanosecond part so that a transfer
#: that drops nanoseconds is caught by every tree, not only by ``times``.
DEFAULT_MTIME_NS = 1_700_000_000_500_000_000

#: A snapshot: relative name (``"."`` for the root itself, other names decoded
#: with ``os.fsdecode``, i.e. surrogateescape for non-UTF-8 bytes) -> entry.
#: Entry keys: type, mode, uid, gid, mtime_ns, inode, and per type
#: size/sha256 (file), target (symlink), rdev (chr/blk).
Snapshot = dict[str, dict[str, Any]]

TreeLike = Union[str, os.PathLike, Snapshot]


def is_root() -> bool:
    """True when we can chown, mknod devices and set setuid bits freely."""
    return os.geteuid() == 0


# --------------------------------------------------------------------------
# Small building blocks shared by the builders
# --------------------------------------------------------------------------

def _path(root: Path, name: str | bytes) -> bytes:
    """Join *name* (``/``-separated, str or bytes) under *root*, as bytes."""
    return os.path.join(os.fsencode(root), os.fsencode(name))


def _write(root: Path, name: str | bytes, data: bytes = b"", *,
           mode: int = 0o644, mtime_ns: int = DEFAULT_MTIME_NS) -> bytes:
    """Create a regular file with *data*, *mode* and *mtime_ns*; return its path.

    Parent directories are created as needed (with mode 0755).
    """
    path = _path(root, name)
    _makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # explicit, so the umask does not matter
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _makedirs(path: bytes) -> None:
    """Like os.makedirs, but every directory it creates gets mode 0755 whatever the umask."""
    if os.path.isdir(path):
        return
    _makedirs(os.path.dirname(path))
    os.mkdir(path)
    os.chmod(path, 0o755)


def _mkdir(root: Path, name: str | bytes, mode: int = 0o755) -> bytes:
    """Create directory *name* (and parents) with *mode*; return its path."""
    path = os.path.normpath(_path(root, name))
    _makedirs(path)
    os.chmod(path, mode)
    return path


def _symlink(root: Path, name: str | bytes, target: str | bytes, *,
             mtime_ns: int = DEFAULT_MTIME_NS) -> bytes:
    """Create a symlink *name* -> *target* with its own (lutimes) mtime."""
    path = _path(root, name)
    _makedirs(os.path.dirname(path))
    os.symlink(os.fsencode(target), path)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    return path


def _data(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes (plenty of bytes >= 0x80)."""
    return random.Random(seed).randbytes(size)


def _finish_dirs(root: Path, times: dict[str, int] | None = None) -> None:
    """Set every directory's mtime, deepest first, the root last.

    *times* maps a relative directory name (``"."`` for the root) to an mtime
    in ns; directories not listed get DEFAULT_MTIME_NS. Must be the builder's
    last step: any later change inside a directory would bump its mtime.
    """
    times = times or {}
    top = os.fsencode(root)
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        rel = os.path.relpath(dirpath, top)
        ns = times.get(os.fsdecode(rel), DEFAULT_MTIME_NS)
        os.utime(dirpath, ns=(ns, ns))


# --------------------------------------------------------------------------
# Builders: make_<name>(root) fills the (possibly not yet existing) dir root
# --------------------------------------------------------------------------

def make_basic(root: Path) -> None:
    """A few files and dirs; sizes 0, 1, 700, 70000 and 1 MiB + 3, mostly binary."""
    _mkdir(root, ".")
    _write(root, "empty", b"")
    _write(root, "one", b"\xff")
    _write(root, "text.txt", b"hello, pysync\n" * 50)  # 700 bytes
    _write(root, "dir/small.bin", _data(1, 700))
    _write(root, "dir/medium.bin", _data(2, 70_000))
    _write(root, "dir/sub/large.bin", _data(3, (1 << 20) + 3))
    _mkdir(root, "emptydir")
    _finish_dirs(root)


#: File names that sort trickily in rsync's file-list order (directories
#: compare as if they had a trailing "/"), and the directories among them.
SORT_FILES = ["Z", "a.txt", "a0", "abc", "b", "z"]
SORT_DIRS = [".hid", "A", "_z", "a b", "a-b", "a.b", "a", "ab/c"]


def make_awkward_names(root: Path) -> None:
    """Names with spaces, newlines, shell metacharacters, bad UTF-8, 255 bytes."""
    _mkdir(root, ".")
    names: list[str | bytes] = [
        "with space", " leading space", "trailing space ", "two  spaces",
        "new\nline", "tab\there", "back\\slash", "-leading-dash", "--rsync-path=x",
        "quote'single", 'quote"double', "dollar$HOME", "back`tick`", "semi;colon",
        "amp&pipe|", "glob*?[x]", "~tilde", "#hash", "paren(s)", "brace{s}",
        b"bad\xff\xfeutf8", b"\x80lone-continuation",
        "caf\u00e9-nfc", "cafe\u0301-nfd",   # same glyphs, different bytes
        "\u65e5\u672c\u8a9e", "emoji-\U0001F600",
        "x" * 251 + ".txt",                  # 255 bytes, ASCII
        "\u00e9" * 127 + "e",                # 255 bytes, 2-byte UTF-8 characters
    ]
    for i, name in enumerate(names):
        _write(root, name, b"name %d\n" % i)
    for i, name in enumerate(SORT_FILES):
        _write(root, name, b"sort file %d\n" % i)
    for i, name in enumerate(SORT_DIRS):
        _write(root, name + "/inner", b"sort dir %d\n" % i)
    _write(root, "a b/with space inside", b"x")
    _write(root, b"dir\xff/f\nile", b"y")  # non-UTF-8 directory name
    _finish_dirs(root)


#: Nesting depth of make_deep's directory chain.
DEEP_DEPTH = 40
#: Entries in make_deep's wide directory: more than the 253 an NDX delta byte
#: can express, so the long NDX forms get used.
WIDE_COUNT = 300


def make_deep(root: Path) -> None:
    """A 40-deep directory chain plus a directory with 300 files."""
    _mkdir(root, ".")
    chain = "/".join(f"d{i:02d}" for i in range(DEEP_DEPTH))
    _write(root, chain + "/bottom.txt", b"bottom\n")
    _write(root, "d00/d01/side.txt", b"side\n")
    for i in range(WIDE_COUNT):
        _write(root, f"wide/f{i:03d}", b"%d\n" % i)
    _finish_dirs(root)


def make_links(root: Path) -> None:
    """Relative, absolute, dangling and directory symlinks, odd link names."""
    _mkdir(root, ".")
    _write(root, "target.txt", b"target\n")
    _write(root, "dir/inner.txt", b"inner\n")
    _symlink(root, "rel", "target.txt")
    _symlink(root, "dir/up", "../target.txt")
    _symlink(root, "abs", "/nonexistent/pysync/absolute")
    _symlink(root, "abs-etc", "/etc/hostname")
    _symlink(root, "dangling", "no-such-file")
    _symlink(root, "to-dir", "dir")
    _symlink(root, "link with spaces", "target with spaces")
    _symlink(root, "self-loop", "self-loop")
    _symlink(root, b"bad\xffname", b"bad\xfetarget")
    _symlink(root, "long-target", "t/" * 100 + "end")
    _finish_dirs(root)


def make_modes(root: Path) -> None:
    """Permission bits: setuid, setgid, sticky, a 0500 dir, a 0000 file (root only)."""
    _mkdir(root, ".")
    _write(root, "rw-owner", b"600\n", mode=0o600)
    _write(root, "exec", b"#!/bin/sh\n", mode=0o755)
    _write(root, "readonly", b"444\n", mode=0o444)
    _write(root, "odd", b"751\n", mode=0o751)
    if is_root():  # only root can read it back (to copy or to hash it)
        _write(root, "none", b"000\n", mode=0o000)
    _write(root, "setuid", b"4755\n", mode=0o4755)
    _write(root, "setgid", b"2755\n", mode=0o2755)
    _mkdir(root, "sticky", 0o1777)
    _write(root, "sticky/file", b"in sticky\n")
    _mkdir(root, "setgid-dir", 0o2775)
    _mkdir(root, "private", 0o700)
    _write(root, "readonly-dir/file", b"in 0500\n")
    os.chmod(_path(root, "readonly-dir"), 0o500)  # after its content exists
    _finish_dirs(root)


#: Nanosecond mtimes used by make_times (name -> ns since the epoch).
TIMES = {
    "nsec": 1_700_000_000_123_456_789,
    "whole-second": 1_700_000_000_000_000_000,
    "one-ns": 1_700_000_000_000_000_001,
    "before-1970": -1_234_567_890_000_000_000,   # 1930-11-18
    "before-1970-nsec": -86_400_123_456_789,     # 1969-12-30, fraction < 0
    "epoch": 0,
    "y2038+": 2_200_000_000_999_999_999,         # past the int32 limit
    "year-2100": 4_102_444_800_987_654_321,      # 2100-01-01
}


def make_times(root: Path) -> None:
    """Nanosecond, pre-1970, epoch and far-future mtimes on files and dirs."""
    _mkdir(root, ".")
    for name, ns in TIMES.items():
        _write(root, name, name.encode(), mtime_ns=ns)
    _symlink(root, "link", "nsec", mtime_ns=1_600_000_000_111_111_111)
    _write(root, "old-dir/file", b"x", mtime_ns=TIMES["nsec"])
    _write(root, "new-dir/file", b"y", mtime_ns=TIMES["nsec"])
    _finish_dirs(root, {
        ".": 1_650_000_000_000_000_042,
        "old-dir": -1_000_000_000_000_000_001,
        "new-dir": TIMES["year-2100"],
    })


def make_hardlinks(root: Path) -> None:
    """Hard-link groups of 2 and 3 spread over directories, plus loners."""
    _mkdir(root, ".")
    for name in ("d1", "d2", "d3/deeper"):
        _mkdir(root, name)
    _write(root, "d1/pair-a", b"pair\n")
    os.link(_path(root, "d1/pair-a"), _path(root, "d2/pair-b"))
    _write(root, "d1/trio-a", _data(4, 5000), mode=0o600)
    os.link(_path(root, "d1/trio-a"), _path(root, "d2/trio-b"))
    os.link(_path(root, "d1/trio-a"), _path(root, "d3/deeper/trio-c"))
    _write(root, "d1/empty-a", b"")            # empty files hard-linked too
    os.link(_path(root, "d1/empty-a"), _path(root, "empty-b"))
    _write(root, "single", b"pair\n")          # same content, not linked
    _write(root, "d2/loner", b"loner\n")
    _finish_dirs(root)


def make_specials(root: Path) -> None:
    """A fifo always; char device 1,3 and block device 7,0 when root."""
    _mkdir(root, ".")
    _write(root, "regular", b"regular\n")
    fifo = _path(root, "fifo")
    os.mkfifo(fifo, 0o644)
    os.utime(fifo, ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS))
    if is_root():
        for name, kind, dev in (("null-chr", stat.S_IFCHR, os.makedev(1, 3)),
                                ("loop-blk", stat.S_IFBLK, os.makedev(7, 0))):
            path = _path(root, "dev/" + name)
            _makedirs(os.path.dirname(path))
            os.mknod(path, kind | 0o640, dev)
            os.utime(path, ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS))
    _finish_dirs(root)


def _existing_user() -> tuple[int, int]:
    """uid and gid of a named system account other than root (nobody, daemon...)."""
    for name in ("daemon", "bin", "nobody"):
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        for group in (name, "nogroup", "daemon"):
            try:
                return uid, grp.getgrnam(group).gr_gid
            except KeyError:
                continue
    return 65534, 65534


def make_owners(root: Path) -> None:
    """Files owned by unnamed ids (1234, 65534) and by a named user; root only.

    Without root the tree only holds files owned by the caller.
    """
    _mkdir(root, ".")
    named_uid, named_gid = _existing_user()
    owners = {
        "numeric-1234": (1234, 1234),
        "nobody-65534": (65534, 65534),
        "mixed": (1234, 65534),
        "named": (named_uid, named_gid),
        "root-owned": (0, 0),
    }
    for name in owners:
        _write(root, name, name.encode())
    _mkdir(root, "dir-1234")
    _write(root, "dir-1234/file", b"f")
    _symlink(root, "link-1234", "numeric-1234")
    if is_root():
        for name, (uid, gid) in owners.items():
            os.chown(_path(root, name), uid, gid)
        os.chown(_path(root, "dir-1234"), 1234, 1234)
        os.chown(_path(root, "dir-1234/file"), named_uid, 1234)
        os.lchown(_path(root, "link-1234"), 1234, named_gid)
    _finish_dirs(root)


def make_empty(root: Path) -> None:
    """Only directories, no files."""
    _mkdir(root, ".")
    for name in ("a/b/c", "a/d", "e"):
        _mkdir(root, name)
    _finish_dirs(root)


#: Every builder by name, for parametrized tests.
TREES: dict[str, Callable[[Path], None]] = {
    "basic": make_basic,
    "awkward_names": make_awkward_names,
    "deep": make_deep,
    "links": make_links,
    "modes": make_modes,
    "times": make_times,
    "hardlinks": make_hardlinks,
    "specials": make_specials,
    "owners": make_owners,
    "empty": make_empty,
}


# --------------------------------------------------------------------------
# Snapshot
# --------------------------------------------------------------------------

_TYPES = {
    stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo", stat.S_IFCHR: "chr", stat.S_IFBLK: "blk",
    stat.S_IFSOCK: "socket",
}


def _sha256(path: bytes) -> str:
    """Hex SHA-256 of a file's content, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _describe(path: bytes) -> dict[str, Any]:
    """One snapshot entry from os.lstat (never follows symlinks)."""
    st = os.lstat(path)
    kind = _TYPES.get(stat.S_IFMT(st.st_mode), "unknown")
    entry: dict[str, Any] = {
        "type": kind,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
        # Only used to group hard links; the numbers themselves never compare.
        "inode": f"{st.st_dev}:{st.st_ino}",
    }
    if kind == "file":
        entry["size"] = st.st_size
        entry["sha256"] = _sha256(path)
    elif kind == "symlink":
        entry["target"] = os.fsdecode(os.readlink(path))
    elif kind in ("chr", "blk"):
        entry["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
    return entry


def snapshot(root: str | os.PathLike) -> Snapshot:
    """Describe the tree under *root* (root included, as ``"."``).

    Walks with os.lstat on bytes paths, so any name works and symlinks are
    never followed. The result holds only str/int/list values and survives
    a JSON round trip.
    """
    top = os.fsencode(root)
    snap: Snapshot = {".": _describe(top)}
    if snap["."]["type"] != "dir":
        raise NotADirectoryError(f"{os.fsdecode(top)!r} is not a directory")
    pending = [b""]
    while pending:
        rel_dir = pending.pop()
        for name in sorted(os.listdir(os.path.join(top, rel_dir) if rel_dir else top)):
            rel = os.path.join(rel_dir, name) if rel_dir else name
            entry = _describe(os.path.join(top, rel))
            snap[os.fsdecode(rel)] = entry
            if entry["type"] == "dir":
                pending.append(rel)
    return snap


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def _as_snapshot(tree: TreeLike) -> Snapshot:
    """Accept either a path or an existing snapshot."""
    return tree if isinstance(tree, dict) else snapshot(tree)


def _sort_key(name: str) -> bytes:
    """Order names by their raw bytes, like the file system stores them."""
    return os.fsencode(name)


def _entry_diffs(ea: dict[str, Any], eb: dict[str, Any], *, owners: bool,
                 times: bool, dir_times: bool, symlink_times: bool) -> list[str]:
    """Differences between two entries of the same type, as short phrases."""
    kind = ea["type"]
    out = []
    if kind == "file" and ea["size"] != eb["size"]:
        out.append(f"size {ea['size']} != {eb['size']}")
    elif kind == "file" and ea["sha256"] != eb["sha256"]:
        out.append("content differs")
    if ea["mode"] != eb["mode"]:
        out.append(f"mode {ea['mode']:#o} != {eb['mode']:#o}")
    check_time = {"dir": dir_times, "symlink": symlink_times}.get(kind, times)
    if times and check_time and ea["mtime_ns"] != eb["mtime_ns"]:
        out.append(f"mtime_ns {ea['mtime_ns']} != {eb['mtime_ns']}")
    if owners:
        for key in ("uid", "gid"):
            if ea[key] != eb[key]:
                out.append(f"{key} {ea[key]} != {eb[key]}")
    if kind == "symlink" and ea["target"] != eb["target"]:
        out.append(f"symlink target {ea['target']!r} != {eb['target']!r}")
    if kind in ("chr", "blk") and ea["rdev"] != eb["rdev"]:
        out.append(f"rdev {tuple(ea['rdev'])} != {tuple(eb['rdev'])}")
    return out


def _link_groups(snap: Snapshot, names: set[str]) -> dict[str, frozenset[str]]:
    """For each name in *names*: the set of names sharing its inode."""
    by_inode: dict[str, set[str]] = {}
    for name in names:
        by_inode.setdefault(snap[name]["inode"], set()).add(name)
    return {name: frozenset(group)
            for group in by_inode.values() for name in group}


def _hardlink_diffs(sa: Snapshot, sb: Snapshot, common: set[str]) -> list[str]:
    """Compare the partition of common names into inode groups, once per group.

    Only non-directories of the same type on both sides take part: a missing
    or retyped entry is reported elsewhere, and links to outside the tree
    (nlink larger than the group) do not matter.
    """
    names = {n for n in common
             if sa[n]["type"] == sb[n]["type"] and sa[n]["type"] != "dir"}
    ga, gb = _link_groups(sa, names), _link_groups(sb, names)
    out, seen = [], set()
    for name in sorted(ga, key=_sort_key):
        if ga[name] != gb[name] and (ga[name], gb[name]) not in seen:
            seen.add((ga[name], gb[name]))
            fmt = lambda g: sorted(g, key=_sort_key)  # noqa: E731
            out.append(f"{name!r}: hard-linked with {fmt(ga[name] - {name})} "
                       f"!= {fmt(gb[name] - {name})}")
    return out


def compare_trees(a: TreeLike, b: TreeLike, *, owners: bool = True,
                  hardlinks: bool = True, times: bool = True,
                  dir_times: bool = True, symlink_times: bool = False) -> list[str]:
    """Return human-readable differences between trees *a* and *b* (``[]`` = same).

    *a* and *b* are directories or snapshots from :func:`snapshot`. Compared:
    the set of names, file type, size and content, permission bits (setuid,
    setgid and sticky included), mtime to the nanosecond (*times*; directories
    also need *dir_times*, symlinks need *symlink_times*), uid/gid (*owners*),
    symlink targets, device numbers, and (*hardlinks*) whether the same names
    are hard-linked together on both sides. The root directory itself is
    compared as ``"."``.
    """
    sa, sb = _as_snapshot(a), _as_snapshot(b)
    out = []
    for name in sorted(sa.keys() - sb.keys(), key=_sort_key):
        out.append(f"{name!r}: only in a ({sa[name]['type']})")
    for name in sorted(sb.keys() - sa.keys(), key=_sort_key):
        out.append(f"{name!r}: only in b ({sb[name]['type']})")
    common = sa.keys() & sb.keys()
    for name in sorted(common, key=_sort_key):
        ea, eb = sa[name], sb[name]
        if ea["type"] != eb["type"]:
            out.append(f"{name!r}: type {ea['type']} != {eb['type']}")
            continue
        out.extend(f"{name!r}: {d}" for d in _entry_diffs(
            ea, eb, owners=owners, times=times, dir_times=dir_times,
            symlink_times=symlink_times))
    if hardlinks:
        out.extend(_hardlink_diffs(sa, sb, common))
    return out
