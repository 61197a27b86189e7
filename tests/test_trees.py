"""Tests for tests/helpers/trees.py: the tree builders and compare_trees.

Two kinds of evidence that the comparator can be trusted:

* sensitivity: build the same tree twice, change exactly one property in the
  second copy, and check compare_trees reports that property (and nothing
  else, which the matching "ignore" flag proves by returning ``[]``);
* no false alarms: every builder's tree copied by the system rsync with
  ``-aH --numeric-ids`` compares equal, and rsync runs that drop a property
  (no ``-H``, no ``-t``) are caught.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.trees import (  # noqa: E402
    TREES, compare_trees, is_root, make_basic, make_hardlinks, make_links,
    make_specials, make_times, snapshot,
)

RSYNC = shutil.which("rsync")
needs_rsync = pytest.mark.skipif(RSYNC is None, reason="system rsync not installed")
needs_root = pytest.mark.skipif(not is_root(), reason="needs root (chown, mknod)")

#: Wall-clock limit for one rsync run; a hang fails the test instead of the suite.
RSYNC_TIMEOUT = 120


def build_pair(tmp_path: Path, builder: Callable[[Path], None]) -> tuple[Path, Path]:
    """Build the same tree twice, as tmp_path/a and tmp_path/b."""
    a, b = tmp_path / "a", tmp_path / "b"
    builder(a)
    builder(b)
    return a, b


@contextlib.contextmanager
def same_parent_time(path: Path) -> Iterator[None]:
    """Restore the parent directory's mtime after adding/removing *path*."""
    parent = os.fsencode(path.parent)
    ns = os.lstat(parent).st_mtime_ns
    yield
    os.utime(parent, ns=(ns, ns))


def run_rsync(*args: str | os.PathLike) -> None:
    """Run the system rsync and fail the test with its stderr on error."""
    proc = subprocess.run([RSYNC, *map(str, args)], capture_output=True,
                          timeout=RSYNC_TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


# --------------------------------------------------------------------------
# Builders and snapshots
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TREES))
def test_builder_is_deterministic(tmp_path: Path, name: str) -> None:
    a, b = build_pair(tmp_path, TREES[name])
    assert compare_trees(a, b, symlink_times=True) == []


def test_snapshot_is_json_serializable(tmp_path: Path) -> None:
    TREES["awkward_names"](tmp_path / "t")
    snap = snapshot(tmp_path / "t")
    assert json.loads(json.dumps(snap)) == snap
    assert "." in snap
    assert os.fsdecode(b"bad\xff\xfeutf8") in snap


def test_snapshot_detects_later_change(tmp_path: Path) -> None:
    make_basic(tmp_path)
    before = snapshot(tmp_path)
    assert compare_trees(before, tmp_path) == []
    (tmp_path / "one").write_bytes(b"\xfe")  # also bumps the file's mtime
    diffs = compare_trees(before, tmp_path)
    assert diffs[0] == "'one': content differs"
    assert [d.split(" ", 2)[:2] for d in diffs[1:]] == [["'one':", "mtime_ns"]]


def test_trees_have_the_promised_shapes(tmp_path: Path) -> None:
    """Spot checks that the builders build what their names promise."""
    make_basic(tmp_path / "basic")
    sizes = {e["size"] for e in snapshot(tmp_path / "basic").values() if e["type"] == "file"}
    assert {0, 1, 700, 70_000, (1 << 20) + 3} <= sizes
    make_times(tmp_path / "times")
    assert os.lstat(tmp_path / "times/before-1970").st_mtime_ns < 0
    assert os.lstat(tmp_path / "times/nsec").st_mtime_ns % 10**9 == 123_456_789
    make_hardlinks(tmp_path / "hl")
    assert os.lstat(tmp_path / "hl/d1/trio-a").st_nlink == 3
    assert os.lstat(tmp_path / "hl/d1/pair-a").st_nlink == 2


# --------------------------------------------------------------------------
# Sensitivity: one property changed in b, reported, and hidden by its flag
# --------------------------------------------------------------------------

def _set_mtime(path: Path, delta_ns: int = 1) -> None:
    """Move an entry's mtime (never following symlinks) by *delta_ns*."""
    ns = os.lstat(path).st_mtime_ns + delta_ns
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def _flip_byte(path: Path) -> None:
    """Change one byte in the middle of a file, keeping size and mtime."""
    ns = os.lstat(path).st_mtime_ns
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(ns, ns))


def _chmod_xor(path: Path, bits: int) -> None:
    os.chmod(path, os.lstat(path).st_mode & 0o7777 ^ bits)


def _retarget(path: Path) -> None:
    """Point a symlink elsewhere, keeping its mtime and the dir's mtime."""
    with same_parent_time(path):
        target = os.readlink(path)
        os.unlink(path)
        os.symlink(target + "x", path)
    os.utime(path, ns=(os.lstat(path).st_mtime_ns,) * 2, follow_symlinks=False)


def _break_link(path: Path) -> None:
    """Replace a hard link with an identical independent copy."""
    st = os.lstat(path)
    data = path.read_bytes()
    with same_parent_time(path):
        os.unlink(path)
        path.write_bytes(data)
    os.chmod(path, st.st_mode & 0o7777)
    os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _join_links(path: Path, other: Path) -> None:
    """Make *path* a hard link of *other* (same content, mode and time)."""
    with same_parent_time(path):
        os.unlink(path)
        os.link(other, path)


def _add_file(path: Path) -> None:
    with same_parent_time(path):
        path.write_bytes(b"new")


def _remove(path: Path) -> None:
    with same_parent_time(path):
        os.unlink(path)


def _file_to_dir(path: Path) -> None:
    with same_parent_time(path):
        os.unlink(path)
        os.mkdir(path, 0o644)
    os.utime(path, ns=(os.lstat(path.parent).st_mtime_ns,) * 2)


def _write_tail(path: Path) -> None:
    """Append a byte (size changes) and keep the mtime."""
    ns = os.lstat(path).st_mtime_ns
    with open(path, "ab") as f:
        f.write(b"!")
    os.utime(path, ns=(ns, ns))


# (id, builder, mutation of tree b, expected message fragment, flag hiding it)
# A flag of None means no flag may hide it: the difference is structural.
MUTATIONS = [
    ("one-byte", make_basic, lambda b: _flip_byte(b / "dir/medium.bin"),
     "'dir/medium.bin': content differs", None),
    ("size", make_basic, lambda b: _write_tail(b / "one"), "'one': size 1 != 2", None),
    ("mode-bit", make_basic, lambda b: _chmod_xor(b / "text.txt", 0o020),
     "'text.txt': mode 0o644 != 0o664", None),
    ("setuid-bit", make_basic, lambda b: _chmod_xor(b / "dir/small.bin", 0o4000),
     "mode 0o644 != 0o4644", None),
    ("sticky-bit", make_basic, lambda b: _chmod_xor(b / "emptydir", 0o1000),
     "'emptydir': mode 0o755 != 0o1755", None),
    ("root-mode", make_basic, lambda b: _chmod_xor(b, 0o002), "'.': mode", None),
    ("mtime-1ns", make_basic, lambda b: _set_mtime(b / "dir/sub/large.bin"),
     "'dir/sub/large.bin': mtime_ns", "times"),
    ("dir-mtime-1ns", make_basic, lambda b: _set_mtime(b / "dir"),
     "'dir': mtime_ns", "dir_times"),
    ("root-mtime-1ns", make_basic, lambda b: _set_mtime(b, -1), "'.': mtime_ns", "dir_times"),
    ("negative-mtime-1ns", make_times, lambda b: _set_mtime(b / "before-1970-nsec"),
     "'before-1970-nsec': mtime_ns -86400123456789 != -86400123456788", "times"),
    ("symlink-mtime", make_links, lambda b: _set_mtime(b / "rel"),
     "'rel': mtime_ns", "symlink_times"),
    ("symlink-target", make_links, lambda b: _retarget(b / "dangling"),
     "'dangling': symlink target 'no-such-file' != 'no-such-filex'", None),
    ("break-hardlink", make_hardlinks, lambda b: _break_link(b / "d2/trio-b"),
     "'d1/trio-a': hard-linked with ['d2/trio-b', 'd3/deeper/trio-c'] "
     "!= ['d3/deeper/trio-c']", "hardlinks"),
    ("join-hardlink", make_hardlinks, lambda b: _join_links(b / "single", b / "d1/pair-a"),
     "'d1/pair-a': hard-linked with ['d2/pair-b'] != ['d2/pair-b', 'single']", "hardlinks"),
    ("add-file", make_basic, lambda b: _add_file(b / "dir/extra"),
     "'dir/extra': only in b (file)", None),
    ("remove-file", make_basic, lambda b: _remove(b / "dir/sub/large.bin"),
     "'dir/sub/large.bin': only in a (file)", None),
    ("odd-name-removed", TREES["awkward_names"], lambda b: _remove(b / "new\nline"),
     "'new\\nline': only in a", None),
    ("file-to-dir", make_basic, lambda b: _file_to_dir(b / "empty"),
     "'empty': type file != dir", None),
]


@pytest.mark.parametrize("builder,mutate,expected,flag",
                         [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_difference_is_reported(tmp_path: Path, builder, mutate, expected, flag) -> None:
    a, b = build_pair(tmp_path, builder)
    flags = {"symlink_times": True} if flag == "symlink_times" else {}
    assert compare_trees(a, b, **flags) == []
    mutate(b)
    diffs = compare_trees(a, b, **flags)
    assert diffs, "mutation went unnoticed"
    assert any(expected in d for d in diffs), diffs
    if flag == "symlink_times":
        assert compare_trees(a, b) == []  # off by default
    elif flag is not None:
        assert compare_trees(a, b, **{flag: False}) == []


@needs_root
@pytest.mark.parametrize("uid,gid,expected", [
    (4321, -1, "uid 0 != 4321"), (-1, 4321, "gid 0 != 4321")])
def test_owner_difference(tmp_path: Path, uid: int, gid: int, expected: str) -> None:
    a, b = build_pair(tmp_path, make_links)
    os.lchown(b / "link with spaces", uid, gid)
    assert compare_trees(a, b) == [f"'link with spaces': {expected}"]
    assert compare_trees(a, b, owners=False) == []


@needs_root
def test_rdev_difference(tmp_path: Path) -> None:
    a, b = build_pair(tmp_path, make_specials)
    dev = b / "dev/null-chr"
    st = os.lstat(dev)
    with same_parent_time(dev):
        os.unlink(dev)
        os.mknod(dev, st.st_mode, os.makedev(1, 5))
    os.utime(dev, ns=(st.st_mtime_ns, st.st_mtime_ns))
    assert compare_trees(a, b) == ["'dev/null-chr': rdev (1, 3) != (1, 5)"]


# --------------------------------------------------------------------------
# Against the system rsync
# --------------------------------------------------------------------------

@needs_rsync
@pytest.mark.parametrize("name", sorted(TREES))
def test_rsync_copy_compares_equal(tmp_path: Path, name: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    TREES[name](src)
    before = snapshot(src)
    run_rsync("-aH", "--numeric-ids", f"{src}/", f"{dst}/")
    assert compare_trees(src, dst, owners=is_root()) == []
    assert compare_trees(before, src) == []  # the source was left alone


@needs_rsync
def test_rsync_without_H_is_caught(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_hardlinks(src)
    run_rsync("-a", "--numeric-ids", f"{src}/", f"{dst}/")
    diffs = compare_trees(src, dst, owners=is_root())
    assert diffs and all("hard-linked with" in d for d in diffs), diffs
    assert compare_trees(src, dst, owners=is_root(), hardlinks=False) == []


@needs_rsync
def test_rsync_without_times_is_caught(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_times(src)
    run_rsync("-rlp", f"{src}/", f"{dst}/")
    diffs = compare_trees(src, dst, owners=False)
    assert any("'before-1970': mtime_ns" in d for d in diffs), diffs
    assert compare_trees(src, dst, owners=False, times=False) == []
