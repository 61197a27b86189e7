"""--delay-updates (issue #7), run by pysync and by stock rsync on the same
trees in every role: finished files wait in the partial dir (.~tmp~ or
--partial-dir) and are renamed into place at the end; the destination
tree, the -i / -v output and the exit code must be the same, no .~tmp~ is
left behind, and a run that is interrupted leaves the old files."""

import os
import random
import signal
import time
from pathlib import Path

import pytest

from helpers.roles import ROLES, fix_dirs, lines, popen, put, run
from helpers.trees import compare_trees

T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


def make_src(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"new content, longer\n", T_NEW)
    put(root, "new.txt", b"only in the source\n", T_NEW)
    put(root, "big.bin", random.Random(3).randbytes(300_000), T_NEW)
    put(root, "d/inner.txt", b"inner new\n", T_NEW)
    put(root, "d/e/leaf.txt", b"leaf new\n", T_NEW)
    put(root, "hl1", b"linked twice\n", T_NEW)
    os.link(root / "hl1", root / "hl2")
    os.symlink("new.txt", root / "link")
    # A partial dir on the sending side is never sent (rsync's perishable
    # exclude for a relative partial dir).
    put(root, ".~tmp~/junk", b"sender's leftover\n", T_NEW)
    put(root, ".part/junk", b"sender's leftover\n", T_NEW)
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"old content\n", T_OLD)
    put(root, "d/inner.txt", b"inner old\n", T_OLD)
    put(root, "extra.txt", b"not in the source\n", T_OLD)
    # A partial file from an earlier run: the basis for big.bin, then gone
    # with its directory.
    big = random.Random(3).randbytes(300_000)
    put(root, ".~tmp~/big.bin", big[:100_000], T_OLD)
    put(root, ".part/big.bin", big[:100_000], T_OLD)
    # A partial file of a file that is up to date: of no more use, removed.
    put(root, ".~tmp~/same.txt", b"stale\n", T_OLD)
    put(root, ".part/same.txt", b"stale\n", T_OLD)
    # One not in the transfer: kept (and so is its directory).
    put(root, "d/.~tmp~/other", b"someone else's\n", T_OLD)
    put(root, "d/.part/other", b"someone else's\n", T_OLD)
    fix_dirs(root, T_OLD)


CASES = {
    "itemize": ["-ai", "--delay-updates"],
    "verbose": ["-av", "--delay-updates"],
    "partial-dir": ["-ai", "--delay-updates", "--partial-dir=.part"],
    "delete": ["-ai", "--delay-updates", "--delete"],
    "delete-after": ["-ai", "--delay-updates", "--delete-after"],
    "hard-links": ["-aiH", "--delay-updates"],
    "backup": ["-ai", "--delay-updates", "-b"],
    "delta": ["-ai", "--delay-updates", "--no-W", "-I"],
    "dry-run": ["-ain", "--delay-updates"],
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_delay_updates_matches_rsync(tmp_path, case, role):
    opts = CASES[case]
    res = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        make_src(top / "src")
        make_dst(top / "dst")
        res[tool] = (run(tool, role, opts, top / "src", top / "dst", cwd=top), top)
    (rr, rtop), (pr, ptop) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr.decode(), rr.stderr.decode())
    assert lines(pr.stdout) == lines(rr.stdout)
    assert lines(pr.stderr) == lines(rr.stderr)
    # Directories that held a partial dir get the time of the run.
    assert compare_trees(ptop / "dst", rtop / "dst", dir_times=False) == []
    assert compare_trees(ptop / "src", rtop / "src") == []
    pdir = ".part" if case == "partial-dir" else ".~tmp~"
    if case != "dry-run":
        assert not (ptop / "dst" / pdir).exists()
        assert (ptop / "dst" / "d" / pdir / "other").exists()
        assert (ptop / "dst" / "changed.txt").read_bytes() == b"new content, longer\n"


def wait_for_group(pgid: int) -> None:
    """Until every process of the run (the server side too) has exited."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail("the other side of the run did not exit after the client was stopped")


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_interrupted_run_leaves_the_old_files(tmp_path, role):
    """The client is stopped while the big file is on its way: the files
    finished before it wait in .~tmp~ and the destination still has the old
    versions, with rsync as with pysync.  The next run uses them and puts
    everything in place."""
    big = bytes(96 << 20)
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        for n in ("a.txt", "b.txt", "d/c.txt"):
            put(src, n, b"new " + n.encode() + b"\n", T_NEW)
            put(dst, n, b"old\n", T_OLD)
        put(src, "zz-big.bin", big, T_NEW)
        fix_dirs(src, T_OLD)
        fix_dirs(dst, T_OLD)
        p = popen(tool, role, ["-a", "--delay-updates"], src, dst, cwd=top)
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            if any(n.startswith(".zz-big.bin.") for n in os.listdir(dst)):
                break
            time.sleep(0.001)
        assert p.poll() is None, f"{tool}: finished before it could be interrupted"
        # The client is stopped; the other side sees the connection end.
        os.kill(p.pid, signal.SIGTERM)
        p.communicate(timeout=60)
        wait_for_group(p.pid)
        assert p.returncode != 0, tool
        for n in ("a.txt", "b.txt", "d/c.txt"):
            assert (dst / n).read_bytes() == b"old\n", (tool, n)
        # a.txt and b.txt come before zz-big.bin in the list: finished, waiting.
        for n in ("a.txt", "b.txt"):
            assert (dst / ".~tmp~" / n).read_bytes() == b"new " + n.encode() + b"\n", (tool, n)
        # (A temp file of the file cut short may be left by either tool
        # when the stop lands in its clean-up; it is no part of this check.)
        for n in os.listdir(dst):
            if n.startswith(".zz-big.bin."):
                os.unlink(dst / n)
        r = run(tool, role, ["-ai", "--delay-updates"], src, dst, cwd=top)
        assert r.returncode == 0, r.stderr.decode()
        assert compare_trees(src, dst, dir_times=False) == [], (tool, r.stdout.decode())
        assert not list(dst.rglob(".~tmp~"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opts", [["--delete-after"], ["--delete-delay", "--delay-updates"]],
                         ids=["delete-after", "delete-delay-delay-updates"])
def test_late_deletions_are_in_the_stats(tmp_path, role, opts):
    """After the delay phase the late deletions come first, then the delete
    stats: --stats counts them (rsync's late "deletions done")."""
    out = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        make_src(top / "src")
        make_dst(top / "dst")
        r = run(tool, role, ["-av", "--stats"] + opts, top / "src", top / "dst", cwd=top)
        assert r.returncode == 0, r.stderr.decode()
        text = r.stdout.decode()
        out[tool] = ([l for l in text.splitlines() if l.startswith(("deleting", "Number of deleted"))],
                     top)
    assert out["pysync"][0] == out["rsync"][0]
    assert "deleting extra.txt" in out["pysync"][0]
    assert out["pysync"][0][-1].startswith("Number of deleted files: ")
    assert out["pysync"][0][-1] != "Number of deleted files: 0"
    assert compare_trees(out["pysync"][1] / "dst", out["rsync"][1] / "dst", dir_times=False) == []
