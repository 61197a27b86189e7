"""-H: the itemized lines of a hard-link group's followers, compared with
stock rsync (--no-i-r, the mode pysync's list is always in): their order
(the followers after the leader in list order, then those before it from
last to first) and their flags (a follower that is relinked is compared
with what it was: "hf..t...... b => a")."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.roles import lines, sources_command

OLD = 1_500_000_000


def _group(root, names, data, mtime, mode=0o644):
    root.mkdir(parents=True, exist_ok=True)
    first = root / names[0]
    first.write_bytes(data)
    os.chmod(first, mode)
    for n in names[1:]:
        os.link(first, root / n)
    os.utime(first, (mtime, mtime))


def _scenario(top, kind):
    src, dst = top / "src", top / "dst"
    _group(dst, ["a", "b", "c", "d"], b"old data\n", OLD)
    if kind == "time":               # same content, new time: the leader is sent
        _group(src, ["a", "b", "c", "d"], b"old data\n", OLD + 100)
    elif kind == "middle":           # a and d missing: b leads, c is relinked
        _group(src, ["a", "b", "c", "d"], b"new data, longer\n", OLD + 100, 0o640)
        (dst / "a").unlink()
        (dst / "d").unlink()
    elif kind == "fresh-tail":       # only d exists: the others link to it
        _group(src, ["a", "b", "c", "d"], b"new\n", OLD + 5)
        for n in "abc":
            (dst / n).unlink()
    os.utime(dst, (OLD, OLD))
    os.utime(src, (OLD, OLD))
    return src, dst


@pytest.mark.parametrize("kind", ["time", "middle", "fresh-tail"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_follower_lines_as_rsync(tmp_path, role, kind):
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = _scenario(tmp_path / tool, kind)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHi"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = lines(r.stdout)
        st = {n: os.stat(dst / n) for n in "abcd"}
        linked = len({(s.st_dev, s.st_ino) for s in st.values()}) == 1
        got[tool] = ([ln for ln in out if ln.startswith("hf")], sorted(out), linked)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][2]


def _xattr_scenario(top):
    """A group whose data is unchanged but whose time and xattrs are new:
    the leader is sent with its xattrs, the follower relinked to it."""
    src, dst = top / "src", top / "dst"
    _group(dst, ["a", "b"], b"same data\n", OLD)
    _group(src, ["a", "b"], b"same data\n", OLD + 100)
    os.setxattr(src / "a", "user.pysync.test", b"new value")
    os.utime(dst, (OLD, OLD))
    os.utime(src, (OLD, OLD))
    return src, dst


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync",
                                  "pull-pysync2rsync", "pull-rsync2pysync"])
def test_follower_with_xattrs_as_rsync(tmp_path, role):
    """-HX: the follower's record reports xattrs against the leader it is
    now linked to ("hf..t...... b => a"), and when a record does report
    them the xattr request follows it on the wire (a record without it
    left the sender waiting: the run hung)."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.pysync.probe", b"1")
    except OSError as e:
        pytest.skip(f"no user xattrs on {tmp_path}: {e}")
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = _xattr_scenario(tmp_path / tool)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHXi"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        sa, sb = os.stat(dst / "a"), os.stat(dst / "b")
        got[tool] = (sorted(lines(r.stdout)), sa.st_ino == sb.st_ino,
                     os.getxattr(dst / "b", "user.pysync.test"))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1:] == (True, b"new value")


@pytest.mark.parametrize("backup", [["-b"], ["--backup-dir=../bak"]], ids=["suffix", "dir"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_relinked_follower_is_backed_up_as_rsync(tmp_path, role, backup):
    """-Hb: a follower that is relinked to its leader replaces the file
    that was there, which is backed up first (hlink.c maybe_hard_link), as
    any replaced file is.  Found by interop/fuzz.py: pysync lost it."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _group(src, ["a", "b"], b"same data\n", OLD)
        _group(dst, ["a"], b"same data\n", OLD)
        _group(dst, ["b"], b"same data\n", OLD)   # the same data, not linked
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHi"] + backup + extra, [f"{src}/"], dst),
                           cwd=dst, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        kept = sorted(str(p.relative_to(tmp_path / tool)) for p in (tmp_path / tool).rglob("b*")
                      if p.is_file())
        got[tool] = (sorted(lines(r.stdout)), kept,
                     os.stat(dst / "a").st_ino == os.stat(dst / "b").st_ino)
    assert got["pysync"] == got["rsync"]
    assert len(got["pysync"][1]) == 3 and got["pysync"][2]


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_dry_run_into_missing_destination_as_rsync(tmp_path, role):
    """-Hn into a destination that does not exist: the follower is listed
    as a link to its leader, no error.  Found by interop/fuzz.py: pysync
    failed with 'link ... failed: None (None)' and exit 23."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _group(src, ["b", "d.log/deep"][:1], b"linked\n", OLD)
        (src / "d.log").mkdir()
        os.link(src / "b", src / "d.log" / "deep")
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHin"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        out = [ln for ln in lines(r.stdout) if not ln.startswith("created directory")]
        got[tool] = (r.returncode, sorted(out), dst.exists())
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and not got["pysync"][2]


@pytest.mark.parametrize("kind", ["dir", "symlink"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_follower_replacing_other_type_is_new_as_rsync(tmp_path, role, kind):
    """A follower whose name holds a directory or a symlink here: that is
    removed and the follower itemized as new ("hf+++++++++ b => a"), not
    compared with it.  Found by interop/fuzz.py."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _group(src, ["a", "b"], b"linked data\n", OLD)
        _group(dst, ["a"], b"linked data\n", OLD)
        if kind == "dir":
            (dst / "b").mkdir()
        else:
            os.symlink("../elsewhere", dst / "b")
        os.utime(src, (OLD, OLD))
        os.utime(dst, (OLD, OLD))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHi"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)),
                     os.stat(dst / "a").st_ino == os.lstat(dst / "b").st_ino)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and got["pysync"][2]


@pytest.mark.parametrize("kind", ["dir", "symlink"])
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_follower_before_leader_replacing_other_type_as_rsync(tmp_path, role, kind):
    """The same with the follower listed before its leader (the leader is
    new here): rsync's generator removed what was in the way when it met
    the follower, so it is itemized as new ("hf+++++++++ deep => z")."""
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _group(src, ["deep", "z"], b"linked data\n", OLD)
        dst.mkdir(parents=True)
        if kind == "dir":
            (dst / "deep").mkdir()
        else:
            os.symlink("../elsewhere", dst / "deep")
        os.utime(src, (OLD, OLD))
        os.utime(dst, (OLD, OLD))
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, ["-aHi"] + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)),
                     os.stat(dst / "deep").st_ino == os.lstat(dst / "z").st_ino)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0 and got["pysync"][2]
