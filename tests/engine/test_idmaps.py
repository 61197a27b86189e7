"""--usermap, --groupmap and --chown compared with stock rsync in every
role (run as root, so ownership can be set): the owners and groups the
destination ends with, the exit code, and rsync's refusals."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.roles import PYSYNC, put, role_cases, run

OLD = 1_500_000_000
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setting owners needs root")

MAPS = [["--usermap=1:2,daemon:bin"], ["--chown=nobody:nogroup"], ["--usermap=*:3", "--groupmap=0-1:2"],
        ["--chown=:daemon"], ["--usermap=root:daemon"], ["--numeric-ids", "--usermap=1:2,root:3"],
        ["--usermap=1:nosuchuser,2:sys"], ["--groupmap=[bd]*:sys"]]


def _owners(root):
    return {n: (os.lstat(root / n).st_uid, os.lstat(root / n).st_gid) for n in sorted(os.listdir(root))}


@pytest.mark.parametrize("role,opts", role_cases(MAPS))
def test_id_maps_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        for i in range(4):
            p = put(src, f"f{i}", b"%d\n" % i, OLD)
            os.chown(p, i, i)
        dst.mkdir()
        r = run(tool, role, ["-a"] + opts, src, dst)
        got[tool] = (r.returncode, _owners(dst), b"Unknown --usermap name" in r.stderr)
    assert got["pysync"] == got["rsync"]


@pytest.mark.parametrize("opts", [["--usermap=bad"], ["--groupmap=1:"], ["--usermap=1x:2"],
                                  ["--usermap=1-2-3:0"], ["--usermap=1:2", "--usermap=3:4"],
                                  ["--chown=a", "--usermap=1:2"], ["--usermap=1:2", "--chown=a"],
                                  ["--chown=a:b", "--chown=c"]])
def test_bad_maps_refused_as_rsync(tmp_path, opts):
    (tmp_path / "s").mkdir()
    for cmd in (["rsync"], PYSYNC):
        r = subprocess.run(cmd + ["-a"] + opts + [f"{tmp_path}/s/", f"{tmp_path}/d/"],
                           capture_output=True, timeout=30)
        assert r.returncode == 1, (cmd, r.stderr)
    assert not (tmp_path / "d").exists()
