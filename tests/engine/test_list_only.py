"""--list-only and a lone source argument: pysync prints what stock rsync
prints (rsync's format and order), with the same exit code."""

import os
import subprocess

import pytest

from test_backup_options import PYSYNC, T_NEW, T_OLD, fix_dirs, put


def make_src(root):
    for rel in ("a/b/c/f", "a/b/g", "x/y", "top", "big"):
        put(root, rel, rel.encode() * (1000 if rel == "big" else 1), T_NEW)
    os.symlink("top", root / "lnk")
    os.chmod(root / "x/y", 0o600)
    fix_dirs(root, T_OLD)


CASES = [
    ["src/"], ["src"], ["-r", "src/"], ["-a", "src/"], ["-a", "--list-only", "src/a", "dst"],
    ["-rR", "src/a/b"], ["-r", "--exclude=b", "src/"], ["-a", "src/a/b/c/f"], ["src/missing"],
    ["-r", "-C", "src/"], ["-a", "src/", "src/x"],
]


@pytest.mark.parametrize("args", CASES, ids=lambda c: "_".join(c))
def test_listing_matches_rsync(tmp_path, args):
    make_src(tmp_path / "src")
    if args[-1] == "src/x":
        args = ["--list-only"] + args
    rr = subprocess.run(["rsync"] + args, capture_output=True, cwd=tmp_path, timeout=60)
    pr = subprocess.run(PYSYNC + args, capture_output=True, cwd=tmp_path, timeout=60)
    assert pr.returncode == rr.returncode, pr.stderr
    assert pr.stdout.decode() == rr.stdout.decode()
    assert not (tmp_path / "dst").exists()


def test_listing_a_remote_source_is_refused(tmp_path):
    r = subprocess.run(PYSYNC + ["-e", "false", "host:/x/"], capture_output=True, timeout=60)
    assert r.returncode == 1 and b"not supported yet" in r.stderr
