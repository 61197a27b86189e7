"""-m/--prune-empty-dirs compared with stock rsync in every role: which
directory chains are left out (with filter rules that empty some of
them, and with --delete removing pruned directories already in the
destination), the -v lines and the exit code."""

from __future__ import annotations

import os

import pytest

from tests.helpers.roles import lines, put, role_cases, run

OLD = 1_500_000_000


def _tree(src):
    put(src, "e/f/file", b"1\n", OLD)
    put(src, "g/h.txt", b"2\n", OLD)
    put(src, "x/y/z.log", b"3\n", OLD)
    put(src, "k/keep.txt", b"4\n", OLD)
    for d in ("a/b/c", "k/empty", "n/o/p"):
        (src / d).mkdir(parents=True)
    for dirpath, dirnames, _ in os.walk(src):
        for d in dirnames:
            os.utime(os.path.join(dirpath, d), (OLD, OLD))
    os.utime(src, (OLD, OLD))


def _listing(root):
    return sorted(os.path.relpath(os.path.join(p, n), root)
                  for p, ds, fs in os.walk(root) for n in ds + fs)


@pytest.mark.parametrize("role,opts", role_cases(
    [["-m", "--include=*/", "--include=*.txt", "--exclude=*"], ["-m"], ["-m", "--delete"],
     ["-m", "--exclude=*.log", "--delete"], ["--include=*/", "--include=*.txt", "--exclude=*"]]))
def test_prune_empty_dirs_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _tree(src)
        (dst / "n" / "o" / "p").mkdir(parents=True)     # pruned: deleted with --delete
        (dst / "a").mkdir()
        os.utime(dst, (OLD, OLD))
        r = run(tool, role, ["-av"] + opts, src, dst)
        got[tool] = (r.returncode, _listing(dst), sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    if "-m" in opts:
        assert "a/b" not in got["pysync"][1] and "k/empty" not in got["pysync"][1]
