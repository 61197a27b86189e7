"""-y/--fuzzy: a new file is sent as a delta against a similar file of the
destination directory (-yy: also of the --compare-dest & co. dirs).
Compared with stock rsync in every role: the tree, the itemized lines and
the literal bytes (which show the basis that was chosen)."""

from __future__ import annotations

import os
import random
import re
import subprocess

import pytest

from tests.helpers.roles import ROLES, lines, put, sources_command

OLD = 1_500_000_000


def _data(seed, n=200_000):
    return random.Random(seed).randbytes(n)


def _scene(top, kind):
    src, dst = top / "src", top / "dst"
    base = _data(1)
    if kind == "renamed":           # a new version under a new name
        put(src, "data-v2.bin", base[:100_000] + b"changed" + base[100_000:], OLD + 10)
        put(dst, "data-v1.bin", base, OLD)
    elif kind == "same-size-time":  # exact size and time wins over the name
        put(src, "zzz.dat", base, OLD)
        put(dst, "aaa.other", base, OLD)
        put(dst, "zzz.dat.tmp", _data(2), OLD)
    elif kind == "taken":           # a file updated in this run is no basis
        put(src, "a.txt", base + b"more", OLD + 10)
        put(src, "a2.txt", base + b"other", OLD + 10)
        put(dst, "a.txt", base, OLD)
    elif kind == "too-far":
        put(src, "completely-different-name.bin", base, OLD + 10)
        put(dst, "x.y", base[:-1], OLD)
    elif kind == "subdir":
        put(src, "d/e/report-2026.csv", base + b"new rows", OLD + 10)
        put(dst, "d/e/report-2025.csv", base, OLD)
        put(dst, "d/report-2026.csv", _data(3), OLD)
    os.utime(src, (OLD, OLD))
    return src, dst


def _literal(out: bytes) -> int:
    m = re.search(rb"Literal data: ([\d,]+) bytes", out)
    return int(m.group(1).replace(b",", b""))


@pytest.mark.parametrize("kind", ["renamed", "same-size-time", "taken", "too-far", "subdir"])
@pytest.mark.parametrize("role", ROLES)
def test_fuzzy_as_rsync(tmp_path, role, kind):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = _scene(tmp_path / tool, kind)
        extra = ["--no-i-r"] if tool == "rsync" and role == "local" else []
        r = subprocess.run(sources_command(tool, role, ["-ai", "-y", "--no-W", "--stats"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=120)
        assert r.returncode == 0, (tool, r.stderr)
        tree = sorted((str(p.relative_to(dst)), p.read_bytes() if p.is_file() else None)
                      for p in dst.rglob("*"))
        items = sorted(ln for ln in lines(r.stdout) if not ln.startswith(("Number", "Total", "Literal",
                                                                         "Matched", "File list")))
        got[tool] = (tree, items, _literal(r.stdout))
    if kind == "taken" and role in ("local", "push-rsync2pysync", "pull-pysync2rsync"):
        # rsync marks the files it rewrites as no basis only once it has
        # listed the directory for a fuzzy search, so here it takes a.txt
        # (listed before) while it is being replaced: a basis that may
        # change under the receiver (then the redo phase repairs it).  We
        # never use a file this run rewrites (in the roles where pysync's
        # generator chooses).
        assert got["pysync"][:2] == got["rsync"][:2]
        assert got["pysync"][2] > 200_000 > got["rsync"][2]
        return
    assert got["pysync"] == got["rsync"]
    if kind in ("renamed", "same-size-time", "subdir"):
        assert got["pysync"][2] < 20_000     # the basis was used


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_fuzzy_twice_looks_in_the_alternate_dirs(tmp_path, role):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "log-0002.txt", _data(5) + b"tail", OLD + 10)
        put(top / "prev", "log-0001.txt", _data(5), OLD)
        dst.mkdir()
        os.utime(src, (OLD, OLD))
        opts = ["-ai", "--no-W", "--stats", f"--compare-dest={top / 'prev'}"]
        lits = []
        for y in (["-y"], ["-yy"]):
            for p in dst.iterdir():
                p.unlink()
            extra = ["--no-i-r"] if tool == "rsync" and role == "local" else []
            r = subprocess.run(sources_command(tool, role, opts + y + extra, [f"{src}/"], dst),
                               capture_output=True, timeout=120)
            assert r.returncode == 0, (tool, r.stderr)
            assert (dst / "log-0002.txt").read_bytes() == (src / "log-0002.txt").read_bytes()
            lits.append(_literal(r.stdout))
        got[tool] = lits
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1] < 10_000 < got["pysync"][0]


def test_name_suffix_and_distance():
    from pysync.engine.fuzzy import LIMIT, name_distance, name_suffix
    assert name_suffix(b"a.tar.gz") == b".gz"
    assert name_suffix(b"a.tar.1") == b".tar"
    assert name_suffix(b"notes.txt~") == b".txt"
    assert name_suffix(b"x.c.bak") == b".c"
    assert name_suffix(b".bashrc") == b""
    assert name_distance(b"data-v1.bin", b"data-v2.bin") < name_distance(b"data-x1.bin", b"data-v2.bin") < 3
    assert name_distance(b"abc", b"abc") == 0
    assert name_distance(b"a", b"a" * 40) > LIMIT
