"""-H with -u / --ignore-existing skipping the member of a hard-link group
that would get the data (the one already here): the group passes to
another member, which is sent, and the rest are linked to that, as rsync's
handle_skipped_hlink does; pysync linked them to the skipped file, whose
data is not the source's (interop/fuzz.py seed 11 case 57).  pysync
against stock rsync on the same trees, locally and over the fake remote
shell."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.roles import lines, sources_command
from helpers.trees import compare_trees

OLD, NEW = 1_600_000_000, 1_700_000_000


def _trees(src, dst):
    (src / "n").mkdir(parents=True)
    (dst / "n").mkdir(parents=True)
    (src / "d.log").write_bytes(b"")
    os.link(src / "d.log", src / "n" / "a")
    os.link(src / "d.log", src / "n" / "z")
    os.utime(src / "d.log", (OLD, OLD))
    (dst / "n" / "z").write_bytes(b"a newer file of the destination\n")
    os.utime(dst / "n" / "z", (NEW, NEW))
    for d in (src, src / "n", dst, dst / "n"):
        os.utime(d, (OLD, OLD))


@pytest.mark.parametrize("opts", [["-u"], ["--ignore-existing"], ["-u", "-t"], ["-u", "-n"]])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_skipped_leader_hands_the_group_on_as_rsync(tmp_path, role, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _trees(src, dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-rlpgoD", "-iH"] + opts + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert compare_trees(tmp_path / "pysync" / "dst", tmp_path / "rsync" / "dst",
                         times="-t" in opts, dir_times=False) == []
    assert (tmp_path / "pysync" / "dst" / "n" / "z").read_bytes().startswith(b"a newer")
