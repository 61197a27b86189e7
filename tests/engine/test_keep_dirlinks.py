"""-K/--keep-dirlinks: a symlink to a directory in the destination stands
for the directory of that name in the list, and the transfer goes through
it (wherever it points, the user's choice).  Compared with stock rsync in
every role: the trees (the symlink, the directory behind it), the output
and the exit code."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.roles import lines, put, role_cases, sources_command

OLD = 1_500_000_000


def _tree(root):
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link", os.readlink(p))
        elif p.is_dir():
            out[str(p.relative_to(root))] = ("dir", oct(st.st_mode), st.st_mtime_ns)
        else:
            out[str(p.relative_to(root))] = ("file", oct(st.st_mode), p.read_bytes(), st.st_mtime_ns)
    return out


def _setup(top, kind):
    src, dst, other = top / "src", top / "dst", top / "other"
    put(src, "d/x", b"x\n", OLD)
    put(src, "d/sub/y", b"y\n", OLD + 1)
    put(src, "f", b"f\n", OLD)
    os.chmod(src / "d", 0o750)
    for d in (src / "d" / "sub", src / "d", src):
        os.utime(d, (OLD, OLD))
    dst.mkdir(parents=True)
    other.mkdir()
    if kind == "dirlink":
        put(other, "stale", b"s\n", OLD)
        os.symlink("../other", dst / "d")
    elif kind == "filelink":
        put(other, "file", b"t\n", OLD)
        os.symlink("../other/file", dst / "d")
    elif kind == "dangling":
        os.symlink("../other/none", dst / "d")
    return src, dst, other


@pytest.mark.parametrize("kind", ["dirlink", "filelink", "dangling"])
@pytest.mark.parametrize("role,opts", role_cases(
    [["-aKi"], ["-aKi", "--delete"], ["-ai"], ["-aK", "--delete-after"]], remote_every=2))
def test_keep_dirlinks_as_rsync(tmp_path, role, opts, kind):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst, other = _setup(tmp_path / tool, kind)
        extra = ["--no-i-r"] if tool == "rsync" and role == "local" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        got[tool] = (r.returncode, _tree(dst), _tree(other), sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    if kind == "dirlink" and "-aK" in opts[0]:
        assert got["pysync"][1]["d"] == ("link", "../other")
        assert "sub/y" in got["pysync"][2]
