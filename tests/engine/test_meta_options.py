"""rsync's remaining metadata options (-U/--atimes, -UU/--open-noatime,
-E, --super/--no-super, --copy-devices, --write-devices, -N), each run by
pysync and by stock rsync on identical trees: same resulting tree (with
the metadata in question: access times from os.stat, modes, owners), the
same itemized output and the same exit code; locally and over a remote
shell in every role (pysync client <-> rsync server, rsync client <->
pysync server)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.trees import compare_trees

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000
A_SRC, A_DST = 1_500_000_000, 1_400_000_000     # access times, far from "now"
ROOT = os.geteuid() == 0

ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync",
         "pull-rsync2pysync"]


def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644, atime: int = A_SRC):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (atime, mtime))


def fix_dirs(root: Path, mtime: int):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def make_src(root: Path, owner: int | None = None):
    put(root, "same.txt", b"unchanged\n", T_OLD, atime=A_SRC)
    put(root, "changed.txt", b"new content, longer\n", T_NEW, atime=A_SRC + 1)
    put(root, "new.txt", b"only in the source\n", T_NEW, atime=A_SRC + 2)
    put(root, "tool.sh", b"#!/bin/sh\n", T_OLD, 0o755, atime=A_SRC + 3)
    put(root, "plain.sh", b"#!/bin/sh\necho\n", T_OLD, 0o640, atime=A_SRC + 4)
    put(root, "private", b"secret\n", T_OLD, 0o700, atime=A_SRC + 5)
    put(root, "d/inner.txt", b"inner\n", T_OLD, atime=A_SRC)      # same atime: XMIT_SAME_ATIME
    put(root, "d/other.txt", b"other\n", T_NEW, atime=A_SRC + 6)
    os.symlink("same.txt", root / "link")
    if owner is not None:
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                os.lchown(os.path.join(d, n), owner, owner)
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD, atime=A_DST)           # only the atime differs
    put(root, "changed.txt", b"old content\n", T_OLD, atime=A_DST)
    put(root, "tool.sh", b"#!/bin/sh\n", T_OLD, 0o604, atime=A_SRC + 3)  # -E: gains x
    put(root, "plain.sh", b"#!/bin/sh\necho\n", T_OLD, 0o751, atime=A_SRC + 4)  # -E: loses x
    put(root, "private", b"secret\n", T_OLD, 0o600, atime=A_DST)
    put(root, "d/inner.txt", b"inner\n", T_OLD, atime=A_SRC)              # up to date
    fix_dirs(root, T_OLD)


def run_tool(tool: str, role: str, opts, src: Path, dst: Path, cwd: Path, wrap=()):
    if role == "local":
        client = PYSYNC if tool == "pysync" else ["rsync"]
        cmd = client + opts + [f"{src}/", f"{dst}/"]
    else:
        if tool == "rsync":
            client, server = ["rsync"], "rsync"
        elif role.endswith("rsync2pysync"):
            client, server = ["rsync"], "pysync"
        else:
            client, server = PYSYNC, "rsync"
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        if role.startswith("push"):
            cmd = client + opts + remote + [f"{src}/", f"localhost:{dst}/"]
        else:
            cmd = client + opts + remote + [f"localhost:{src}/", f"{dst}/"]
    return subprocess.run([*wrap, *cmd], capture_output=True, timeout=120, cwd=cwd)


def lines(out: bytes):
    keep = []
    for line in out.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith(("sent ", "total size", "building file",
                                                "receiving file", "sending incremental",
                                                "receiving incremental")):
            continue
        keep.append(line)
    return keep


def atimes(root: Path) -> dict:
    """Access times (whole seconds) of the regular files under ``root``."""
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out[os.path.relpath(p, root)] = st.st_atime_ns // 1_000_000_000
    return out


CASES = {
    "atimes": ["-aUi"],
    "atimes-twice": ["-aUUi"],
    "atimes-open-noatime": ["-aUi", "--open-noatime"],
    "atimes-no-perms": ["-rltUi"],
    "no-atimes": ["-aUi", "--no-U"],
    "executability": ["-rltEi"],
    "executability-with-perms": ["-aEi"],
    "executability-atimes": ["-rltEUi"],
    "super": ["-ai", "--super"],
    "no-super": ["-ai", "--no-super"],
    "no-crtimes": ["-ai", "--no-crtimes"],
}


def _run_both(tmp_path, opts, role, owner=None):
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        make_src(src, owner)      # a tree each: reading a source changes its atimes
        make_dst(dst)
        results[tool] = (run_tool(tool, role, opts, src, dst, top), top)
    return results


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_option_matches_rsync(tmp_path, case, role):
    opts = CASES[case]
    owner = 4321 if "super" in case and ROOT else None
    results = _run_both(tmp_path, opts, role, owner)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert rr.returncode == 0, rr.stderr.decode()
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    # Access times first: comparing the contents reads the files.
    got = atimes(ptop / "dst")
    if "U" in opts[0] and "--no-U" not in opts:
        assert got == atimes(rtop / "dst")
        # The sender's access times, not the ones the receiver had.
        assert got["same.txt"] == A_SRC and got["private"] == A_SRC + 5
        assert got["new.txt"] == A_SRC + 2 and got["d/other.txt"] == A_SRC + 6
    assert compare_trees(ptop / "dst", rtop / "dst") == []
    assert lines(pr.stdout) == lines(rr.stdout)
    dst = ptop / "dst"
    if "E" in opts[0] and "p" not in opts[0] and "-a" not in opts[0]:
        assert stat.S_IMODE(os.stat(dst / "tool.sh").st_mode) == 0o705
        assert stat.S_IMODE(os.stat(dst / "plain.sh").st_mode) == 0o640
    if owner is not None and role == "local":
        # As root, --no-super leaves owners alone; --super sets them.
        want = 0 if case == "no-super" else owner
        assert os.stat(dst / "new.txt").st_uid == want


def test_open_noatime_keeps_the_source_atime(tmp_path):
    """-UU (and --open-noatime): pysync's sender reads without touching the
    source's access times.  (Debian's rsync 3.2.7 opens its source files
    without O_NOATIME, so this one is pysync's own.)"""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_src(src)
    before = atimes(src)
    r = subprocess.run(PYSYNC + ["-aUU", f"{src}/", f"{dst}/"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert atimes(dst) == before
    assert atimes(src) == before


def test_open_noatime_refused_is_retried_without_it(tmp_path, monkeypatch):
    """O_NOATIME on a file we do not own fails with EPERM: rsync then
    opens it without the flag, and so does pysync's sender."""
    from pysync.engine import sender
    f = tmp_path / "f"
    f.write_bytes(b"data")
    seen = []
    real_open = os.open
    refuse_all = [False]

    def fake_open(path, flags, *a, **kw):
        seen.append(bool(flags & os.O_NOATIME))
        if flags & os.O_NOATIME or refuse_all[0]:
            raise PermissionError(1, "Operation not permitted")
        return real_open(path, flags, *a, **kw)
    monkeypatch.setattr(sender.os, "open", fake_open)
    fd = sender.open_source(bytes(f), os.O_RDONLY | os.O_NOATIME)
    try:
        assert os.read(fd, 10) == b"data"
    finally:
        os.close(fd)
    assert seen == [True, False]
    # Refused without the flag too: that answer stands.
    seen.clear()
    refuse_all[0] = True
    with pytest.raises(PermissionError):
        sender.open_source(bytes(f), os.O_RDONLY | os.O_NOATIME)
    assert seen == [True, False]
    # No O_NOATIME asked: no second try.
    seen.clear()
    with pytest.raises(PermissionError):
        sender.open_source(bytes(f), os.O_RDONLY)
    assert seen == [False]


@pytest.mark.parametrize("argv", [["-N"], ["--crtimes"], ["-aN"]])
def test_crtimes_is_refused_as_rsync_refuses_it(tmp_path, argv):
    src = tmp_path / "src"
    make_src(src)
    outs = []
    for client in (["rsync"], PYSYNC):
        r = subprocess.run(client + argv + [f"{src}/", f"{tmp_path}/d-{len(outs)}/"],
                           capture_output=True, timeout=60)
        outs.append((r.returncode, r.stderr.decode().splitlines()[0].split(": ", 1)[1]))
    assert outs[0] == outs[1] == (1, "This rsync does not support --crtimes (-N)")
    assert not (tmp_path / "d-1").exists()


def test_crtimes_refused_by_a_pysync_server(tmp_path):
    src = tmp_path / "src"
    make_src(src)
    r = subprocess.run(PYSYNC + ["--server", "-N",
                        ".", str(tmp_path / "d")], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "The server does not support --crtimes (-N)" in r.stderr.decode()


# ---- devices ---------------------------------------------------------------------------

@pytest.fixture
def loop_device(tmp_path):
    """A loop device over a 64 KiB file of random bytes: (device path,
    backing file)."""
    if not ROOT or shutil_which("losetup") is None:
        pytest.skip("needs root and losetup for a loop device")
    img = tmp_path / "img"
    img.write_bytes(os.urandom(65536))
    r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device: {r.stderr.strip()}")
    dev = r.stdout.strip()
    yield dev, img
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def shutil_which(name):
    import shutil
    return shutil.which(name)


def _device_node(path: Path, dev: str, mode: int = 0o600):
    st = os.stat(dev)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFBLK | mode, st.st_rdev)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opts", [["-ai", "--copy-devices"], ["-ri", "--copy-devices"]],
                         ids=["a", "r"])
def test_copy_devices_matches_rsync(tmp_path, loop_device, opts, role):
    """--copy-devices: a device in the source arrives as a regular file
    holding the device's contents."""
    dev, img = loop_device
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "f.txt", b"a file\n", T_OLD)
        _device_node(src / "disk", dev, 0o640)
        dst.mkdir(parents=True)
        results[tool] = (run_tool(tool, role, opts, src, dst, top), top)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert rr.returncode == 0, rr.stderr.decode()
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    for top in (rtop, ptop):
        st = os.lstat(top / "dst" / "disk")
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        assert (top / "dst" / "disk").read_bytes() == img.read_bytes()
    # The device's mtime is "now" on each run: not compared.
    assert compare_trees(ptop / "dst", rtop / "dst", times=False) == []
    assert lines(pr.stdout) == lines(rr.stdout)


def _attach(img: Path) -> str:
    r = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device: {r.stderr.strip()}")
    return r.stdout.strip()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opts", [["-ai", "--write-devices"], ["-rtI", "--write-devices", "-i"],
                                  ["-ai", "--write-devices", "--no-W"]],
                         ids=["a", "rtI", "delta"])
def test_write_devices_matches_rsync(tmp_path, opts, role):
    """--write-devices: a regular file whose destination is a device node
    is written into the device (which stays a device node)."""
    if not ROOT or shutil_which("losetup") is None:
        pytest.skip("needs root and losetup for a loop device")
    old = os.urandom(65536)
    new = old[:32768] + os.urandom(32768)     # half the blocks match (delta)
    results, devs = {}, []
    try:
        for tool in ("rsync", "pysync"):
            top = tmp_path / tool
            src, dst = top / "src", top / "dst"
            put(src, "disk", new, T_NEW)
            put(src, "f.txt", b"a file\n", T_OLD)
            img = top / "img"
            img.write_bytes(old)
            devs.append(_attach(img))
            _device_node(dst / "disk", devs[-1])
            os.utime(dst / "disk", (T_OLD, T_OLD))
            fix_dirs(dst, T_OLD)
            r = run_tool(tool, role, opts, src, dst, top)
            subprocess.run(["blockdev", "--flushbufs", devs[-1]], capture_output=True)
            results[tool] = (r, top)
    finally:
        for d in devs:
            subprocess.run(["losetup", "-d", d], capture_output=True)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert rr.returncode == 0, rr.stderr.decode()
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    for top in (rtop, ptop):
        assert stat.S_ISBLK(os.lstat(top / "dst" / "disk").st_mode)
        assert (top / "img").read_bytes() == new
    # The device numbers differ (one loop device each).
    assert _modes(ptop / "dst") == _modes(rtop / "dst")
    assert lines(pr.stdout) == lines(rr.stdout)


def _modes(root: Path) -> dict:
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0, st.st_size)
    return out


# ---- a receiver refused its chown --------------------------------------------------------

NO_CHOWN = ["setpriv", "--bounding-set", "-chown", "--inh-caps", "-chown", "--"]


def _errors(err: bytes, top: Path):
    """stderr lines, with the run's directory and temp-file names made
    comparable."""
    import re
    out = []
    for line in err.decode().splitlines():
        line = line.replace(str(top), "TOP")
        line = re.sub(r"/\.([^/\"]+)\.[A-Za-z0-9]{6}\"", r"/.\1.XXXXXX\"", line)
        # The closing line's place and role tag are each program's own.
        line = re.sub(r" at \S+ \[\w+=[^]]*\]$", "", line)
        out.append(line)
    return out


@pytest.mark.skipif(not ROOT or shutil_which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
@pytest.mark.parametrize("extra", [[], ["--super"], ["--no-super"]], ids=["root", "super", "no-super"])
def test_refused_chown_is_reported_as_rsync_does(tmp_path, extra, role):
    """Root without CAP_CHOWN (as --super is for a user): rsync tries the
    chown, logs "chown ... failed", leaves the file's mode and time and
    exits 23; --no-super does not try."""
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        make_src(src, owner=4321)
        dst.mkdir(parents=True)
        r = run_tool(tool, role, ["-ai", *extra], src, dst, top, wrap=NO_CHOWN)
        results[tool] = (r, top)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    # --no-super is not sent: a pushing rsync's server tries the chown.
    refused = extra != ["--no-super"] or role == "push-rsync2pysync"
    assert rr.returncode == (23 if refused else 0), rr.stderr.decode()
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    assert sorted(_errors(pr.stderr, ptop)) == sorted(_errors(rr.stderr, rtop))
    assert compare_trees(ptop / "dst", rtop / "dst", times=False, owners=True) == []
    assert lines(pr.stdout) == lines(rr.stdout)
