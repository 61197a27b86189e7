"""Alignment discovery, mount lookup and the aligned buffer pool."""

from __future__ import annotations

import mmap
import os
import stat

import pytest

from iohelp import MiB
from pysync import native
from pysync import _reference
from pysync.io import geometry
from pysync.io.buffers import AlignedBuffer, BufferPool, buffer_address
from pysync.io.geometry import fs_info, geometry_for_fd


def _tmpfile(d):
    return os.open(os.path.join(d, "g"), os.O_WRONLY | os.O_CREAT, 0o600)


def test_statx_on_root_ext4(tmp_path):
    fd = _tmpfile(tmp_path)
    try:
        g = geometry_for_fd(fd)
        info = fs_info(fd)
    finally:
        os.close(fd)
    assert g.source == "statx" and g.capable
    assert g.mem_align in (4, 8, 16, 512, 4096) and g.offset_align in (512, 4096)
    assert (info.fs_type, info.mount_point) == (fs_info(os.open("/", os.O_RDONLY)).fs_type, "/")


def test_native_and_reference_statx_agree(tmp_path):
    fd = _tmpfile(tmp_path)
    try:
        assert native.statx_dio(fd) == _reference.statx_dio(fd)
        os.write(fd, b"x" * 3 * mmap.PAGESIZE)
        rfd = os.open(tmp_path / "g", os.O_RDONLY)
        try:
            assert native.mincore(rfd, 0, 4 * mmap.PAGESIZE) == \
                _reference.mincore(rfd, 0, 4 * mmap.PAGESIZE) == b"\x01\x01\x01\x00"
        finally:
            os.close(rfd)
        native.sync_file_range(fd, 0, 0, 7)
        _reference.sync_file_range(fd, 0, 0, 7)
        native.fallocate(fd, 0, 0, MiB)
        _reference.fallocate(fd, 0, 0, 2 * MiB)
        assert os.fstat(fd).st_size == 2 * MiB
        with pytest.raises(OSError):
            native.mincore(fd, 1, 10)
    finally:
        os.close(fd)


def test_never_statx_a_directory(tmp_path, monkeypatch):
    """Discovery only ever asks statx about the regular file it is given."""
    seen = []
    real = native.statx_dio
    monkeypatch.setattr(native, "statx_dio",
                        lambda fd: seen.append(stat.S_ISREG(os.fstat(fd).st_mode)) or real(fd))
    from iohelp import write_file
    from pysync.io.sink import WriteMode
    write_file(tmp_path / "f", b"x" * (2 * MiB), WriteMode(direct_io=True))
    assert seen and all(seen)


def test_fallback_without_statx(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "statx_dio", lambda fd: (0, 0, 0, 0))
    fd = _tmpfile(tmp_path)
    try:
        st = os.fstat(fd)
        g = geometry_for_fd(fd, st.st_dev)
        lbs = geometry.sysfs_logical_block_size(st.st_dev)
    finally:
        os.close(fd)
    if lbs:
        assert g.source.startswith("sysfs logical_block_size") and g.offset_align == max(4096, lbs)
    else:
        assert (g.source, g.offset_align) == ("default", 4096)
    monkeypatch.setattr(native, "statx_dio", lambda fd: (0x2000, 0, 0, 0))
    fd = _tmpfile(tmp_path)
    try:
        assert not geometry_for_fd(fd).capable
    finally:
        os.close(fd)


def test_sysfs_unknown_device():
    assert geometry.sysfs_logical_block_size(os.makedev(0, 999999)) is None


def test_mountinfo_unescape():
    assert geometry._unescape(r"/mnt/a\040b\134c") == "/mnt/a b\\c"


def test_tmpfs_geometry_is_default(tmpfs64):
    fd = _tmpfile(tmpfs64)
    try:
        g = geometry_for_fd(fd)
        info = fs_info(fd)
    finally:
        os.close(fd)
    assert (g.offset_align, g.source) == (4096, "default")
    assert info.fs_type == "tmpfs" and info.mount_point == str(tmpfs64) and info.memory_only


def test_ext4_4k_geometry(ext4_4k):
    fd = _tmpfile(ext4_4k)
    try:
        g = geometry_for_fd(fd)
        info = fs_info(fd)
    finally:
        os.close(fd)
    assert (g.mem_align, g.offset_align, g.source) == (512, 4096, "statx")
    assert (info.fs_type, info.mount_point) == ("ext4", str(ext4_4k))


# ---- buffers ---------------------------------------------------------------------------


def _meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def test_buffers_aligned_and_private():
    shmem = _meminfo("Shmem")
    bufs = [AlignedBuffer(4 * MiB) for _ in range(8)]
    try:
        for b in bufs:
            b.view[:] = b"\xab" * len(b.view)  # touch every page
            assert b.addr % mmap.PAGESIZE == 0 and b.addr == buffer_address(b.map)
        # MAP_PRIVATE: 32 MiB of touched buffers do not show up as Shmem.
        assert _meminfo("Shmem") - shmem < 16 * MiB
    finally:
        for b in bufs:
            b.close()
    big = AlignedBuffer(MiB, mem_align=2 * MiB)
    assert big.addr % (2 * MiB) == 0 and len(big.view) == MiB
    big.close()


def test_pool_reuse_and_accounting():
    pool = BufferPool(max_idle_bytes=8 * MiB)
    a, b, c = (pool.acquire(4 * MiB) for _ in range(3))
    assert pool.outstanding == 3 and pool.peak_bytes == 12 * MiB
    addr = a.addr
    for x in (a, b, c):
        pool.release(x)
    assert pool.outstanding == 0
    again = pool.acquire(4 * MiB)
    assert again.addr in (addr, b.addr)  # reused, not re-mapped
    pool.release(again)
    pool.trim()
