"""--stats "Number of files" (with its kinds) and "Total file size" of a
list holding every kind of entry, as stock rsync counts them, on the
sending client (push, local) and the receiving one (pull)."""

from __future__ import annotations

import os

import pytest

from tests.helpers.roles import ROLES, put, run

T = 1_600_000_000
_LABELS = ("Number of files:", "Total file size:", "Number of regular files transferred:")


def _tree(root):
    put(root, "a", b"x" * 1000, T)
    put(root, "d/b", b"y" * 70, T)
    put(root, "d/e/c", b"", T)
    os.symlink("a-target-name", root / "l")
    os.symlink("b", root / "d/l2")
    os.mkfifo(root / "fifo")
    # (No devices: stock rsync 3.2.7 receiving counts them as links.)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opts", [["-a", "--stats"], ["-rl", "--stats"]])
def test_stats_counts_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _tree(src)
        dst.mkdir()
        r = run(tool, role, opts, src, dst)
        assert r.returncode == 0, r.stderr
        got[tool] = [line for line in r.stdout.decode().splitlines() if line.startswith(_LABELS)]
    assert got["pysync"] == got["rsync"]
    # Not vacuous: the kinds are there to count.
    assert any("reg: 3" in line and "link: 2" in line for line in got["pysync"]), got
