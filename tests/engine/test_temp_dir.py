"""-T/--temp-dir: temp files are made in DIR (relative: to the destination)
and renamed into place.  Compared with stock rsync in every role (tree,
output, exit code, the checks of DIR); across file systems pysync copies
the finished file beside the destination and renames it, so the
replacement stays atomic (rsync copies into the destination name)."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from tests.helpers.roles import PYSYNC, lines, put, role_cases, run

OLD = 1_500_000_000


def _tree(root):
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (oct(st.st_mode), None if p.is_dir() else p.read_bytes(),
                                         None if p.is_dir() else st.st_mtime_ns)
    return out


def _source(src):
    put(src, "a", b"a\n" * 1000, OLD)
    put(src, "d/b", b"b\n", OLD + 1, 0o600)
    put(src, "d/big", random.Random(7).randbytes(300_000), OLD + 2)
    os.utime(src / "d", (OLD, OLD))
    os.utime(src, (OLD, OLD))


@pytest.mark.parametrize("role,opts", role_cases(
    [["-ai", "-T", "../tmp"], ["-av", "--temp-dir=../tmp", "--delay-updates"],
     ["-a", "-T", "../tmp", "--delete"]], remote_every=1))
def test_temp_dir_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _source(top / "src")
        (top / "tmp").mkdir()
        put(top / "dst", "a", b"old\n", OLD - 5)
        put(top / "dst", "stale", b"x\n", OLD)
        r = run(tool, role, opts, top / "src", top / "dst")
        got[tool] = (r.returncode, _tree(top / "dst"), sorted(lines(r.stdout)), os.listdir(top / "tmp"))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and got["pysync"][3] == []


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
@pytest.mark.parametrize("tdir,message", [
    ("../missing", "The temp-dir does not exist: ../missing"),
    ("../file", "The temp-dir is not a directory: ../file"),
])
def test_bad_temp_dir_as_rsync(tmp_path, role, tdir, message):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _source(top / "src")
        (top / "file").write_bytes(b"")
        (top / "dst").mkdir()
        r = run(tool, role, ["-a", "-T", tdir], top / "src", top / "dst")
        err = [ln for ln in r.stderr.decode().splitlines() if not ln.startswith("rsync error")]
        got[tool] = (r.returncode, os.listdir(top / "dst"), err)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 1 and message in got["pysync"][2]


def _other_fs(path):
    """A writable directory on another file system than ``path``, or None."""
    for cand in ("/dev/shm", "/run"):
        try:
            if os.stat(cand).st_dev != os.stat(path).st_dev and os.access(cand, os.W_OK):
                return cand
        except OSError:
            continue
    return None


@pytest.mark.parametrize("extra", [[], ["--delay-updates"], ["-X", "--fsync"]])
def test_temp_dir_on_another_file_system(tmp_path, extra):
    import tempfile
    base = _other_fs(tmp_path)
    if base is None:
        pytest.skip("no writable directory on another file system (/dev/shm, /run)")
    _source(tmp_path / "src")
    if "-X" in extra:
        os.setxattr(tmp_path / "src" / "d" / "b", "user.note", b"kept")
    put(tmp_path / "dst", "a", b"old\n", OLD - 5)
    os.link(tmp_path / "dst" / "a", tmp_path / "old-a")
    with tempfile.TemporaryDirectory(dir=base) as tdir:
        r = subprocess.run(PYSYNC + ["-a", "-T", tdir] + extra + [f"{tmp_path / 'src'}/", f"{tmp_path / 'dst'}/"],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert os.listdir(tdir) == []
    assert _tree(tmp_path / "dst") == _tree(tmp_path / "src")
    # Replaced by a new file (renamed into place), not rewritten in place.
    assert (tmp_path / "old-a").read_bytes() == b"old\n"
    assert not [n for n in os.listdir(tmp_path / "dst") if n.startswith(".")]
    if "-X" in extra:
        assert os.getxattr(tmp_path / "dst" / "d" / "b", "user.note") == b"kept"


def test_temp_names_in_a_temp_dir_have_no_dot(tmp_path):
    from pysync.io.replace import TempFile
    (tmp_path / "t").mkdir()
    (tmp_path / "d").mkdir()
    tfd = os.open(tmp_path / "t", os.O_RDONLY | os.O_DIRECTORY)
    dfd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        tmp = TempFile(dfd, b"name", temp_dir_fd=tfd)
        (made,) = os.listdir(tmp_path / "t")
        assert made.startswith("name.") and len(made) == len("name.") + 6
        os.write(tmp.fd, b"data")
        tmp.commit()
        assert (tmp_path / "d" / "name").read_bytes() == b"data"
        assert os.listdir(tmp_path / "t") == []
    finally:
        os.close(tfd)
        os.close(dfd)
