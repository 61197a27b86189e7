"""--list-only and a lone source argument: pysync prints what stock rsync
prints (rsync's format and order), with the same exit code; for a local
source and for a remote one (pysync client and stock rsync server, pysync on
both sides, stock rsync client and pysync server)."""

import os
import subprocess

import pytest

from test_backup_options import FAKE_RSH, PYSYNC, T_NEW, T_OLD, fix_dirs, lines, put


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


REMOTE_CASES = [
    ["src/"], ["src"], ["-r", "src/"], ["-a", "src/"], ["-rl", "--list-only", "src/", "dst"],
    ["-rR", "src/a/b"], ["-r", "--exclude=b", "src/"], ["-a", "src/a/b/c/f"], ["src/missing"],
    ["-r", "-C", "src/"], ["-rv", "src/"], ["-q", "-r", "src/"],
    ["--list-only", "--files-from=list", "src/", "dst"],
    ["-r", "--list-only", "--files-from=list", "--from0", "src/", "dst"], ["-d", "src/x"],
    ["--no-dirs", "src/"], ["--files-from=list", "src/"],
]
REMOTE_ROLES = ["pysync2rsync", "pysync2pysync", "rsync2pysync"]


@pytest.mark.parametrize("role", REMOTE_ROLES)
@pytest.mark.parametrize("args", REMOTE_CASES, ids=lambda c: "_".join(c))
def test_listing_a_remote_source_matches_rsync(tmp_path, args, role):
    """``pysync host:src/`` (and --list-only with a remote source): the list
    comes from the remote sender and is printed as rsync prints it."""
    make_src(tmp_path / "src")
    sep = "\0" if "--from0" in args else "\n"
    (tmp_path / "list").write_text(sep.join(["a/b/c/f", "x", "top", "lnk"]) + sep)
    args = [f"localhost:{a}" if a.startswith("src") else a for a in args]   # the remote cwd is tmp_path
    client, server = role.split("2")
    remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
    rr = subprocess.run(["rsync", "-e", FAKE_RSH] + args, capture_output=True, cwd=tmp_path,
                        timeout=60)
    pr = subprocess.run((PYSYNC if client == "pysync" else ["rsync"]) + remote + args,
                        capture_output=True, cwd=tmp_path, timeout=60)
    assert pr.returncode == rr.returncode, (pr.stderr.decode(), rr.stderr.decode())
    if "-rv" in args:       # the summary's byte counts and the "receiving" line differ
        assert lines(pr.stdout) == lines(rr.stdout) and b"total size is" in pr.stdout
    else:
        assert pr.stdout.decode() == rr.stdout.decode()
    if args[0] == "--files-from=list":     # a listing cannot take --files-from (rsync: usage)
        assert pr.returncode == 1
    elif "missing" not in args[-1] and "-q" not in args:
        assert pr.stdout.count(b"\n") >= 1
    assert not (tmp_path / "dst").exists()
