"""-S/--sparse compared with stock rsync in every role: the files read the
same as the source, and take the same blocks on disk as rsync's (zero
blocks become holes); without -S they are written out.  --sparse with
--direct-io is refused."""

from __future__ import annotations

import os
import subprocess

import pytest

from pysync.io.sparse import pwrite_sparse
from tests.helpers.roles import PYSYNC, ROLES, run


def _src(src):
    src.mkdir(parents=True)
    with open(src / "img", "wb") as f:
        f.write(b"x" * 5000)
        f.seek(3 << 20)
        f.write(b"y" * 100)
        f.seek(7 << 20)
        f.write(b"z")
        f.truncate(9 << 20)
    (src / "zeros").write_bytes(bytes(1 << 20))
    (src / "edge").write_bytes(b"a" * 10 + bytes(9000) + b"b" + bytes(5000))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opts", [["-aS"], ["-aS", "--whole-file"], ["-a"]], ids=lambda o: "_".join(o))
def test_sparse_as_rsync(tmp_path, role, opts):
    blocks = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _src(src)
        dst.mkdir()
        r = run(tool, role, opts, src, dst)
        assert r.returncode == 0, r.stderr
        for n in ("img", "zeros", "edge"):
            assert (dst / n).read_bytes() == (src / n).read_bytes()
        blocks[tool] = {n: os.stat(dst / n).st_blocks for n in ("img", "zeros", "edge")}
    assert blocks["pysync"] == blocks["rsync"]
    if "-aS" in opts:
        assert blocks["pysync"]["zeros"] == 0 and blocks["pysync"]["img"] * 512 < (1 << 20)


def test_sparse_refused_with_direct_io(tmp_path):
    (tmp_path / "s").mkdir()
    r = subprocess.run(PYSYNC + ["-aS", "--direct-io", f"{tmp_path}/s/", f"{tmp_path}/d/"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and b"--sparse cannot be used with --direct-io" in r.stderr


@pytest.mark.parametrize("offset", [0, 1, 4095, 4096, 10000])
def test_pwrite_sparse_keeps_every_byte(tmp_path, offset):
    import random
    rnd = random.Random(offset)
    parts = []
    for _ in range(40):
        n = rnd.choice([1, 100, 4095, 4096, 4097, 9000])
        parts.append(bytes(n) if rnd.random() < 0.5 else bytes(rnd.randrange(1, 256) for _ in range(n)))
    data = b"".join(parts)
    p = tmp_path / "f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    def write(view, at):
        while len(view):
            n = os.pwrite(fd, view, at)
            view, at = view[n:], at + n
    try:
        pwrite_sparse(memoryview(data), offset, write)
        os.ftruncate(fd, offset + len(data))
    finally:
        os.close(fd)
    assert p.read_bytes() == bytes(offset) + data
