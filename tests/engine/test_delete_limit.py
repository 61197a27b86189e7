"""--max-delete inside a directory being deleted (engine/delete.py
remove_tree), pysync against stock rsync on the same trees, locally and
over the fake remote shell.  Found by interop/fuzz.py: pysync checked the
limit once per top-level name, so a directory went whole past it."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.roles import lines, sources_command


@pytest.mark.parametrize("limit", [1, 2, 3])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_max_delete_counts_a_directorys_entries_as_rsync(tmp_path, role, limit):
    """Each entry of the directory and the directory itself count: at the
    limit the rest stay ('Deletions stopped due to --max-delete limit (N
    skipped)', exit 25)."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        (dst / "gone dir").mkdir(parents=True)
        (dst / "gone dir" / "in").write_bytes(b"x")
        os.symlink("in", dst / "gone dir" / "old")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-ri", "--delete-during",
                                                        f"--max-delete={limit}"] + extra,
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        left = sorted(os.path.relpath(os.path.join(d, n), dst)
                      for d, ds, fs in os.walk(dst) for n in ds + fs)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)), left)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == (25 if limit < 3 else 0)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_limit_inside_a_directory_is_said_without_i(tmp_path, role):
    """'cannot delete non-empty directory' is information rsync prints at
    the default verbosity too (found by interop/fuzz.py: pysync printed it
    only with -i or -v)."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        src.mkdir(parents=True)
        (dst / "gone dir" / "sub").mkdir(parents=True)
        (dst / "gone dir" / "sub" / "in").write_bytes(b"x")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-r", "--delete-delay", "--max-delete=1"]
                                           + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1] == ["cannot delete non-empty directory: gone dir"]
