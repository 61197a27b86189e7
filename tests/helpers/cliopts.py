"""Shared by the tests of rsync's remaining command-line options
(tests/engine/test_cli_options.py, test_run_limits.py): run rsync and
pysync in one role on copies of the same trees and compare."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.roles import ROLES, command, fix_dirs, lines, put
from helpers.trees import compare_trees

__all__ = ["REMOTE_ROLES", "T_OLD", "T_NEW", "make_src", "make_dst", "both", "said", "assert_same"]

REMOTE_ROLES = [r for r in ROLES if r != "local"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


def make_src(root: Path) -> None:
    put(root, "small.txt", b"a small file\n", T_NEW)
    put(root, "big.bin", os.urandom(5000), T_NEW)
    put(root, "d/inner.txt", b"inner\n" * 300, T_NEW)
    fix_dirs(root, T_OLD)


def make_dst(root: Path) -> None:
    put(root, "extra.txt", b"not in the source\n", T_OLD)
    fix_dirs(root, T_OLD)


def both(tmp_path, role, opts, src=None, dst_setup=make_dst, env=None, **kw):
    """Run rsync and pysync in ``role`` on copies of the same trees."""
    if src is None:
        src = tmp_path / "src"
        make_src(src)
    out = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool / "dst"
        dst.mkdir(parents=True)
        if dst_setup:
            dst_setup(dst)
        r = subprocess.run(command(tool, role, opts, src, dst), capture_output=True, timeout=120,
                           env=env, **kw)
        out[tool] = (r, dst)
    return out


def said(out: bytes) -> list:
    """The lines both tools print alike (a message's program name aside)."""
    return sorted(ln.replace("pysync: ", "rsync: ", 1) for ln in lines(out))


def assert_same(out, stdout=True, stderr=False, dir_times=True):
    (rr, rdst), (pr, pdst) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst, dir_times=dir_times) == []
    if stdout:
        assert said(pr.stdout) == said(rr.stdout), (pr.stdout, rr.stdout)
    if stderr:
        assert said(pr.stderr) == said(rr.stderr), (pr.stderr, rr.stderr)


