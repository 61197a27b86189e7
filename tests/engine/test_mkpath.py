"""--mkpath compared with stock rsync: the missing directories of the
destination are made (all of it for a directory, the parent for a single
file), with rsync's "created N directories for ..." line; without it a
missing parent is an error."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.roles import PYSYNC, lines, put, role_cases, run

OLD = 1_500_000_000


def _listing(root):
    if not root.exists():
        return None
    return sorted(os.path.relpath(os.path.join(p, n), root)
                  for p, ds, fs in os.walk(root) for n in ds + fs)


@pytest.mark.parametrize("role,opts", role_cases(
    [["-av", "--mkpath"], ["-a", "--mkpath"], ["-ai", "--mkpath"], ["-av"]], remote_every=3))
def test_mkpath_directory_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src = tmp_path / tool / "src"
        put(src, "d/f", b"1\n", OLD)
        put(src, "g", b"2\n", OLD)
        os.utime(src, (OLD, OLD))
        top = tmp_path / tool / "T"
        r = run(tool, role, opts, src, top / "a" / "b" / "c")
        shown = sorted(ln.replace(str(tmp_path / tool), "X") for ln in lines(r.stdout))
        got[tool] = (r.returncode, _listing(top), shown)
    assert got["pysync"] == got["rsync"]
    if "--mkpath" in opts:
        assert got["pysync"][0] == 0 and "a/b/c/d/f" in got["pysync"][1]


@pytest.mark.parametrize("dest", ["x/y/z", "x/y/z/", "m/n"])
def test_mkpath_local_forms_as_rsync(tmp_path, dest):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        put(top / "s", "g", b"2\n", OLD)
        put(top / "s", "d/f", b"1\n", OLD)
        srcs = ["s/g", "s/d"] if dest == "m/n" else ["s/g"]
        cmd = (["rsync"] if tool == "rsync" else PYSYNC) + ["-av", "--mkpath"] + srcs + ["T/" + dest]
        r = subprocess.run(cmd, capture_output=True, cwd=top, timeout=60)
        got[tool] = (r.returncode, _listing(top / "T"), lines(r.stdout))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
