"""io/prefetch.py: the destination warmer never looks outside the
destination and is always stopped and joined; the sender's read-ahead
hands the right fds over, keeps to its window and closes what it opened;
and runs that use both leave the same trees and output as stock rsync."""

from __future__ import annotations

import os
import threading
import types
from pathlib import Path

import pytest

from helpers import roles
from helpers.trees import compare_trees
from pysync import _reference, native
from pysync.io import prefetch
from pysync.io.prefetch import DestWarmer, ReadAhead, read_ahead_for, start_warmer

WARMERS = [pytest.param(_reference.warm_names, _reference.StopFlag, id="ref")]
if native.BACKEND == "native" and hasattr(native, "StopFlag") \
        and native.warm_names is not _reference.warm_names:
    WARMERS.append(pytest.param(native.warm_names, native.StopFlag, id="native"))


def open_fds() -> set:
    return set(os.listdir("/proc/self/fd"))


def warmer_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "dest-warmer" and t.is_alive()]


@pytest.fixture
def outside_tree(tmp_path):
    """A destination holding a symlink to a directory outside it and a real
    directory; the outside directory has files the names could reach."""
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    (dest / "real").mkdir(parents=True)
    (dest / "real" / "f").write_bytes(b"in")
    (dest / "top").write_bytes(b"top")
    outside.mkdir()
    (outside / "f").write_bytes(b"out")
    (outside / "sub").mkdir()
    (outside / "sub" / "g").write_bytes(b"out")
    os.symlink(outside, dest / "link")
    os.symlink("../outside", dest / "rel-link")
    return dest, outside


@pytest.mark.parametrize("warm, Flag", WARMERS)
def test_warm_names_stays_beneath_the_root(outside_tree, warm, Flag):
    dest, outside = outside_tree
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        def found(*names):
            return warm(fd, b"".join(n + b"\0" for n in names), Flag())[0]
        # Inside: found.
        assert found(b"real/f", b"top", b"real", b"link") == 4
        # Every way out: through a symlink (absolute or relative), "..",
        # an absolute name, empty and "." components.  Each of these names
        # exists if resolved the way a path is; none may be found.
        escapes = [b"link/f", b"link/sub/g", b"rel-link/f", b"link/sub",
                   b"../outside/f", b"real/../../outside/f", b"real/../top",
                   str(outside / "f").encode(), b"/" + str(dest / "top").encode().lstrip(b"/"),
                   b"./top", b"real//f", b"real/./f", b"", b"real/"]
        for name in escapes:
            assert found(name) == 0, name
        assert found(*escapes, b"top") == 1
    finally:
        os.close(fd)


@pytest.mark.parametrize("warm, Flag", WARMERS)
def test_warm_names_stops_on_the_flag(tmp_path, warm, Flag):
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        blob = b"".join(f"f{i}".encode() + b"\0" for i in range(5))
        assert warm(fd, blob, Flag())[0] == 5
        flag = Flag()
        flag.set()
        assert warm(fd, blob, flag)[0] == 0
    finally:
        os.close(fd)


def test_native_and_reference_agree(tmp_path):
    if len(WARMERS) < 2:
        pytest.skip("the native extension has no pysync_warm_names")
    import random
    rnd = random.Random(5)
    dest = tmp_path / "d"
    for d in ("a", "a/b", "c"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    for i in range(40):
        (dest / rnd.choice(["a", "a/b", "c", "."]) / f"f{i}").write_bytes(b"")
    os.symlink(tmp_path, dest / "a" / "up")
    parts = [b"a", b"b", b"c", b"up", b"..", b".", b"", b"f1", b"f7", b"f12", b"f30", b"zz"]
    names = [b"/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 4))) for _ in range(400)]
    blob = b"".join(n + b"\0" for n in names)
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = native.warm_names(fd, blob, native.StopFlag())[0]
        want = _reference.warm_names(fd, blob, _reference.StopFlag())[0]
        assert got == want
        assert got > 0
    finally:
        os.close(fd)


def names(n, prefix="d"):
    return [types.SimpleNamespace(name=f"{prefix}{i // 100}/f{i}".encode()) for i in range(n)]


def test_warmer_finds_the_names_then_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "WARM_CACHED_RUNS", 10**6)    # never judged cached
    for i in range(1200):
        p = tmp_path / f"d{i // 100}"
        p.mkdir(exist_ok=True)
        (p / f"f{i}").write_bytes(b"")
    before = open_fds()
    w = start_warmer(os.fsencode(tmp_path) + b"/")
    batch = names(1200)
    for i in range(0, 1200, 256):
        w.feed(batch[i:i + 256])
    assert w.running
    w.finish()
    w.feed(names(10, "late"))     # taken no more
    w._thread.join(30)            # ends by itself once the queue is done
    assert not w.running
    w.stop()
    assert w.warmed + 256 * w.dropped >= 1200
    assert w.warmed <= 1200
    assert not warmer_threads()
    assert open_fds() == before   # the root fd and every directory fd closed


def fast(real):
    """``real`` (warm_names / warm_dir) reporting that it took no time, as
    on a cached tree (the judgement is tested, not the clock)."""
    def call(*args):
        return real(*args)[0], 0.0
    return call


def test_warmer_ends_itself_on_a_cached_destination(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "warm_names", fast(native.warm_names))
    for i in range(3000):
        p = tmp_path / f"d{i // 100}"
        p.mkdir(exist_ok=True)
        (p / f"f{i}").write_bytes(b"")
    before = open_fds()
    w = start_warmer(os.fsencode(tmp_path))
    batch = names(3000)
    for i in range(0, 3000, 300):
        w.feed(batch[i:i + 300])
        if w._thread is not None:
            w._thread.join(0.2)     # let it judge each batch as it comes
    assert w.cached
    assert not w.running
    # Two cached batches were enough (a third may have been under way).
    assert w.warmed <= 512 + 300 * prefetch.WARM_CACHED_RUNS + 300
    w.feed(names(300))          # taken no more
    w.stop()
    assert open_fds() == before


def test_warmer_never_starts_for_a_short_list(tmp_path):
    before = open_fds()
    w = start_warmer(os.fsencode(tmp_path))
    w.feed(names(prefetch.WARM_MIN_NAMES))
    assert not w.running
    w.stop()
    assert open_fds() == before
    assert not warmer_threads()


def test_no_warmer_without_a_directory(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "link")
    assert start_warmer(None) is None
    assert start_warmer(os.fsencode(tmp_path / "missing")) is None
    assert start_warmer(os.fsencode(tmp_path / "file")) is None
    # A destination that is a symlink: the receiver's own open refuses it too.
    assert start_warmer(os.fsencode(tmp_path / "link")) is None


def test_warmer_stopped_when_stop_comes_first(tmp_path):
    before = open_fds()
    w = start_warmer(os.fsencode(tmp_path))
    w.feed(names(2000))
    w.stop(timeout=30)        # no finish: told to stop at once
    w.stop()                  # twice is harmless
    assert not warmer_threads()
    assert open_fds() == before


class _FailingWire:
    """Hands out the batches of a long list, then fails as a broken
    connection would."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.bytes_read = 0

    def read(self, decode, *args):
        if not self.batches:
            from pysync.errors import PysyncError
            raise PysyncError("connection unexpectedly closed", 12)
        return self.batches.pop(0)


def test_recv_flist_error_stops_the_warmer(tmp_path):
    from pysync import receiving
    from pysync.errors import PysyncError
    from pysync.config import SessionConfig
    report = types.SimpleNamespace(log_line=lambda *a: None, flist_start=lambda **k: None,
                                   counting_flist=lambda: False)
    entries = names(1500)
    sess = types.SimpleNamespace(report=report, cfg=SessionConfig(),
                                 xattr_policy=lambda: types.SimpleNamespace(storable=None),
                                 wire=_FailingWire([entries[i:i + 256] for i in range(0, 1500, 256)]))
    before = open_fds()
    with pytest.raises(PysyncError):
        receiving.recv_flist(sess, os.fsencode(tmp_path))
    assert sess.warmer is None
    assert not warmer_threads()
    assert open_fds() == before


# ---- the sender's scan-ahead ----------------------------------------------------------

@pytest.mark.parametrize("warm, Flag", [pytest.param(_reference.warm_dir, _reference.StopFlag, id="ref")]
                         + ([pytest.param(native.warm_dir, native.StopFlag, id="native")]
                            if len(WARMERS) > 1 else []))
def test_warm_dir(tmp_path, warm, Flag):
    for i in range(7):
        (tmp_path / f"f{i}").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    os.symlink("/nonexistent", tmp_path / "dangling")
    assert warm(os.fsencode(tmp_path), Flag())[0] == 9
    assert warm(os.fsencode(tmp_path / "missing"), Flag()) == (0, 0.0)
    flag = Flag()
    flag.set()
    assert warm(os.fsencode(tmp_path), flag)[0] == 0


def scan_threads():
    return [t for t in threading.enumerate() if t.name == "scan-ahead" and t.is_alive()]


def test_scan_ahead_lists_then_ends_on_a_cached_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "warm_dir", fast(native.warm_dir))
    dirs = []
    for d in range(30):
        p = tmp_path / f"d{d}"
        p.mkdir()
        for i in range(20):
            (p / f"f{i}").write_bytes(b"")
        dirs.append(os.fsencode(p))
    sa = prefetch.ScanAhead()
    sa.push(dirs)
    for _ in range(100):
        if not sa._thread.is_alive():
            break
        sa._thread.join(0.05)
    assert sa.cached           # all in the cache: it stopped early by itself
    assert sa.listed == prefetch.SCAN_CACHED_RUNS
    sa.push(dirs)              # taken no more
    sa.stop()
    assert not scan_threads()


def test_scan_ahead_stopped_when_the_scan_fails(tmp_path, monkeypatch):
    """The scanner raising (here: its emit callback failing, as a broken
    connection would) still stops and joins the scan-ahead thread."""
    from pysync.engine.scan import Scanner
    from pysync.config import SessionConfig
    monkeypatch.setattr(prefetch, "SCAN_CACHED_RUNS", 10**6)
    for d in range(5):
        for i in range(300):
            roles.put(tmp_path / "src", f"d{d}/f{i}", b"", T)
    cfg = SessionConfig()
    cfg.recursive = True
    seen = []

    class Broken(Exception):
        pass

    def emit(batch):
        seen.append(len(batch))
        raise Broken
    import pysync.sending as sending
    sess = types.SimpleNamespace(cfg=cfg, report=types.SimpleNamespace(
        log_line=lambda *a: None, flist_start=lambda **k: None, counting_flist=lambda: False),
        log=None, opts=types.SimpleNamespace(verbose=0),
        wire=types.SimpleNamespace(bytes_written=0, write=lambda b: emit(b)))
    with pytest.raises(Broken):
        sending.run_sender(sess, [os.fsencode(tmp_path / "src") + b"/"])
    assert seen
    assert not scan_threads()


# ---- the sender's read-ahead ----------------------------------------------------------

def make_flist(tmp_path, n, size=100):
    flist = []
    for i in range(n):
        p = tmp_path / f"f{i:04d}"
        p.write_bytes(bytes([i % 256]) * size)
        flist.append(types.SimpleNamespace(name=p.name.encode(), src=os.fsencode(p), size=size,
                                           is_reg=True, cleared=False))
    return flist


def fd_target(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def test_read_ahead_fresh_copy(tmp_path):
    flist = make_flist(tmp_path, 300)
    # A directory and an empty file in the list: never advised.
    flist[5] = types.SimpleNamespace(name=b"dir", src=os.fsencode(tmp_path), size=4096,
                                     is_reg=False, cleared=False)
    flist[6].size = 0
    before = open_fds()
    ra = ReadAhead(flist, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    taken = 0
    for ndx, e in enumerate(flist):
        if not e.is_reg:
            continue
        ra.requested(ndx)
        assert len(ra.ahead) <= prefetch.AHEAD_FILES
        assert ra.bytes <= prefetch.AHEAD_BYTES
        fd = ra.take(ndx)
        assert ra.take(ndx) is None           # handed out once
        if fd is not None:
            assert fd_target(fd) == str(tmp_path / e.name.decode())
            os.close(fd)
            taken += 1
    assert ra.window == prefetch.AHEAD_FILES   # every file wanted: the window grew
    assert taken >= 290 - 2
    assert all(i not in (5, 6) for i, _s, _fd in ra.ahead)
    ra.close()
    assert open_fds() == before


def test_read_ahead_few_files_wanted(tmp_path):
    flist = make_flist(tmp_path, 600)
    before = open_fds()
    ra = ReadAhead(flist, os.O_RDONLY | os.O_CLOEXEC)
    wanted = list(range(0, 600, 50))
    for ndx in wanted:
        ra.requested(ndx)
        fd = ra.take(ndx)
        if fd is not None:
            os.close(fd)
    # A request skipping files shrinks the window: little is read in vain.
    assert ra.window <= 2
    assert ra.advised <= 3 * len(wanted)
    ra.close()
    assert open_fds() == before


def test_read_ahead_untaken_fd_is_closed(tmp_path):
    flist = make_flist(tmp_path, 20)
    before = open_fds()
    ra = ReadAhead(flist, os.O_RDONLY | os.O_CLOEXEC)
    for ndx in range(10):
        ra.requested(ndx)       # never taken (as a file copied by the receiver)
    ra.close()
    assert open_fds() == before


def test_read_ahead_only_when_it_may_read(tmp_path):
    from pysync.config import SessionConfig
    cfg = SessionConfig()
    assert read_ahead_for(cfg, []) is not None
    cfg.drop_cache = True
    assert read_ahead_for(cfg, []) is None
    cfg = SessionConfig()
    cfg.dry_run = True
    assert read_ahead_for(cfg, []) is None


# ---- end to end against stock rsync ---------------------------------------------------

T = 1_600_000_000


def make_many(src: Path, count: int):
    for i in range(count):
        roles.put(src, f"d{i % 7}/f{i:04d}", os.urandom(200 + i % 3000), T + i)
    roles.fix_dirs(src, T)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
def test_copy_through_a_planted_symlink_matches_rsync(tmp_path, role):
    """A destination whose d0 is a symlink to a directory outside it, and a
    list (long enough for the warmer) with names below d0: both tools
    replace the link by a directory; the outside is left alone."""
    src = tmp_path / "src"
    make_many(src, 900)
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        outside = top / "outside"
        roles.put(outside, "f0000", b"outside, keep me", T)
        roles.fix_dirs(outside, T)
        (dst / "d1").mkdir(parents=True)
        os.symlink(outside, dst / "d0")
        roles.put(dst, "d2/f0002", b"old", T - 5)
        r = roles.run(tool, role, ["-ai", "--delete"], src, dst)
        results[tool] = (r, top)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert compare_trees(ptop / "dst", rtop / "dst") == []
    assert compare_trees(ptop / "outside", rtop / "outside") == []
    assert (ptop / "outside" / "f0000").read_bytes() == b"outside, keep me"
    assert os.listdir(ptop / "outside") == ["f0000"]
    assert os.stat(ptop / "outside").st_mtime == T
    if role != "push-rsync2pysync":
        assert roles.lines(pr.stdout) == roles.lines(rr.stdout)


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "pull-rsync2pysync"])
@pytest.mark.parametrize("opts", [["-a"], ["-ai", "--drop-cache"]], ids=["plain", "drop-cache"])
def test_sender_read_ahead_copy_matches_rsync(tmp_path, role, opts):
    """A fresh copy of many small files (the read-ahead's window fills)
    and an update of a few (it shrinks): same trees and output as rsync."""
    if "--drop-cache" in opts and role != "local":
        opts = ["-ai"]
    src = tmp_path / "src"
    make_many(src, 700)
    for tool in ("rsync", "pysync"):
        dst = tmp_path / tool
        r = roles.run(tool, role, opts if tool == "pysync" else
                      [o for o in opts if o != "--drop-cache"], src, dst)
        assert r.returncode == 0, r.stderr.decode()
    assert compare_trees(tmp_path / "pysync", tmp_path / "rsync") == []
    for i in range(0, 700, 97):
        roles.put(src, f"d{i % 7}/f{i:04d}", b"changed %d" % i, T + 5000)
    out = {}
    for tool in ("rsync", "pysync"):
        r = roles.run(tool, role, ["-ai"], src, tmp_path / tool)
        assert r.returncode == 0, r.stderr.decode()
        out[tool] = roles.lines(r.stdout)
    assert compare_trees(tmp_path / "pysync", tmp_path / "rsync") == []
    if role != "push-pysync2rsync" and role != "pull-rsync2pysync":
        assert out["pysync"] == out["rsync"]
