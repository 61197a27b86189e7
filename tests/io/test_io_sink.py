"""make_sink on real file systems: content, O_DIRECT use, tails, cache
footprint, EINVAL/ENOSPC policy, write-behind failure handling."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from iohelp import (BIG, MiB, SIZES, evict, file_sha, resident, sha, unless_cache_dropped,
                    write_file)
from pysync.errors import FileIOError
from pysync.io import cache
from pysync.io import directsink as directsink_mod
from pysync.io import sink as sink_mod
from pysync.io.buffers import POOL
from pysync.io.geometry import DioGeometry
from pysync.io.sink import (AlignmentBug, BufferedSink, DirectSink, DropCacheSink, WriteMode,
                            make_sink)

DIRECT = WriteMode(direct_io=True)
MODES = {
    "plain": WriteMode(),
    "direct": DIRECT,
    "drop": WriteMode(drop_cache=True),
    "direct+drop": WriteMode(direct_io=True, drop_cache=True),
    "direct+fsync+prealloc": WriteMode(direct_io=True, fsync=True, preallocate=True),
    "direct-inline": WriteMode(direct_io=True, write_behind=False),
}


def check_sizes(root: Path, payload, mode: WriteMode, sizes=SIZES, tag=""):
    for size in sizes:
        path = root / f"f{tag}-{size}"
        data = memoryview(payload)[:size]
        sink = write_file(path, data, mode, seed=size)
        assert path.stat().st_size == size
        assert file_sha(path) == sha(data), (mode, size)
        if mode.direct_io and size >= MiB:
            assert isinstance(sink, DirectSink)
        path.unlink()


# ---- content ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODES))
def test_sizes_on_root_ext4(tmp_path, payload, name):
    check_sizes(tmp_path, payload, MODES[name])


def test_kinds(tmp_path, payload):
    assert isinstance(write_file(tmp_path / "a", payload[:5], WriteMode()), BufferedSink)
    assert isinstance(write_file(tmp_path / "b", payload[:5], DIRECT), DropCacheSink)
    assert isinstance(write_file(tmp_path / "c", payload[:2 * MiB], DIRECT), DirectSink)
    s = write_file(tmp_path / "d", payload[:2 * MiB], WriteMode(drop_cache=True))
    assert isinstance(s, DropCacheSink) and s.policy == "dontcache"


def test_expected_size_is_only_a_hint(tmp_path, payload):
    # More and fewer bytes than announced; preallocation then truncation.
    for expected, size in [(10 * MiB, 3 * MiB + 5), (5, 3 * MiB + 5), (2 * MiB, 0)]:
        for mode in (DIRECT, WriteMode(direct_io=True, preallocate=True),
                     WriteMode(preallocate=True), WriteMode(drop_cache=True)):
            p = tmp_path / "h"
            write_file(p, payload[:size], mode, expected=expected)
            assert p.stat().st_size == size and file_sha(p) == sha(payload[:size])
            p.unlink()


def test_writable_advance(tmp_path, payload):
    data = payload[:5 * MiB + 123]
    dir_fd = os.open(tmp_path, os.O_RDONLY)
    fd = os.open("z", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    try:
        sink = make_sink(fd, dir_fd, b"z", b"z", len(data), DIRECT)
        pos = 0
        while pos < len(data):
            view = sink.writable()
            n = min(len(view), len(data) - pos, 300000)
            view[:n] = data[pos:pos + n]
            view.release()
            sink.advance(n)
            pos += n
        assert sink.finish() == len(data)
    finally:
        os.close(fd)
        os.close(dir_fd)
    assert (tmp_path / "z").read_bytes() == data


def test_fd_ready_for_attributes_after_finish(tmp_path, payload):
    dir_fd = os.open(tmp_path, os.O_RDONLY)
    fd = os.open(".t.XXXX", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
    try:
        sink = make_sink(fd, dir_fd, b".t.XXXX", b"t", 2 * MiB + 3, DIRECT)
        sink.write(payload[:2 * MiB + 3])
        sink.finish()
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        os.fchmod(fd, 0o644)
        os.utime(fd, ns=(10**18, 10**18))
        os.rename(".t.XXXX", "t", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(fd)
        os.close(dir_fd)
    st = (tmp_path / "t").stat()
    assert st.st_mode & 0o777 == 0o644 and st.st_mtime_ns == 10**18
    assert (tmp_path / "t").read_bytes() == payload[:2 * MiB + 3]


STRACE_HELPER = textwrap.dedent("""
    import os, sys
    from pysync.io.sink import WriteMode, make_sink
    path, size = sys.argv[1], int(sys.argv[2])
    d = os.open(os.path.dirname(path), os.O_RDONLY)
    fd = os.open(os.path.basename(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=d)
    s = make_sink(fd, d, b"x", path.encode(), size, WriteMode(direct_io=True))
    block = os.urandom(65536)
    left = size
    while left:
        n = min(left, len(block)); s.write(block[:n]); left -= n
    s.finish()
""")


@pytest.mark.skipif(not __import__("shutil").which("strace"), reason="strace not installed")
def test_strace_shows_o_direct(tmp_path):
    helper = tmp_path / "helper.py"
    helper.write_text(STRACE_HELPER)
    out = tmp_path / "trace"
    target = tmp_path / "traced"
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(["strace", "-f", "-o", str(out), "-e", "trace=openat,fcntl",
                        sys.executable, str(helper), str(target), str(3 * MiB + 777)],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(root)))
    assert r.returncode == 0, r.stderr
    trace = out.read_text()
    setfl = [line for line in trace.splitlines() if "F_SETFL" in line]
    assert any("O_DIRECT" in line and "= 0" in line for line in setfl), trace[-3000:]
    # ... and cleared again for the tail.
    assert any("O_DIRECT" not in line.split("F_SETFL")[1] for line in setfl)
    assert target.stat().st_size == 3 * MiB + 777


@pytest.mark.slow
def test_192mib_direct_content_and_cache(tmp_path, payload):
    path = tmp_path / "big"
    data = memoryview(payload)[:BIG]
    write_file(path, data, DIRECT, choices=(32 * 1024, 256 * 1024, 1 << 20, 777))
    assert resident(path) < BIG // 10
    assert path.stat().st_size == BIG
    assert file_sha(path) == sha(data)


# ---- alignment -------------------------------------------------------------------------


def test_every_direct_write_is_aligned(tmp_path, payload, monkeypatch):
    """Spy on pwrite: every write made with O_DIRECT set honours a forced
    4096/4096 geometry, whatever the piece sizes."""
    monkeypatch.setattr(sink_mod, "geometry_for_fd",
                        lambda fd, dev=None: DioGeometry(4096, 4096, "test"))
    real = os.pwrite
    seen = []

    def spy(fd, data, offset):
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        addr = None
        if direct:
            addr = ctypes.addressof(ctypes.c_char.from_buffer(data))
        seen.append((direct, offset, len(data), addr))
        return real(fd, data, offset)

    real_v = os.pwritev

    def spy_v(fd, views, offset, *flags):
        for v in views:
            spy_one(fd, v, offset)
            offset += len(v)
        return real_v(fd, views, offset - sum(len(v) for v in views), *flags)

    def spy_one(fd, data, offset):
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(data)) if direct else None
        seen.append((direct, offset, len(data), addr))

    monkeypatch.setattr(os, "pwrite", spy)
    monkeypatch.setattr(os, "pwritev", spy_v)
    for size in (MiB, MiB + 1, 4 * MiB, 4 * MiB + 4095, 9 * MiB + 12345):
        for choices in ((1, 700), (32 * 1024,), (1, 700, 32 * 1024, 100003, 3 * MiB)):
            seen.clear()
            p = tmp_path / "al"
            write_file(p, payload[:size], DIRECT, seed=size, choices=choices)
            assert p.read_bytes() == payload[:size]
            p.unlink()
            direct = [s for s in seen if s[0]]
            assert direct, "no O_DIRECT write"
            for _, off, n, addr in direct:
                assert off % 4096 == 0 and n % 4096 == 0 and addr % 4096 == 0
            assert sum(n for _, _, n, _ in seen) == size


def test_alignment_checked_before_syscall(tmp_path, monkeypatch):
    monkeypatch.setattr(sink_mod, "geometry_for_fd",
                        lambda fd, dev=None: DioGeometry(4096, 4096, "test"))
    calls = []
    monkeypatch.setattr(os, "pwrite", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(os, "pwritev", lambda *a: calls.append(a) or 0)
    dir_fd = os.open(tmp_path, os.O_RDONLY)
    fd = os.open("u", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    try:
        sink = make_sink(fd, dir_fd, b"u", b"u", 8 * MiB, WriteMode(direct_io=True,
                                                                    write_behind=False))
        buf = POOL.acquire(sink.chunk)
        try:
            with pytest.raises(AlignmentBug, match="offset 512"):
                sink._direct(buf, 0, 4096, 512)
            with pytest.raises(AlignmentBug, match="length 100"):
                sink._direct(buf, 0, 100, 0)
            with pytest.raises(AlignmentBug, match="buffer"):
                sink._direct(buf, 8, 4096, 0)
        finally:
            POOL.release(buf)
        sink.abort()
    finally:
        os.close(fd)
        os.close(dir_fd)
    assert calls == []


def test_tail_strategy_b(tmp_path, payload, monkeypatch):
    """When O_DIRECT cannot be cleared, the tail is padded, written with
    O_DIRECT and the file truncated: same content."""
    real = directsink_mod.set_direct
    for size in (MiB + 1, 4 * MiB + 777, 5 * MiB + 4095):
        p = tmp_path / "b"
        dir_fd = os.open(tmp_path, os.O_RDONLY)
        fd = os.open("b", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
        try:
            sink = make_sink(fd, dir_fd, b"b", b"b", size, DIRECT)
            monkeypatch.setattr(directsink_mod, "set_direct", lambda fd, on: (
                real(fd, on) if on else (_ for _ in ()).throw(OSError(errno.EINVAL, "no"))))
            sink.write(payload[:size])
            sink.finish()
            monkeypatch.setattr(directsink_mod, "set_direct", real)
            assert sink._padded and sink._tail is None
        finally:
            os.close(fd)
            os.close(dir_fd)
        assert p.stat().st_size == size and p.read_bytes() == payload[:size]
        p.unlink()


def test_fsync_after_tail(tmp_path, payload, monkeypatch):
    events = []
    real_pwrite, real_fsync, real_v = os.pwrite, os.fsync, os.pwritev
    monkeypatch.setattr(os, "pwritev", lambda fd, v, off, *f: events.append(
        ("pwrite", off, sum(map(len, v)))) or real_v(fd, v, off, *f))
    monkeypatch.setattr(os, "pwrite", lambda fd, d, off: events.append(("pwrite", off, len(d)))
                        or real_pwrite(fd, d, off))
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync",)) or real_fsync(fd))
    size = 2 * MiB + 100
    write_file(tmp_path / "s", payload[:size], WriteMode(direct_io=True, fsync=True))
    assert events[-1] == ("fsync",)
    assert events[-2][0] == "pwrite" and events[-2][1] + events[-2][2] == size


# ---- other file systems ----------------------------------------------------------------


def test_xfs_4k_sectors(xfs_4k, payload):
    d = xfs_4k / "w"
    d.mkdir(exist_ok=True)
    fd = os.open(d, os.O_RDONLY)
    try:
        tfd = os.open("probe", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
        geo = sink_mod.geometry_for_fd(tfd)
        os.close(tfd)
    finally:
        os.close(fd)
    assert (geo.offset_align, geo.source) == (4096, "statx")
    for name in ("direct", "direct+drop", "drop", "direct+fsync+prealloc"):
        check_sizes(d, payload, MODES[name], tag=name)


def test_ext4_4k_sectors(ext4_4k, payload):
    d = ext4_4k / "w"
    d.mkdir(exist_ok=True)
    for name in ("direct", "direct+drop", "direct-inline"):
        check_sizes(d, payload, MODES[name], tag=name)


@pytest.mark.slow
def test_xfs_4k_192mib(xfs_4k, payload):
    p = xfs_4k / "big"
    write_file(p, memoryview(payload)[:BIG + 777], DIRECT, choices=(32768, 1 << 20))
    assert resident(p) < BIG // 10
    assert file_sha(p) == sha(memoryview(payload)[:BIG + 777])
    p.unlink()


def test_wrong_geometry_einval_diagnostic(ext4_4k, payload, monkeypatch):
    """Discovery forced to 512 on a 4K-sector device: the kernel refuses the
    512-aligned tail write and the diagnostic says everything."""
    monkeypatch.setattr(sink_mod, "geometry_for_fd",
                        lambda fd, dev=None: DioGeometry(512, 512, "forced by test"))
    monkeypatch.setattr(DirectSink, "tail_to_page", False)
    with pytest.raises(FileIOError) as ei:
        write_file(ext4_4k / "wrong", payload[:4 * MiB + 1536], DIRECT)
    msg = str(ei.value)
    assert ei.value.code == 11 and "\n" not in msg
    for part in ("Invalid argument (22)", f"offset {4 * MiB}", "length 1536",
                 "offset 512", "forced by test", "ext4", str(ext4_4k), "wrong"):
        assert part in msg, (part, msg)


def test_ramfs_refuses_direct_io(ramfs):
    for name in ("one", "two"):  # the verdict is remembered per file system
        dir_fd = os.open(ramfs, os.O_RDONLY)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
        try:
            with pytest.raises(FileIOError) as ei:
                make_sink(fd, dir_fd, name.encode(), str(ramfs / name).encode(), 8 * MiB, DIRECT)
        finally:
            os.close(fd)
            os.close(dir_fd)
        msg = str(ei.value)
        assert ei.value.code == 11 and "\n" not in msg
        assert "ramfs" in msg and f"mounted at {ramfs}" in msg and "O_DIRECT" in msg
        assert "without --direct-io" in msg and name in msg


def test_ext4_data_journal_refuses_direct_io(ext4_journal, payload):
    """statx says 0/0 (ext4 would silently buffer O_DIRECT): --direct-io is
    strict and says why; --drop-cache still works there."""
    with pytest.raises(FileIOError) as ei:
        write_file(ext4_journal / "j", payload[:4 * MiB], DIRECT)
    msg = str(ei.value)
    assert ei.value.code == 11 and "ext4" in msg and str(ext4_journal) in msg
    assert "statx" in msg and "data=journal" in msg and "without --direct-io" in msg
    (ext4_journal / "j").unlink()
    p = ext4_journal / "k"
    write_file(p, payload[:8 * MiB + 1], WriteMode(drop_cache=True))
    assert resident(p) < MiB and file_sha(p) == sha(payload[:8 * MiB + 1])


def test_tmpfs_direct_and_drop_notice(tmpfs64, payload):
    said = []
    for mode in (WriteMode(direct_io=True, warn=said.append),
                 WriteMode(drop_cache=True, warn=said.append)):
        check_sizes(tmpfs64, payload, mode, sizes=[5, 3 * MiB + 777])
    assert len(said) == 2 and all("tmpfs" in s and "memory" in s for s in said), said


# ---- ENOSPC ----------------------------------------------------------------------------

ENOSPC_MODES = [WriteMode(), WriteMode(direct_io=True), WriteMode(drop_cache=True),
                WriteMode(direct_io=True, write_behind=False),
                WriteMode(preallocate=True), WriteMode(direct_io=True, preallocate=True)]


def _fill_until_enospc(root: Path, payload, mode):
    size = 100 * MiB
    p = root / "huge"
    with pytest.raises(FileIOError) as ei:
        write_file(p, memoryview(payload)[:size], mode, choices=(32768, 1 << 20))
    msg = str(ei.value)
    assert ei.value.code == 11
    assert msg.startswith("rsync: [receiver] ") and f'"{p}"' in msg
    assert msg.endswith("No space left on device (28)"), msg
    if mode.preallocate:
        assert "preallocate failed" in msg
        assert p.stat().st_size == 0  # nothing written, partial allocation undone
    else:
        assert "write failed" in msg
    p.unlink()
    # The file system is usable again afterwards.
    write_file(root / "after", payload[:MiB + 1], mode)
    assert (root / "after").read_bytes() == payload[:MiB + 1]
    (root / "after").unlink()


@pytest.mark.parametrize("i", range(len(ENOSPC_MODES)))
def test_enospc_tmpfs(tmpfs64, payload, i):
    _fill_until_enospc(tmpfs64, payload, ENOSPC_MODES[i])


@pytest.mark.parametrize("i", range(len(ENOSPC_MODES)))
def test_enospc_ext4_loop(ext4_64m, payload, i):
    _fill_until_enospc(ext4_64m, payload, ENOSPC_MODES[i])


def test_preallocate_fails_before_data(ext4_64m, monkeypatch):
    writes = []
    monkeypatch.setattr(os, "pwrite", lambda *a: writes.append(a))
    monkeypatch.setattr(os, "pwritev", lambda *a: writes.append(a))
    dir_fd = os.open(ext4_64m, os.O_RDONLY)
    fd = os.open("p", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    try:
        with pytest.raises(FileIOError, match=r"No space left on device \(28\)"):
            make_sink(fd, dir_fd, b"p", b"p", 200 * MiB, WriteMode(direct_io=True,
                                                                   preallocate=True))
        assert os.fstat(fd).st_size == 0 and os.fstat(fd).st_blocks == 0
    finally:
        os.close(fd)
        os.close(dir_fd)
    assert writes == []


# ---- write-behind failures -------------------------------------------------------------


@pytest.mark.parametrize("write_behind", [True, False])
def test_injected_eio_on_third_write(tmp_path, payload, monkeypatch, write_behind):
    real = os.pwritev
    count = [0]

    def flaky(fd, views, off, *flags):
        count[0] += 1
        if count[0] == 3:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, views, off, *flags)

    monkeypatch.setattr(os, "pwritev", flaky)
    start = POOL.outstanding
    with pytest.raises(FileIOError, match=r"write failed on .*Input/output error \(5\)"):
        write_file(tmp_path / "eio", memoryview(payload)[:64 * MiB],
                   WriteMode(direct_io=True, write_behind=write_behind), choices=(1 << 20,))
    assert POOL.outstanding == start
    assert not [t for t in threading.enumerate() if t.name == "pysync-writebehind"]
    # The error surfaced promptly: not all 16 chunks were attempted.
    assert count[0] <= 3 + 4


def test_abort_mid_file(tmp_path, payload):
    dir_fd = os.open(tmp_path, os.O_RDONLY)
    fd = os.open("ab", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=dir_fd)
    try:
        sink = make_sink(fd, dir_fd, b"ab", b"ab", 64 * MiB, DIRECT)
        sink.write(payload[:10 * MiB + 5])
        sink.abort()
        sink.abort()
        with pytest.raises(ValueError):
            sink.write(b"x")
    finally:
        os.close(fd)
        os.close(dir_fd)


def test_staging_memory_bounded(tmp_path, payload):
    POOL.reset_peak()
    base = POOL.outstanding_bytes
    write_file(tmp_path / "m", memoryview(payload)[:48 * MiB], WriteMode(direct_io=True),
               choices=(1, 4096, 1 << 20, 3 << 20))
    assert POOL.peak_bytes - base <= 16 * MiB


# ---- drop cache ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["dontcache", "dropbehind"])
def test_drop_cache_192mib(tmp_path, payload, policy):
    if policy == "dropbehind":
        cache.note_dontcache_write(os.stat(tmp_path).st_dev, False)
    p = tmp_path / "dc"
    sink = write_file(p, memoryview(payload)[:BIG], WriteMode(drop_cache=True),
                      choices=(32768, 1 << 20))
    assert sink.policy == policy
    assert resident(p) < BIG // 10
    assert file_sha(p) == sha(memoryview(payload)[:BIG])


def test_drop_cache_small_files_batched(tmp_path, payload):
    paths = []
    for i in range(100):
        p = tmp_path / f"s{i}"
        write_file(p, payload[i * 4096:(i + 1) * 4096 + i], WriteMode(drop_cache=True))
        paths.append(p)
    cache.flush_pending_drops()
    assert sum(resident(p) for p in paths) < 100 * 4096 // 10
    assert all(p.read_bytes() == payload[i * 4096:(i + 1) * 4096 + i]
               for i, p in enumerate(paths))


def test_direct_leaves_old_cache_alone(tmp_path, payload):
    """A cached unrelated file stays cached while we write with O_DIRECT."""
    unless_cache_dropped(lambda: _old_cache_alone(tmp_path, payload))


def _old_cache_alone(tmp_path, payload):
    for leftover in ("other", "x"):
        (tmp_path / leftover).unlink(missing_ok=True)
    other = tmp_path / "other"
    other.write_bytes(payload[:16 * MiB])
    evict(other)
    with open(other, "rb") as f:
        f.read()
    before = resident(other)
    write_file(tmp_path / "x", memoryview(payload)[:32 * MiB], DIRECT)
    assert resident(other) == before >= 15 * MiB


def test_silent_buffered_fallback_detected(tmp_path, payload, monkeypatch):
    """If the first O_DIRECT chunk shows up in the cache (the file system
    buffered it quietly), say so once and drop behind the writer."""
    real = sink_mod.native.mincore
    calls = []

    def fake(fd, off, n):
        calls.append((off, n))
        return b"\x01" * ((n + 4095) // 4096) if len(calls) == 1 else real(fd, off, n)

    monkeypatch.setattr(sink_mod.native, "mincore", fake)
    said = []
    p = tmp_path / "sb"
    sink = write_file(p, payload[:24 * MiB + 5], WriteMode(direct_io=True, warn=said.append))
    assert sink.buffered_fallback and sink._behind is not None
    assert len(said) == 1 and "buffered the data" in said[0] and "ext4" in said[0]
    assert calls[0] == (0, 4 * MiB)
    assert file_sha(p) == sha(payload[:24 * MiB + 5])


def test_dontcache_eopnotsupp_switches_to_dropbehind(tmp_path, payload, monkeypatch):
    real = os.pwritev
    flags_seen = []

    def no_dontcache(fd, views, off, *flags):
        flags_seen.append(flags)
        if flags and flags[0] & cache.RWF_DONTCACHE:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return real(fd, views, off, *flags)

    monkeypatch.setattr(os, "pwritev", no_dontcache)
    p = tmp_path / "eo"
    sink = write_file(p, memoryview(payload)[:40 * MiB], WriteMode(drop_cache=True))
    assert sink.policy == "dropbehind"
    assert cache.dontcache_write_ok(os.stat(tmp_path).st_dev) is False
    assert flags_seen == [(cache.RWF_DONTCACHE,)]  # probed once, then plain pwrite
    assert resident(p) < 4 * MiB
    sink2 = write_file(tmp_path / "eo2", payload[:2 * MiB], WriteMode(drop_cache=True))
    assert sink2.policy == "dropbehind" and len(flags_seen) == 1
    assert file_sha(p) == sha(memoryview(payload)[:40 * MiB])
