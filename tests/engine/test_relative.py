"""-R/--relative: names as given on the command line (after a "/./"
anchor), their parents sent as implied directories, --no-implied-dirs;
pysync against stock rsync on the same trees, locally and over a remote
shell in both roles: same tree, same itemized lines, same exit code."""

import os
import subprocess
import sys

import pytest

from helpers.trees import compare_trees
from test_backup_options import FAKE_RSH, PYSYNC, T_NEW, T_OLD, fix_dirs, lines, put

ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync",
         "pull-rsync2pysync"]


def make_src(root):
    for rel in ("a/b/c/f", "a/b/g", "a/other", "x/y", "top", "deep/1/2/3"):
        put(root, rel, rel.encode() + b"\n", T_NEW)
    fix_dirs(root, T_OLD)


CASES = {
    "plain": (["-aiR"], ["src/a/b", "src/top"]),
    "anchor": (["-aiR"], ["src/./a/b/c", "src/./x"]),
    "no-recursion": (["-ltpiR"], ["src/a/b/g", "src/deep/1/2/3"]),
    "no-implied-dirs": (["-aiR", "--no-implied-dirs"], ["src/./a/b/c", "src/./x/y"]),
    "delete": (["-aiR", "--delete"], ["src/./a", "src/./x"]),
}


def run(tool, role, opts, srcs, dst, cwd):
    if role == "local":
        cmd = (PYSYNC if tool == "pysync" else ["rsync"]) + opts + srcs + [f"{dst}/"]
    else:
        if tool == "rsync":
            client, server = ["rsync"], "rsync"
        elif role.endswith("rsync2pysync"):
            client, server = ["rsync"], "pysync"
        else:
            client, server = PYSYNC, "rsync"
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        if role.startswith("push"):
            cmd = client + opts + remote + srcs + [f"localhost:{dst}/"]
        else:
            cmd = client + opts + remote + ["localhost:" + " ".join(srcs), f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_relative_matches_rsync(tmp_path, case, role):
    opts, srcs = CASES[case]
    make_src(tmp_path / "src")
    results = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"t-{tool}" / "dst"
        put(dst, "a/stale", b"old\n", T_OLD)       # deleted only with --delete
        put(dst, "src/a/keep", b"old\n", T_OLD)
        fix_dirs(dst, T_OLD)
        r = run(tool, role, opts, srcs, dst, tmp_path)
        results[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    for d in (rdst, pdst):          # the root's time is the time of the run
        os.utime(d, (T_OLD, T_OLD))
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    # Directories made with default permissions get the time of the run.
    dir_times = "--no-implied-dirs" not in opts and "-t" not in opts and "a" in opts[0]
    assert compare_trees(pdst, rdst, dir_times=dir_times) == []
    if role in ("local", "pull-pysync2rsync"):
        assert sorted(lines(pr.stdout)) == sorted(lines(rr.stdout))
        if "--delete" not in opts:
            assert lines(pr.stdout) == lines(rr.stdout)
