"""--munge-links: a receiver with the option puts /rsyncd-munged/ before
every symlink target it is sent (so none resolves), a sender with it takes
that prefix off a target that has it.  The option is each side's own: a
client never sends it (a local copy's receiving half does not have it), a
server gets it only through -M.  pysync against stock rsync on the same
trees in every role: same link targets, itemized lines and exit code, and
a second run that finds nothing to change."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.roles import ROLES, command, fix_dirs, lines, put

T = 1_600_000_000


def _src(root):
    put(root, "f", b"data\n", T)
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("rel/name", root / "rel")
    os.symlink("/rsyncd-munged/was-munged", root / "pre")
    os.symlink("/rsyncd-munged/", root / "bare")        # only the prefix: left as it is
    fix_dirs(root, T)


def _links(root):
    return {n: os.readlink(root / n) for n in sorted(os.listdir(root)) if os.path.islink(root / n)}


CASES = [(role, opts) for role in ROLES
         for opts in (["--munge-links"], ["-M--munge-links"], ["--munge-links", "-M--munge-links"])
         if role != "local" or opts == ["--munge-links"]]      # (-M is for a remote side)


@pytest.mark.parametrize("role,opts", CASES)
def test_munge_links_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _src(src)
        runs = []
        for _ in range(2):          # the copy, then a run that finds it done
            r = subprocess.run(command(tool, role, ["-ai"] + opts, src, dst), capture_output=True, timeout=60)
            runs.append((r.returncode, sorted(ln.replace(str(tmp_path / tool), "TOP") for ln in lines(r.stdout))))
        got[tool] = (runs, _links(dst), _links(src))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0][1][1] == []        # nothing left to do the second time


def test_refused_when_the_prefix_is_a_directory(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to make /rsyncd-munged")
    if os.path.lexists("/rsyncd-munged"):
        pytest.skip("/rsyncd-munged exists on this machine")
    src = tmp_path / "src"
    _src(src)
    os.mkdir("/rsyncd-munged")
    try:
        got = {}
        for tool in ("rsync", "pysync"):
            r = subprocess.run(command(tool, "local", ["-a", "--munge-links"], src, tmp_path / tool),
                               capture_output=True, timeout=60)
            got[tool] = (r.returncode, r.stderr.decode().splitlines()[0])
    finally:
        os.rmdir("/rsyncd-munged")
    assert got["pysync"] == got["rsync"] == (4, "Symlink munging is unsafe when a /rsyncd-munged directory exists.")
    assert not (tmp_path / "pysync").exists()
