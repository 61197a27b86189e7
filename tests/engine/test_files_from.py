"""--files-from (with --from0, "-" for stdin, -r, --no-relative): pysync
against stock rsync, locally and pushing over a remote shell in both
roles (a remote sender: test_files_from_remote.py)."""

import os
import subprocess

import pytest

from helpers.trees import compare_trees
from test_backup_options import FAKE_RSH, PYSYNC, T_NEW, T_OLD, fix_dirs, lines, put

ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync"]


def make_src(root):
    for rel in ("a/b/c/f", "a/b/g", "a/other", "x/y", "x/z/w", "top", "skip"):
        put(root, rel, rel.encode() + b"\n", T_NEW)
    fix_dirs(root, T_OLD)


NAMES = ["a/b/c/f", "x", "top", "a/other"]
CASES = {
    "plain": (["-ai"], False, NAMES),
    "recursive": (["-ai", "-r"], False, NAMES),
    "from0": (["-ai", "--from0"], True, NAMES),
    "stdin": (["-ai"], False, NAMES),
    "no-relative": (["-ai", "--no-relative"], False, ["a/b/c/f", "top", "x/y"]),
    "missing": (["-ai"], False, ["top", "nothere"]),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_files_from_matches_rsync(tmp_path, case, role):
    opts, zero, names = CASES[case]
    src = tmp_path / "src"
    make_src(src)
    sep = b"\0" if zero else b"\n"
    (tmp_path / "list").write_bytes(sep.join(n.encode() for n in names) + sep)
    ff = "-" if case == "stdin" else str(tmp_path / "list")
    results = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"t-{tool}" / "dst"
        dst.mkdir(parents=True)
        if role == "local":
            cmd = (PYSYNC if tool == "pysync" else ["rsync"])
            remote = []
            target = f"{dst}/"
        else:
            server = "pysync" if tool == "pysync" and role.endswith("rsync2pysync") else "rsync"
            cmd = PYSYNC if tool == "pysync" and role.endswith("pysync2rsync") else ["rsync"]
            remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
            target = f"localhost:{dst}/"
        stdin = (tmp_path / "list").read_bytes() if case == "stdin" else None
        r = subprocess.run(cmd + opts + [f"--files-from={ff}"] + remote + [f"{src}/", target],
                           capture_output=True, timeout=120, input=stdin, cwd=tmp_path)
        os.utime(dst, (T_OLD, T_OLD))
        results[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    assert compare_trees(pdst, rdst) == []
    if role == "local":
        assert lines(pr.stdout) == lines(rr.stdout)

