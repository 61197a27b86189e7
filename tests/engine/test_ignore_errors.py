"""--ignore-errors, and which source errors hold back --delete: a source
argument that does not exist fails the run (23) but deletes as usual; any
other error on the sender (here ENOTDIR) skips deletion unless
--ignore-errors.  Compared with stock rsync in every role."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.roles import FAKE_RSH, PYSYNC, lines, role_cases

OLD = 1_500_000_000


def _cmd(tool, role, opts, srcs, dst):
    if role == "local":
        return (PYSYNC if tool == "pysync" else ["rsync"]) + opts + srcs + [f"{dst}/"]
    if tool == "rsync":
        client, server = ["rsync"], "rsync"
    elif role.endswith("rsync2pysync"):
        client, server = ["rsync"], "pysync"
    else:
        client, server = PYSYNC, "rsync"
    remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
    if role.startswith("push"):
        return client + opts + remote + srcs + [f"localhost:{dst}/"]
    return client + opts + remote + [f"localhost:{s}" for s in srcs] + [f"{dst}/"]


@pytest.mark.parametrize("bad", ["missing", "notdir"])
@pytest.mark.parametrize("role,opts", role_cases(
    [["-a", "--delete"], ["-a", "--delete", "--ignore-errors"],
     ["-a", "--delete-after", "--ignore-errors"], ["-av", "--delete-after"]], remote_every=2))
def test_deletion_after_source_errors_as_rsync(tmp_path, role, bad, opts):
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        (top / "src").mkdir(parents=True)
        (top / "src" / "a").write_bytes(b"a\n")
        (top / "dst").mkdir()
        (top / "dst" / "stale").write_bytes(b"old\n")
        (top / "notdir").write_bytes(b"a file\n")
        other = top / ("missing" if bad == "missing" else "notdir/x")
        extra = ["--no-i-r"] if tool == "rsync" and role == "local" else []
        r = subprocess.run(_cmd(tool, role, opts + extra, [f"{top / 'src'}/", str(other)], top / "dst"),
                           capture_output=True, timeout=120)
        out = [ln for ln in lines(r.stdout)]
        got[tool] = (r.returncode, sorted(p.name for p in (top / "dst").iterdir()), sorted(out))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 23
    deleted = "stale" not in got["pysync"][1]
    assert deleted == (bad == "missing" or "--ignore-errors" in opts)
