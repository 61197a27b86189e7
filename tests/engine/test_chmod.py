"""--chmod compared with stock rsync: the modes the destination ends with
(the client's side applies the items: a push changes the list it sends,
a pull the list it receives), the -i lines, the exit code, and the
refusal of a malformed argument (exit 1)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from pysync.engine.chmod import ChmodError, parse_chmod, tweak_mode
from tests.helpers.roles import PYSYNC, lines, put, role_cases, run

OLD = 1_500_000_000
SPECS = ["a+s", "Fo-r", "D755", "644", "Dg+s,Fu+x", "a+X", "ug=rwX,o=", "u=rw,go-w", "+t", "Du-x"]


def _modes(root):
    out = {}
    for p, ds, fs in os.walk(root):
        for n in ds + fs:
            full = os.path.join(p, n)
            out[os.path.relpath(full, root)] = stat.S_IMODE(os.lstat(full).st_mode)
    return out


@pytest.mark.parametrize("role,spec", [(p.values[0], p.values[1][0]) for p in
                                       role_cases([[s] for s in SPECS], remote_every=4)])
def test_chmod_as_rsync(tmp_path, role, spec):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        put(src, "f", b"1\n", OLD, 0o640)
        put(src, "x", b"#!\n", OLD, 0o750)
        put(src, "d/g", b"2\n", OLD, 0o604)
        os.symlink("f", src / "l")
        os.utime(src / "d", (OLD, OLD))
        os.utime(src, (OLD, OLD))
        dst.mkdir()
        r = run(tool, role, ["-ai", f"--chmod={spec}"], src, dst)
        got[tool] = (r.returncode, _modes(dst), sorted(lines(r.stdout)))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0


@pytest.mark.parametrize("spec", ["g=u", "q", "", "u+q", "D8", "DF+x", "7777777"])
def test_bad_chmod_refused_as_rsync(tmp_path, spec):
    (tmp_path / "s").mkdir()
    codes = []
    for cmd in (["rsync"], PYSYNC):
        r = subprocess.run(cmd + ["-a", f"--chmod={spec}", f"{tmp_path}/s/", f"{tmp_path}/d/"],
                           capture_output=True, timeout=30)
        codes.append(r.returncode)
        assert b"Invalid argument passed to --chmod" in r.stderr
    assert codes == [1, 1]
    with pytest.raises(ChmodError):
        parse_chmod(spec)


def test_tweak_mode_table():
    umask = 0o022
    cases = [("a+s", 0o100640, 0o4640), ("u=rw,go-w", 0o40755, 0o655), ("a+X", 0o100640, 0o640),
             ("a+X", 0o100650, 0o751), ("+x", 0o100600, 0o711), ("=r", 0o100777, 0o444),
             ("g+s", 0o40755, 0o2755), ("o=t", 0o40777, 0o1770), ("F600", 0o40755, 0o755)]
    for spec, mode, want in cases:
        assert stat.S_IMODE(tweak_mode(mode, parse_chmod(spec, umask))) == want, spec
