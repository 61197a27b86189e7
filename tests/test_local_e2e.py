"""Local end-to-end transfers: pysync side by side with the system rsync.

Every scenario runs ``pysync ARGS`` and ``/usr/bin/rsync ARGS`` on the same
input, each in its own work directory (``p/`` and ``r/`` under the test's
tmp dir) with the same *relative* destination name, so that even the text
they print (``created directory dst``, file names) can be compared line by
line.  The expectations are rsync's results, not hard-coded ones: the two
destination trees must compare equal (:func:`helpers.trees.compare_trees`:
names, types, content, modes, nanosecond mtimes, owners, hard links), and so
must the exit codes.  Where a scenario needs an existing destination, that
destination is made by ``rsync -aH`` for both sides, so only the run under
test differs.

Sources are passed as absolute paths; destinations are relative to the work
directory.  The suite runs as root (owners, devices); the builders degrade
when not root and the comparisons still hold.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.trees import (
    DEFAULT_MTIME_NS, TREES, compare_trees, is_root, make_basic, make_hardlinks,
    make_links, make_owners, snapshot,
)

RSYNC = "/usr/bin/rsync" if os.path.exists("/usr/bin/rsync") else shutil.which("rsync")
pytestmark = pytest.mark.skipif(RSYNC is None, reason="system rsync not installed")

#: The console script next to the interpreter running the tests (no pyenv
#: shim in between); fall back to PATH, then to ``python -m pysync``.
_SCRIPT = Path(sys.executable).with_name("pysync")
if _SCRIPT.exists():
    PYSYNC = [str(_SCRIPT)]
elif shutil.which("pysync"):
    PYSYNC = [shutil.which("pysync")]
else:
    PYSYNC = [sys.executable, "-m", "pysync"]

TIMEOUT = 120
#: An mtime clearly different from every builder's default (one hour later).
LATER_NS = DEFAULT_MTIME_NS + 3600 * 10**9


# --------------------------------------------------------------------------
# Running the two tools
# --------------------------------------------------------------------------

@dataclass
class Run:
    tool: str
    argv: list
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (f"$ {' '.join(map(str, self.argv))}\nexit {self.code}\n"
                f"--- stdout\n{self.out}--- stderr\n{self.err}")


def run_tool(tool: str, args: Sequence, cwd: Path) -> Run:
    """Run pysync or rsync with *args* in *cwd*; output decoded with surrogateescape."""
    exe = PYSYNC if tool == "pysync" else [RSYNC]
    argv = exe + [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=TIMEOUT)
    return Run(tool, argv, proc.returncode,
               proc.stdout.decode("utf-8", "surrogateescape"),
               proc.stderr.decode("utf-8", "surrogateescape"))


class Pair:
    """A source tree and two work dirs, ``p`` (pysync) and ``r`` (rsync)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.src = tmp_path / "src"
        self.p = tmp_path / "p"
        self.r = tmp_path / "r"
        self.p.mkdir()
        self.r.mkdir()

    def run(self, args: Sequence, *, srcs: Sequence | None = None,
            dest: str = "dst/") -> tuple[Run, Run]:
        """``TOOL args SRC/ dest`` with each tool in its own work dir."""
        if srcs is None:
            srcs = [f"{self.src}/"]
        rp = run_tool("pysync", [*args, *srcs, dest], self.p)
        rr = run_tool("rsync", [*args, *srcs, dest], self.r)
        return rp, rr

    def seed(self, args: Sequence = ("-aH",), dest: str = "dst") -> None:
        """Give both work dirs the same existing destination (made by rsync)."""
        for work in (self.p, self.r):
            rr = run_tool("rsync", [*args, f"{self.src}/", dest + "/"], work)
            assert rr.code == 0, str(rr)

    def for_both(self, fn: Callable[[Path], None], dest: str = "dst") -> None:
        """Apply the same change to both destinations."""
        fn(self.p / dest)
        fn(self.r / dest)


def assert_same_code(rp: Run, rr: Run, expected: int | None = 0) -> None:
    assert rp.code == rr.code, f"exit codes differ\n{rp}\n{rr}"
    if expected is not None:
        assert rp.code == expected, f"unexpected exit code\n{rp}\n{rr}"


def assert_same_trees(a, b, **kw) -> None:
    kw.setdefault("symlink_times", True)   # rsync -a sets symlink mtimes on Linux
    diffs = compare_trees(a, b, **kw)
    assert diffs == [], f"{a} vs {b}:\n" + "\n".join(diffs)


def children(path: Path):
    """Snapshot of *path* without its root entry (for dirs a transfer only fills)."""
    snap = snapshot(path)
    del snap["."]
    return snap


def assert_same_children(a: Path, b: Path, **kw) -> None:
    kw.setdefault("symlink_times", True)
    diffs = compare_trees(children(a), children(b), **kw)
    assert diffs == [], f"{a} vs {b} (root entry ignored):\n" + "\n".join(diffs)


def is_summary(line: str) -> bool:
    """rsync's two closing lines, whose numbers are allowed to differ."""
    return (line.startswith("sent ") and " bytes  received " in line) \
        or line.startswith("total size is ")


def output_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line for line in lines if not is_summary(line)]


#: Lines that are not about one file (for the dry-run comparison).
_NOT_FILE = re.compile(r"^(|building file list .*|sending incremental file list|"
                       r"created directory .*|.*\(DRY RUN\))$")


def file_lines(text: str) -> set[str]:
    return {line for line in output_lines(text) if not _NOT_FILE.match(line)}


def assert_same_lines(rp: Run, rr: Run, what: str) -> None:
    lp, lr = output_lines(rp.out), output_lines(rr.out)
    if lp == lr:
        return
    only_p = Counter(lp) - Counter(lr)
    only_r = Counter(lr) - Counter(lp)
    msg = [f"{what}: pysync and rsync output differ (summary lines ignored)"]
    msg += [f"  only pysync: {line!r}" for line in only_p.elements()]
    msg += [f"  only rsync:  {line!r}" for line in only_r.elements()]
    common_p = [line for line in lp if line in set(lr)]
    common_r = [line for line in lr if line in set(lp)]
    if common_p != common_r:
        msg.append("  the lines both print come in a different order:")
        msg += [f"  pysync: {line!r}" for line in common_p]
        msg += [f"  rsync:  {line!r}" for line in common_r]
    msg += [str(rp), str(rr)]
    raise AssertionError("\n".join(msg))


def stat_value(text: str, label: str) -> int:
    """A number from ``--stats`` output, e.g. ``Literal data: 1,234 bytes``."""
    m = re.search(rf"^{re.escape(label)}: ([\d,]+)", text, re.M)
    assert m, f"no {label!r} line in --stats output:\n{text}"
    return int(m.group(1).replace(",", ""))


def write(path: Path, data: bytes, *, mode: int = 0o644, mtime_ns: int = DEFAULT_MTIME_NS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def settle(root: Path) -> None:
    """Give every recently touched directory and symlink under *root* the time LATER_NS.

    A scenario must not leave source directories with "now" mtimes: rsync
    3.2.7 skips setting a directory's time when the destination directory
    was created within the same second (it compares whole seconds only for
    directories and symlinks), so its result would depend on timing.
    """
    recent = (time.time() - 600) * 10**9
    for dirpath, dirs, files in os.walk(os.fsencode(root), topdown=False):
        for name in dirs + files:      # symlinks to dirs are listed in dirs
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and os.lstat(path).st_mtime_ns > recent:
                os.utime(path, ns=(LATER_NS, LATER_NS), follow_symlinks=False)
        if os.lstat(dirpath).st_mtime_ns > recent:
            os.utime(dirpath, ns=(LATER_NS, LATER_NS))


def flip_bytes(path: Path, offsets: Sequence[int]) -> None:
    """Change single bytes in place, keeping the size (and then the mtime)."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        for off in offsets:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x5A]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# --------------------------------------------------------------------------
# Every tree: a fresh copy equals rsync's and the source
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TREES))
def test_tree_fresh_copy(tmp_path, name):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    rp, rr = pair.run(["-a"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    # Without -H the hard-link structure is not kept: every name is its own inode.
    assert_same_trees(pair.src, pair.p / "dst", hardlinks=(name != "hardlinks"))


@pytest.mark.parametrize("name", ["hardlinks", "basic"])
def test_tree_fresh_copy_hard_links(tmp_path, name):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    rp, rr = pair.run(["-aH"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")


@pytest.mark.parametrize("name", list(TREES))
def test_rerun_up_to_date_transfers_nothing(tmp_path, name):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    first = run_tool("pysync", ["-aH", f"{pair.src}/", "dst/"], pair.p)
    assert first.code == 0, str(first)
    before = snapshot(pair.p / "dst")
    rp = run_tool("pysync", ["-aH", "--stats", f"{pair.src}/", "dst/"], pair.p)
    assert rp.code == 0, str(rp)
    assert stat_value(rp.out, "Number of regular files transferred") == 0, str(rp)
    assert stat_value(rp.out, "Literal data") == 0, str(rp)
    assert_same_trees(before, pair.p / "dst")
    # rsync on the same (pysync-made) destination agrees that nothing is to do.
    rr = run_tool("rsync", ["-aH", "--stats", f"{pair.src}/", f"{pair.p}/dst/"], pair.r)
    assert rr.code == 0, str(rr)
    assert stat_value(rr.out, "Number of regular files transferred") == 0, str(rr)


# --------------------------------------------------------------------------
# Source and destination naming rules
# --------------------------------------------------------------------------

def test_source_without_trailing_slash(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    rp, rr = pair.run(["-a"], srcs=[str(pair.src)], dest="dst/")
    assert_same_code(rp, rr)
    assert sorted(os.listdir(pair.p / "dst")) == ["src"]
    assert_same_children(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst" / "src")


def test_source_without_slash_into_existing_dest(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    (pair.p / "dst").mkdir()
    (pair.r / "dst").mkdir()
    write(pair.p / "dst" / "keep", b"keep")
    write(pair.r / "dst" / "keep", b"keep")
    rp, rr = pair.run(["-a"], srcs=[str(pair.src)], dest="dst")
    assert_same_code(rp, rr)
    assert sorted(os.listdir(pair.p / "dst")) == ["keep", "src"]
    assert_same_children(pair.p / "dst", pair.r / "dst")


@pytest.mark.parametrize("dest,existing", [
    ("newname", False),        # file onto a new name
    ("out/newname", True),     # new name inside an existing dir
    ("out/", True),            # into an existing dir
    ("out", True),             # into an existing dir, no slash
    ("newdir/", False),        # trailing slash: rsync makes the dir
])
def test_single_file_source(tmp_path, dest, existing):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    if existing:
        (pair.p / "out").mkdir()
        (pair.r / "out").mkdir()
    rp, rr = pair.run(["-a"], srcs=[str(pair.src / "text.txt")], dest=dest)
    assert_same_code(rp, rr)
    # Directories here are containers made or touched now: their times differ.
    assert_same_children(pair.p, pair.r, dir_times=False)


def test_single_file_onto_existing_file(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    for work in (pair.p, pair.r):
        write(work / "target", b"old content", mtime_ns=LATER_NS)
    rp, rr = pair.run(["-a"], srcs=[str(pair.src / "text.txt")], dest="target")
    assert_same_code(rp, rr)
    assert_same_children(pair.p, pair.r)
    assert (pair.p / "target").read_bytes() == (pair.src / "text.txt").read_bytes()


def test_multiple_sources(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    srcs = [str(pair.src / "text.txt"), str(pair.src / "dir"),
            str(pair.src / "one"), f"{pair.src / 'emptydir'}/"]
    rp, rr = pair.run(["-a"], srcs=srcs, dest="dst/")
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert sorted(os.listdir(pair.p / "dst")) == ["dir", "one", "text.txt"]


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------

def test_numeric_ids(tmp_path):
    pair = Pair(tmp_path)
    make_owners(pair.src)
    rp, rr = pair.run(["-a", "--numeric-ids"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")


def test_whole_file(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    mutate_some(pair.src)
    rp, rr = pair.run(["-aW", "--stats"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")
    # Whole-file: nothing matched; every byte that crossed the socket is
    # literal, as in rsync -- files the child copied in the kernel (local
    # copy offload, engine/offload.py) did not cross it.
    for label in ("Number of files", "Number of regular files transferred",
                  "Total file size", "Total transferred file size", "Matched data"):
        assert stat_value(rp.out, label) == stat_value(rr.out, label), \
            f"--stats {label!r} differs\n{rp}\n{rr}"
    assert stat_value(rp.out, "Literal data") <= stat_value(rr.out, "Literal data")


@pytest.mark.parametrize("name", ["basic", "links", "deep", "awkward_names"])
def test_dry_run_fresh(tmp_path, name):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    src_before = snapshot(pair.src)
    rp, rr = pair.run(["-an", "-v"])
    assert_same_code(rp, rr)
    assert not (pair.p / "dst").exists(), "pysync -n created the destination"
    assert_same_trees(src_before, pair.src)
    assert file_lines(rp.out) == file_lines(rr.out), \
        (f"-n -v file lines differ\n  only pysync: {sorted(file_lines(rp.out) - file_lines(rr.out))}"
         f"\n  only rsync: {sorted(file_lines(rr.out) - file_lines(rp.out))}\n{rp}\n{rr}")


@pytest.mark.parametrize("extra", [[], ["--delete"]])
def test_dry_run_update(tmp_path, extra):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    mutate_some(pair.src)
    pair.for_both(add_extraneous)
    before = snapshot(pair.p / "dst")
    rp, rr = pair.run(["-an", "-v", *extra])
    assert_same_code(rp, rr)
    assert_same_trees(before, pair.p / "dst")
    assert file_lines(rp.out) == file_lines(rr.out), \
        (f"-n -v file lines differ\n  only pysync: {sorted(file_lines(rp.out) - file_lines(rr.out))}"
         f"\n  only rsync: {sorted(file_lines(rr.out) - file_lines(rp.out))}\n{rp}\n{rr}")
    assert file_lines(rp.out), "dry run of a changed tree listed nothing"


# --------------------------------------------------------------------------
# Updates
# --------------------------------------------------------------------------

def mutate_some(src: Path) -> None:
    """Change content, size, mode, mtime and owner of some files; add some."""
    text = src / "text.txt"
    write(text, text.read_bytes().upper(), mtime_ns=LATER_NS)          # same size
    write(src / "dir" / "small.bin", b"shorter now", mtime_ns=LATER_NS)  # new size
    os.chmod(src / "one", 0o600)                                        # mode only
    os.utime(src / "dir" / "medium.bin", ns=(LATER_NS, LATER_NS))        # mtime only
    if is_root():
        os.chown(src / "empty", 1234, 4321)                             # owner only
    flip_bytes(src / "dir" / "sub" / "large.bin", [10, 500_000])
    os.utime(src / "dir" / "sub" / "large.bin", ns=(LATER_NS, LATER_NS))
    write(src / "added", b"new file\n")
    write(src / "newdir" / "f", b"in a new dir\n")
    os.utime(src / "newdir", ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS))
    settle(src)


def add_extraneous(dst: Path) -> None:
    """Files and dirs in the destination that the source does not have."""
    write(dst / "extra.txt", b"extra")
    write(dst / "extradir" / "sub" / "f", b"deep extra")
    write(dst / "dir" / "extra-in-dir", b"x")
    (dst / "emptyextra").mkdir()
    os.symlink("text.txt", dst / "extra-link")
    settle(dst)


def test_update_content_mode_mtime_owner(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    mutate_some(pair.src)
    rp, rr = pair.run(["-a"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")


def _retype(src: Path) -> None:
    """file -> dir, dir -> file, symlink -> file, file -> symlink, dir -> symlink."""
    os.unlink(src / "text.txt")
    write(src / "text.txt" / "now-a-dir", b"inside\n")
    shutil.rmtree(src / "dir")
    write(src / "dir", b"dir is a file now\n")
    os.unlink(src / "rel")
    write(src / "rel", b"was a symlink\n")
    os.unlink(src / "one")
    os.symlink("empty", src / "one")
    os.rmdir(src / "emptydir")
    os.symlink("text.txt", src / "emptydir")
    settle(src)


def _retype_tree(root: Path) -> None:
    make_basic(root)
    os.symlink("text.txt", root / "rel")
    os.utime(root / "rel", ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS), follow_symlinks=False)
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.utime(dirpath, ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS))


@pytest.mark.parametrize("extra", [[], ["--force"], ["--delete"]])
def test_type_changes_between_runs(tmp_path, extra):
    pair = Pair(tmp_path)
    _retype_tree(pair.src)
    pair.seed()
    _retype(pair.src)
    rp, rr = pair.run(["-a", *extra])
    assert_same_code(rp, rr, expected=None)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    if rr.code == 0:
        assert_same_trees(pair.src, pair.p / "dst")


def test_deep_tree(tmp_path):
    pair = Pair(tmp_path)
    depth = 150
    chain = pair.src.joinpath(*[f"level{i:03d}" for i in range(depth)])
    chain.mkdir(parents=True)
    write(chain / "bottom", b"bottom\n")
    write(pair.src.joinpath(*[f"level{i:03d}" for i in range(depth // 2)]) / "middle", b"m")
    settle(pair.src)
    rp, rr = pair.run(["-a"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")


def test_zero_byte_files(tmp_path):
    pair = Pair(tmp_path)
    for i in range(20):
        write(pair.src / f"z{i:02d}", b"", mode=0o600 + (i % 2) * 0o044)
    write(pair.src / "sub" / "deeper" / "zero", b"")
    write(pair.src / "becomes-empty", b"not empty yet\n")
    write(pair.src / "becomes-full", b"")
    settle(pair.src)
    rp, rr = pair.run(["-a"], dest="fresh/")
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "fresh", pair.r / "fresh")
    assert_same_trees(pair.src, pair.p / "fresh")
    pair.seed()
    write(pair.src / "becomes-empty", b"", mtime_ns=LATER_NS)
    write(pair.src / "becomes-full", b"now full\n", mtime_ns=LATER_NS)
    write(pair.src / "z00", b"", mtime_ns=LATER_NS)   # empty, only the time changes
    settle(pair.src)
    rp, rr = pair.run(["-a"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")


@pytest.mark.parametrize("change", ["overwrite", "insert"])
def test_delta_big_file(tmp_path, change):
    size = 5 << 20
    pair = Pair(tmp_path)
    big = pair.src / "big"
    pair.src.mkdir()
    write(big, os.urandom(size))
    settle(pair.src)
    pair.seed()
    if change == "overwrite":
        flip_bytes(big, [0, 1234, size // 2, size // 2 + 1, size - 1])
    else:
        data = big.read_bytes()
        big.write_bytes(data[:size // 3] + b"INSERTED" + data[size // 3:])
    os.utime(big, ns=(LATER_NS, LATER_NS))
    rp, rr = pair.run(["-a", "--no-W", "--stats"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")
    literal = stat_value(rp.out, "Literal data")
    matched = stat_value(rp.out, "Matched data")
    rsync_literal = stat_value(rr.out, "Literal data")
    assert literal < size // 100, \
        f"delta sent {literal} literal bytes of {size} (rsync: {rsync_literal})\n{rp}"
    assert literal + matched == big.stat().st_size, str(rp)


def test_checksum_detects_same_size_same_mtime_change(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    flip_bytes(pair.src / "text.txt", [3])         # same size, same mtime
    # Plain -a trusts size+mtime: rsync leaves the stale copy; pysync must too.
    rp, rr = pair.run(["-a"])
    assert_same_code(rp, rr)
    assert any("content differs" in d for d in compare_trees(pair.src, pair.r / "dst")), \
        "scenario broken: rsync -a was expected to miss the change"
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    # -c compares checksums and fixes it.
    rp, rr = pair.run(["-ac", "--stats"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")
    assert stat_value(rp.out, "Number of regular files transferred") == \
        stat_value(rr.out, "Number of regular files transferred") == 1, f"{rp}\n{rr}"


def test_delete(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    pair.for_both(add_extraneous)
    rp, rr = pair.run(["-a", "--delete", "-v"])
    assert_same_code(rp, rr)
    assert_same_trees(pair.p / "dst", pair.r / "dst")
    assert_same_trees(pair.src, pair.p / "dst")
    # The same deletions are reported (order not compared here).
    dp = sorted(line for line in output_lines(rp.out) if line.startswith("deleting "))
    dr = sorted(line for line in output_lines(rr.out) if line.startswith("deleting "))
    assert dp == dr, f"deleting lines differ\n{rp}\n{rr}"


# --------------------------------------------------------------------------
# Output: -v and -i compared with rsync's
# --------------------------------------------------------------------------

#: Trees whose listing exercises something different: plain files and dirs,
#: name escaping, symlink arrows, devices/fifos, hard-link arrows (with -H).
#: (Every tree's content is already checked by test_tree_fresh_copy.)
OUTPUT_TREES = ["basic", "awkward_names", "links", "specials"]
VERBOSE_CASES = [(name, ["-av"]) for name in OUTPUT_TREES] + [("hardlinks", ["-avH"])]


@pytest.mark.parametrize("name,args", VERBOSE_CASES,
                         ids=[f"{n}{'-H' if 'H' in a[0] else ''}" for n, a in VERBOSE_CASES])
def test_verbose_output_fresh(tmp_path, name, args):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    rp = run_tool("pysync", [*args, f"{pair.src}/", "dst/"], pair.p)
    rr = run_tool("rsync", [*args, "--no-inc-recursive", f"{pair.src}/", "dst/"], pair.r)
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, f"pysync {' '.join(args)} vs rsync {' '.join(args)} --no-inc-recursive")


def test_verbose_output_update(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    mutate_some(pair.src)
    pair.for_both(add_extraneous)
    rp = run_tool("pysync", ["-av", "--delete", f"{pair.src}/", "dst/"], pair.p)
    rr = run_tool("rsync", ["-av", "--delete", "--no-inc-recursive", f"{pair.src}/", "dst/"], pair.r)
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, "pysync -av --delete vs rsync -av --delete --no-inc-recursive (update)")


ITEMIZE_CASES = [(name, ["-ai"]) for name in OUTPUT_TREES] + [("hardlinks", ["-aiH"])]


@pytest.mark.parametrize("name,args", ITEMIZE_CASES,
                         ids=[f"{n}{'-H' if 'H' in a[0] else ''}" for n, a in ITEMIZE_CASES])
def test_itemize_fresh(tmp_path, name, args):
    pair = Pair(tmp_path)
    TREES[name](pair.src)
    rp, rr = pair.run(args)
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, f"{' '.join(args)} (fresh copy)")


def test_itemize_update(tmp_path):
    pair = Pair(tmp_path)
    make_basic(pair.src)
    pair.seed()
    mutate_some(pair.src)
    rp, rr = pair.run(["-ai"])
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, "-ai (update)")
    assert_same_trees(pair.p / "dst", pair.r / "dst")


def test_itemize_update_links_and_types(tmp_path):
    pair = Pair(tmp_path)
    _retype_tree(pair.src)
    make_links(pair.src / "links")
    os.utime(pair.src, ns=(DEFAULT_MTIME_NS, DEFAULT_MTIME_NS))
    pair.seed()
    _retype(pair.src)
    os.unlink(pair.src / "links" / "rel")
    os.symlink("dir/inner.txt", pair.src / "links" / "rel")       # new target
    settle(pair.src)
    rp, rr = pair.run(["-ai", "--force"])
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, "-ai --force (type changes)")
    assert_same_trees(pair.p / "dst", pair.r / "dst")


def test_itemize_up_to_date_is_silent(tmp_path):
    pair = Pair(tmp_path)
    make_hardlinks(pair.src)
    pair.seed()
    rp, rr = pair.run(["-aiH"])
    assert_same_code(rp, rr)
    assert_same_lines(rp, rr, "-aiH (nothing to do)")
