"""The quick check of a re-sync, compared with stock rsync in every role:
files that are up to date (the generator's fast path for regular files)
next to ones that differ in one way each (size, second, nanoseconds only,
permissions, owner, group, type, missing), under the options that change
what the check compares or what happens to an unchanged file."""

from __future__ import annotations

import os

import pytest

from tests.helpers.roles import lines, put, role_cases, run
from tests.helpers.trees import snapshot

T = 1_600_000_000


def _src(root):
    for name in ("same", "perm", "sec", "nsec", "size", "samesize", "owner", "group",
                 "missing", "isdir", "islink", "sub/same", "sub/sec"):
        put(root, name, b"new data\n", T)
    os.utime(root / "nsec", ns=(T * 10**9 + 500_000_000,) * 2)


def _dst(root):
    for name in ("same", "perm", "sec", "nsec", "owner", "group", "sub/same", "sub/sec"):
        put(root, name, b"new data\n", T)
    os.chmod(root / "perm", 0o600)
    os.utime(root / "sec", (T + 1, T + 1))
    os.utime(root / "sub/sec", (T - 2, T - 2))
    put(root, "size", b"old\n", T)
    put(root, "samesize", b"old data\n", T)      # same size and time: left alone
    os.chown(root / "owner", 1234, -1)
    os.chown(root / "group", -1, 1234)
    (root / "isdir").mkdir()
    os.symlink("same", root / "islink")


def _state(root, dir_times=True):
    """Every entry's type, bytes, mode, owner and mtime (ns), comparable
    between two runs (inode numbers left out; directory times too where
    the run itself changes them: a source losing files)."""
    out = []
    for name, d in sorted(snapshot(root).items()):
        d = {k: v for k, v in d.items()
             if k != "inode" and (dir_times or d["type"] != "dir" or k != "mtime_ns")}
        out.append((name, sorted(d.items())))
    return out


@pytest.mark.parametrize("role,opts", role_cases(
    [["-ai"], ["-ai", "--modify-window=1"], ["-ai", "--modify-window=-1"], ["-rti"],
     ["-ai", "--remove-source-files"], ["-ai", "--size-only"], ["-aiI"], ["-ai", "-ii"]],
    remote_every=2))
def test_quick_check_as_rsync(tmp_path, role, opts):
    if os.geteuid() != 0:
        pytest.skip("the owner and group cases need root")
    results = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _src(src)
        _dst(dst)
        for d in (src / "sub", dst / "sub", src, dst):
            os.utime(d, (T, T))
        r = run(tool, role, opts, src, dst)
        results[tool] = (r.returncode, sorted(lines(r.stdout)), _state(dst), _state(src, dir_times=False))
    assert results["pysync"] == results["rsync"]
    # Not vacuous: with -a the differing files are itemized, the same one
    # is not (nor "nsec": whole seconds compare), and the same-size
    # same-time file keeps its old bytes.
    if opts == ["-ai"]:
        out = results["pysync"][1]
        assert not any(line.endswith((" same", " nsec")) for line in out)
        for name in ("perm", "sec", "size", "owner", "group", "missing"):
            assert any(line.endswith(" " + name) for line in out), (name, out)
        assert (tmp_path / "pysync" / "dst" / "samesize").read_bytes() == b"old data\n"
