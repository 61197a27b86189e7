"""--ignore-errors, and which source errors hold back --delete: a source
argument that does not exist fails the run (23) but deletes as usual; any
other error on the sender (here ENOTDIR) skips deletion unless
--ignore-errors.  Compared with stock rsync in every role."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.roles import lines, role_cases, sources_command

OLD = 1_500_000_000


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
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{top / 'src'}/", str(other)], top / "dst"),
                           capture_output=True, timeout=120)
        out = [ln for ln in lines(r.stdout)]
        got[tool] = (r.returncode, sorted(p.name for p in (top / "dst").iterdir()), sorted(out))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 23
    deleted = "stale" not in got["pysync"][1]
    assert deleted == (bad == "missing" or "--ignore-errors" in opts)
