"""Option values with spaces and shell or wildcard characters reach the
other side intact in every role: escaped for a remote shell as rsync's
safe_arg does, passed as they are to a local copy's child."""

from __future__ import annotations

import os

import pytest

from tests.helpers.roles import ROLES, put, run

OLD, NEW = 1_500_000_000, 1_600_000_000


def _listing(root):
    return sorted(os.path.relpath(os.path.join(p, n), root)
                  for p, ds, fs in os.walk(root) for n in ds + fs)


@pytest.mark.parametrize("role", ROLES)
def test_backup_dir_and_suffix_with_special_characters(tmp_path, role):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        put(top / "src", "f", b"new\n", NEW)
        put(top / "src", "g", b"new g\n", NEW)
        put(top / "dst", "f", b"old\n", OLD)
        put(top / "dst", "g", b"old g\n", OLD)
        bdir = top / "b k*;$x"
        r = run(tool, role, ["-a", f"--backup-dir={bdir}", "--suffix=.~ [1]"], top / "src", top / "dst")
        assert r.returncode == 0, r.stderr
        got[tool] = (_listing(top), (bdir / "f.~ [1]").read_bytes())
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1] == b"old\n"
