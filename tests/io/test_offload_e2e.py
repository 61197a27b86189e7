"""Local copy offload end to end (engine/offload.py): a local copy's child
copies whole files in the kernel -- copy_file_range on ext4, FICLONE on
xfs -- and the user sees what rsync shows: the same tree, the same -i/-v
lines, the same --stats counts and sizes, the same exit code.  Remote
transfers are untouched; every fallback (other file system, the cache
rules of --direct-io/--drop-cache, a source that changes) streams the file
as before."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.trees import compare_trees
from iohelp import HAVE_LOOP, MiB, evict, loop_fs, mkfs_xfs_missing, resident

from pysync.engine import offload as eo
from pysync.io import offload as io_offload  # the copier loads clone_or_copy from here when it copies
from pysync.io.attrs import AttrPolicy
from pysync.io.sink import WriteMode
from pysync.io.tree import DestTree
from pysync.protocol.flist import FileEntry
from pysync.transport.local import SideChannel

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
PYSYNC_ONLY = ("--drop-cache", "--direct-io")
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000
HAVE_STRACE = shutil.which("strace") is not None


def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))


def fix_dirs(root: Path, mtime: int):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def make_src(root: Path):
    put(root, "big.bin", os.urandom(3 * MiB + 5), T_NEW)
    put(root, "exe.bin", os.urandom(MiB), T_NEW, 0o755)
    put(root, "same.bin", b"s" * (300 << 10), T_OLD)
    put(root, "mid.bin", os.urandom(200_000), T_NEW)
    put(root, "small.txt", b"small\n", T_NEW)
    put(root, "d/inner.bin", os.urandom(2 * MiB), T_NEW, 0o600)
    os.link(root / "big.bin", root / "d/big-link.bin")
    os.symlink("big.bin", root / "sym")
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    rnd = random.Random(7)       # the same for both tools
    put(root, "big.bin", rnd.randbytes(MiB), T_OLD)
    put(root, "exe.bin", b"x" * 100, T_OLD, 0o644)
    put(root, "same.bin", b"s" * (300 << 10), T_OLD)
    put(root, "d/inner.bin", rnd.randbytes(2 * MiB), T_OLD)
    put(root, "extra.bin", b"not in the source\n", T_OLD)
    fix_dirs(root, T_OLD)


def run(cmd, cwd=None, timeout=180):
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout, cwd=cwd)


def shown(out: bytes) -> list:
    """What must match rsync: item and -v lines, and the --stats lines
    that count files and sizes (not literal/matched data, byte counts or
    times, which honestly differ)."""
    keep = []
    for line in out.decode("utf-8", "replace").replace("dst-pysync", "dst-rsync").splitlines():
        if not line.strip() or line.startswith((
                "sent ", "total size", "building file", "receiving file", "Literal data",
                "Matched data", "File list", "Total bytes", "sending incremental")):
            continue
        keep.append(line)
    return keep


def stat_value(out: bytes, label: str) -> int:
    m = re.search(rf"^{label}: ([\d,]+)", out.decode(), re.M)
    assert m, out.decode()
    return int(m.group(1).replace(",", ""))


def both(tmp_path, opts, src, with_dst=True, dst_parent=None, wrap=()):
    """rsync and pysync (under ``wrap``, e.g. strace) on the same input;
    returns {tool: (result, dst)}."""
    out = {}
    for tool in ("rsync", "pysync"):
        dst = (dst_parent or tmp_path) / f"dst-{tool}"
        if with_dst:
            make_dst(dst)
        cmd = (["rsync"] + [o for o in opts if o not in PYSYNC_ONLY]) if tool == "rsync" \
            else list(wrap) + PYSYNC + opts
        out[tool] = (run(cmd + [f"{src}/", f"{dst}/"]), dst)
    return out


def assert_same(out, **kw):
    (rr, rdst), (pr, pdst) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    assert compare_trees(pdst, rdst, **kw) == []
    assert shown(pr.stdout) == shown(rr.stdout)
    assert pr.stderr == rr.stderr == b""


# Literal data when the child copied every file of >= OFFLOAD_MIN itself:
# only the small files crossed the socket.
SMALL_ONLY = 64 << 10

CASES = {
    "new": (["-ai"], False, True),
    "update": (["-ai"], True, True),
    "verbose": (["-av"], True, True),
    "checksum": (["-aic"], True, True),
    "ignore-times": (["-a", "-v", "-I"], True, True),
    "backup": (["-ai", "-b", "--delete"], True, True),
    "hard-links": (["-aiH"], False, True),
    "no-perms": (["-ai", "--no-p"], True, True),
    "size-only": (["-ai", "--size-only"], True, True),
    # delta transfer: files with a basis stream; new ones are still copied
    "no-whole-file": (["-ai", "--no-W"], True, False),
    # ext4 has no reflink: the cache rules forbid copy_file_range
    "drop-cache": (["-ai", "--drop-cache"], True, False),
    "direct-io": (["-ai", "--direct-io"], True, False),
    "dry-run": (["-ain"], True, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_local_copy_matches_rsync(tmp_path, case):
    opts, with_dst, offloaded = CASES[case]
    src = tmp_path / "src"
    make_src(src)
    out = both(tmp_path, opts + ["--stats"], src, with_dst)
    assert_same(out, dir_times=case != "backup")
    pr = out["pysync"][0]
    literal = stat_value(pr.stdout, "Literal data")
    transferred = stat_value(pr.stdout, "Total transferred file size")
    if offloaded:
        assert transferred > 4 * MiB and literal < SMALL_ONLY
    elif case == "no-whole-file":
        assert literal < transferred    # new files copied, changed ones by delta
    elif case != "dry-run":
        assert literal >= transferred - SMALL_ONLY   # everything streamed


def test_progress_lines_as_rsync(tmp_path):
    """-v --progress: the names, each file's final line (size, 100%, xfr#,
    to-chk) as rsync prints them; rates and times differ by nature."""
    src = tmp_path / "src"
    make_src(src)
    out = both(tmp_path, ["-av", "--progress"], src, with_dst=False)
    (rr, rdst), (pr, pdst) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode == 0
    assert compare_trees(pdst, rdst) == []
    final = re.compile(r"^\s*([\d,]+)\s+100%.*(\(xfr#\d+, to-chk=\d+/\d+\))$")

    def seen(o):
        keep = []
        for ln in o.decode().replace("\r", "\n").splitlines():
            m = final.match(ln)
            if m:
                keep.append(f"{m.group(1)} {m.group(2)}")
            elif ln.strip() and not ln.startswith((" ", "sent ", "total size", "building",
                                                   "sending", "created")) \
                    and not ln.endswith("to consider"):     # rsync lists incrementally
                keep.append(ln)
        return keep
    assert seen(pr.stdout) == seen(rr.stdout)
    assert len([x for x in seen(pr.stdout) if "xfr#" in x]) == 7


ROLES = ["push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync"]


@pytest.mark.parametrize("role", ROLES)
def test_remote_transfers_unchanged(tmp_path, role):
    """Over -e nothing is offloaded: every byte is literal data on the
    wire, as with stock rsync at both ends."""
    src = tmp_path / "src"
    make_src(src)
    res = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"dst-{tool}"
        dst.mkdir()
        if tool == "rsync":
            client, server = ["rsync"], "rsync"
        elif role == "push-rsync2pysync":
            client, server = ["rsync"], "pysync"
        else:
            client, server = PYSYNC, "rsync"
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        where = [f"{src}/", f"localhost:{dst}/"] if role.startswith("push") \
            else [f"localhost:{src}/", f"{dst}/"]
        env = dict(os.environ, PATH=f"{REPO / '.bin'}:{os.environ['PATH']}")
        r = subprocess.run(client + ["-ai", "--stats"] + remote + where, capture_output=True,
                           timeout=180, env=env)
        res[tool] = (r, dst)
    (rr, rdst), (pr, pdst) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert compare_trees(pdst, rdst) == []
    items = lambda o: [ln for ln in shown(o) if not ln.startswith(("Number of", "Total"))]
    assert items(pr.stdout) == items(rr.stdout)
    total = stat_value(rr.stdout, "Total transferred file size")
    assert stat_value(pr.stdout, "Literal data") == stat_value(rr.stdout, "Literal data") == total


# ---- what the kernel sees -----------------------------------------------------------

_SYSCALL = re.compile(r"^\d+\s+(\w+)\(.*\)\s+=\s+(-?\d+)")
_UNFINISHED = re.compile(r"^(\d+)\s+(.*)<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")
_DATA_CALLS = {"read", "pread64", "readv", "preadv", "preadv2", "write", "pwrite64", "writev",
               "pwritev", "pwritev2", "sendmsg", "sendto", "recvfrom", "recvmsg", "sendfile",
               "splice"}


def traced(log: Path):
    """(bytes per data syscall name, list of (name, args text, result))."""
    moved, calls = {}, []
    pending = {}
    for line in log.read_text(errors="replace").splitlines():
        m = _UNFINISHED.match(line)
        if m:
            pending[m.group(1)] = m.group(2)
            continue
        m = _RESUMED.match(line)
        if m:      # a call another thread interrupted in strace's output
            line = f"{m.group(1)} {pending.pop(m.group(1), '')}{m.group(2)}"
        m = _SYSCALL.match(line)
        if not m:
            continue
        name, res = m.group(1), int(m.group(2))
        calls.append((name, line, res))
        if res > 0 and (name in _DATA_CALLS or name == "copy_file_range"):
            moved[name] = moved.get(name, 0) + res
    return moved, calls


def strace_cmd(log: Path):
    if not HAVE_STRACE:
        pytest.skip("strace is not installed")
    return ["strace", "-f", "-qq", "-o", str(log), "-e",
            "trace=" + ",".join(sorted(_DATA_CALLS | {"copy_file_range", "ioctl"}))]


def test_ext4_uses_copy_file_range_and_moves_no_data(tmp_path):
    src = tmp_path / "src"
    size = 48 * MiB + 3
    put(src, "f.bin", os.urandom(size), T_NEW)
    put(src, "g.bin", os.urandom(MiB), T_NEW)
    fix_dirs(src, T_OLD)
    log = tmp_path / "strace.log"
    out = both(tmp_path, ["-ai", "--stats"], src, with_dst=False, wrap=strace_cmd(log))
    assert_same(out)
    moved, _ = traced(log)
    assert moved.get("copy_file_range", 0) == size + MiB
    # Interpreter start-up reads its modules; the file data is not read,
    # written or sent by anyone.
    assert sum(v for k, v in moved.items() if k != "copy_file_range") < 12 * MiB, moved


@pytest.mark.parametrize("flag", ["--drop-cache", "--direct-io"])
def test_ext4_cache_modes_leave_no_pages(tmp_path, flag):
    """copy_file_range would leave both copies cached: with these flags it is
    never used on ext4; the streamed path's cache rules apply."""
    src = tmp_path / "src"
    size = 64 * MiB + 7
    put(src, "f.bin", os.urandom(size), T_NEW)
    fix_dirs(src, T_OLD)
    log = tmp_path / "strace.log"
    wrap = strace_cmd(log)
    evict(src / "f.bin")
    r = run(wrap + PYSYNC + ["-ai", flag, f"{src}/", f"{tmp_path}/traced/"])
    assert r.returncode == 0, r.stderr.decode()
    assert resident(tmp_path / "traced" / "f.bin") < size // 20
    if flag == "--drop-cache":      # the read side's rule (--direct-io is about writes)
        assert resident(src / "f.bin") < size // 20
    moved, _ = traced(log)
    assert "copy_file_range" not in moved
    out = both(tmp_path, ["-ai", flag], src, with_dst=False)   # and the output is rsync's
    assert_same(out)


@pytest.fixture(scope="module")
def xfs_reflink(tmp_path_factory):
    """xfs with reflink (mkfs.xfs -m reflink=1) on a loop device."""
    if not HAVE_LOOP:
        pytest.skip("needs root, losetup and /dev/loop-control")
    reason = mkfs_xfs_missing()
    if reason:
        pytest.skip(reason)
    with loop_fs(tmp_path_factory.mktemp("xfs"), "xfs", 400, mkfs_args=("-m", "reflink=1")) as m:
        yield m


def _filefrag_shared(path: Path) -> bool:
    if not shutil.which("filefrag"):
        return True
    r = run(["filefrag", "-v", path])
    return "shared" in r.stdout.decode()


@pytest.mark.parametrize("flags", [[], ["--drop-cache"], ["--direct-io", "--drop-cache"]])
def test_xfs_reflink(xfs_reflink, tmp_path, flags):
    """xfs (mkfs default reflink=1): FICLONE shares the extents, in every
    cache mode; no data is read or written and nothing is cached."""
    base = xfs_reflink / f"e2e-{len(flags)}"
    src = base / "src"
    size = 24 * MiB + 1
    put(src, "f.bin", os.urandom(size), T_NEW)
    put(src, "d/g.bin", os.urandom(MiB + 17), T_NEW, 0o600)
    fix_dirs(src, T_OLD)
    log = tmp_path / "strace.log"
    wrap = strace_cmd(log)
    try:
        evict(src / "f.bin")
        r = run(wrap + PYSYNC + ["-a"] + flags + [f"{src}/", f"{base}/traced/"])
        assert r.returncode == 0, r.stderr.decode()
        assert resident(base / "traced" / "f.bin") == 0
        assert resident(src / "f.bin") == 0
        moved, calls = traced(log)
        clones = [c for c in calls if c[0] == "ioctl" and "FICLONE" in c[1] and c[2] == 0]
        assert len(clones) == 2
        assert "copy_file_range" not in moved
        assert sum(moved.values()) < 12 * MiB, moved
        assert _filefrag_shared(base / "traced" / "f.bin")
        out = both(tmp_path, ["-ai", "--stats"] + flags, src, with_dst=False, dst_parent=base)
        assert_same(out)
        assert stat_value(out["pysync"][0].stdout, "Literal data") == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_cross_device_falls_back_to_the_stream(tmpfs64, tmp_path):
    """tmpfs source, ext4 destination: FICLONE and copy_file_range refuse
    (EXDEV/EOPNOTSUPP) or -- on kernels that copy across -- do it; either way
    the user sees rsync's output and tree."""
    src = tmpfs64 / "src"
    put(src, "f.bin", os.urandom(20 * MiB + 9), T_NEW)
    put(src, "g.bin", os.urandom(300_000), T_NEW)
    fix_dirs(src, T_OLD)
    log = tmp_path / "strace.log"
    out = both(tmp_path, ["-ai", "--stats"], src, with_dst=True, wrap=strace_cmd(log))
    assert_same(out)
    moved, calls = traced(log)
    refused = [c for c in calls if c[0] == "copy_file_range" and c[2] < 0]
    literal = stat_value(out["pysync"][0].stdout, "Literal data")
    if refused:
        assert literal == 20 * MiB + 9 + 300_000     # everything went over the stream
    else:
        assert moved.get("copy_file_range") == 20 * MiB + 9 + 300_000


def test_no_space_left_streams_and_fails_like_rsync(ext4_64m, tmp_path):
    """ENOSPC in the kernel copy is not reported by the copy: the stream
    takes over and fails as rsync does (exit 11), old file intact, no temp
    file left."""
    src = tmp_path / "src"
    put(src, "huge.bin", os.urandom(80 * MiB), T_NEW)
    res = {}
    for tool in ("rsync", "pysync"):
        dst = ext4_64m / tool
        put(dst, "huge.bin", b"old\n", T_OLD)
        cmd = (["rsync"] if tool == "rsync" else PYSYNC) + ["-a", f"{src}/", f"{dst}/"]
        res[tool] = (run(cmd), dst)
        assert sorted(os.listdir(dst)) == ["huge.bin"]
        assert (dst / "huge.bin").read_bytes() == b"old\n"
        shutil.rmtree(dst)
    assert res["pysync"][0].returncode == res["rsync"][0].returncode == 11
    assert b"No space left on device (28)" in res["pysync"][0].stderr


# ---- the copier on its own ----------------------------------------------------------

class _Cfg:
    protocol = 32
    backups = None
    temp_dir_fd = None
    fsync = False


def _pair(tmp_path, files):
    """A SourceTable and a LocalCopier joined by a socketpair, table sent."""
    a, b = (SideChannel(s) for s in socket.socketpair())
    flist = []
    for name, data in files:
        p = tmp_path / "s" / name
        put(tmp_path / "s", name, data, T_NEW)
        st = os.stat(p)
        e = FileEntry(name.encode(), st.st_mode, st.st_size, T_NEW, 0)
        e.src = str(p).encode()
        flist.append(e)
    table = eo.SourceTable(a)
    table.send(flist)
    copier = eo.LocalCopier(b)
    copier.receive_table()
    (tmp_path / "d").mkdir()
    tree = DestTree(str(tmp_path / "d").encode())
    copier.bind(tree, AttrPolicy(perms=True, times=True), _Cfg(), WriteMode())
    return table, copier, flist, tree


def test_copier_checks_the_source_against_the_list(tmp_path):
    big = os.urandom(eo.OFFLOAD_MIN + 1)
    table, copier, flist, tree = _pair(tmp_path, [("a", big), ("b", big), ("c", b"tiny")])
    assert sorted(copier.sources) == [0, 1]           # small files stay on the stream
    flist[1].size += 1                                # the source no longer matches
    assert not copier.try_copy(1, flist[1], True)
    assert copier.try_copy(0, flist[0], True)
    copier.announce(0)
    assert table.copied(0) is not None
    assert table.copied(1) is None and table.copied(2) is None
    assert os.listdir(tmp_path / "d") == ["a"]
    assert (tmp_path / "d" / "a").read_bytes() == big
    assert os.stat(tmp_path / "d" / "a").st_mtime == T_NEW
    assert not copier.try_copy(0, flist[0], True)     # one offer per file
    tree.close()


def test_copier_gives_up_when_the_source_changes_during_the_copy(tmp_path, monkeypatch):
    big = os.urandom(eo.OFFLOAD_MIN * 3)
    table, copier, flist, tree = _pair(tmp_path, [("a", big)])
    (tmp_path / "d" / "a").write_bytes(b"old")
    real = io_offload.clone_or_copy

    def racing(src_fd, dst_fd, size, mode, cancelled):
        how = real(src_fd, dst_fd, size, mode, cancelled)
        with open(tmp_path / "s" / "a", "r+b") as f:   # someone writes meanwhile
            f.write(b"changed")
        return how
    monkeypatch.setattr(io_offload, "clone_or_copy", racing)
    assert not copier.try_copy(0, flist[0], False)
    assert os.listdir(tmp_path / "d") == ["a"]           # no temp file left
    assert (tmp_path / "d" / "a").read_bytes() == b"old"  # untouched
    assert table.copied(0) is None
    tree.close()


def test_options_that_need_the_stream():
    from pysync.options import parse_args
    assert eo.offload_allowed(parse_args(["-a", "s", "d"]))
    assert eo.offload_allowed(parse_args(["-a", "--drop-cache", "s", "d"]))
    assert not eo.offload_allowed(parse_args(["-an", "s", "d"]))


def test_api_child_started_as_a_fresh_interpreter_offloads_too(tmp_path):
    """A progress callback makes the API start the child with exec, not
    fork: the side channel goes through the environment."""
    import pysync
    src = tmp_path / "src"
    make_src(src)
    steps = []
    r = pysync.sync(f"{src}/", f"{tmp_path}/dst/", archive=True,
                    progress=steps.append)
    assert r.exit_code == 0
    assert compare_trees(tmp_path / "dst", src, hardlinks=False) == []    # no -H
    assert r.stats["offloaded_data"] > 9 * MiB
    assert r.stats["literal_data"] < SMALL_ONLY
    assert r.stats["num_regular_files_transferred"] == 7
    finals = [p for p in steps if p.finished]
    assert len(finals) == 7 and all(p.bytes_done == p.size for p in finals)


def test_side_channel_from_the_environment_must_come_from_the_parent(monkeypatch):
    from pysync.transport.local import SIDE_ENV, inherited_side
    a, b = socket.socketpair()       # our own pair: its peer is us, not our parent
    try:
        for value in (str(b.fileno()), "1", "0", "x", "99999"):
            monkeypatch.setenv(SIDE_ENV, value)
            assert inherited_side() is None
            assert SIDE_ENV not in os.environ
        os.fstat(b.fileno())         # left open, untouched
    finally:
        a.close()
        b.close()


def test_cancelled_copy_is_dropped_not_renamed(tmp_path, monkeypatch):
    """An error or signal ends the run while the child copies: the copy is
    thrown away like a half-received file (tests/engine/test_run_control.py
    sends the SIGTERM for real)."""
    big = os.urandom(eo.OFFLOAD_MIN * 2)
    table, copier, flist, tree = _pair(tmp_path, [("a", big), ("b", big)])
    (tmp_path / "d" / "a").write_bytes(b"old")
    real = io_offload.clone_or_copy

    def signalled(src_fd, dst_fd, size, mode, cancelled):
        how = real(src_fd, dst_fd, size, mode, cancelled)
        copier.cancel()                 # the signal arrives during the copy
        return how
    monkeypatch.setattr(io_offload, "clone_or_copy", signalled)
    assert not copier.try_copy(0, flist[0], False)
    assert not copier.try_copy(1, flist[1], True)     # and nothing starts afterwards
    assert os.listdir(tmp_path / "d") == ["a"]
    assert (tmp_path / "d" / "a").read_bytes() == b"old"
    tree.close()


def test_sigterm_during_an_offloaded_copy_keeps_the_old_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big", "wb") as f:
        block = os.urandom(MiB)
        for i in range(600):
            f.write(block[i:] + block[:i])
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "big").write_bytes(b"old content")
    p = subprocess.Popen(PYSYNC + ["-a", f"{src}/", f"{dst}/"], stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith(".big.") for n in os.listdir(dst)):
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 20, err
    assert os.listdir(dst) == ["big"]
    assert (dst / "big").read_bytes() == b"old content"
