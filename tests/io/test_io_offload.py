"""Local copies: reflink, copy_file_range, or the pipeline, with the cache
rules."""

from __future__ import annotations

import os

import pytest

from iohelp import MiB, evict, resident
from pysync.io.offload import copy_file
from pysync.io.sink import WriteMode


def _copy(src, dst, mode):
    s = os.open(src, os.O_RDONLY)
    d_dir = os.open(os.path.dirname(dst), os.O_RDONLY)
    d = os.open(os.path.basename(dst), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600,
                dir_fd=d_dir)
    try:
        return copy_file(s, d, os.fstat(s).st_size, mode, dir_fd=d_dir,
                         temp_name=os.path.basename(dst).encode(), shown_path=str(dst).encode())
    finally:
        os.close(s)
        os.close(d)
        os.close(d_dir)


@pytest.mark.parametrize("size", [0, 5, 3 * MiB + 777])
def test_ext4_copy_file_range(tmp_path, payload, size):
    src = tmp_path / "s"
    src.write_bytes(payload[:size])
    how = _copy(src, tmp_path / "d", WriteMode())
    assert how == "copy_file_range"
    assert (tmp_path / "d").read_bytes() == payload[:size]


@pytest.mark.parametrize("mode", [WriteMode(drop_cache=True), WriteMode(direct_io=True),
                                  WriteMode(direct_io=True, drop_cache=True, fsync=True)])
def test_ext4_cache_modes_use_pipeline(tmp_path, payload, mode):
    src = tmp_path / "s"
    src.write_bytes(payload[:64 * MiB + 3])
    evict(src)
    how = _copy(src, tmp_path / "d", mode)
    assert how == "pipeline"
    assert resident(tmp_path / "d") < 64 * MiB // 10
    assert resident(src) < 64 * MiB // 10
    assert (tmp_path / "d").read_bytes() == payload[:64 * MiB + 3]


def test_xfs_reflink(xfs_4k, payload):
    src = xfs_4k / "rs"
    src.write_bytes(payload[:8 * MiB + 1])
    evict(src)
    for i, mode in enumerate((WriteMode(), WriteMode(direct_io=True, drop_cache=True))):
        dst = xfs_4k / f"rd{i}"
        assert _copy(src, dst, mode) == "reflink"
        assert resident(dst) == 0
        assert dst.read_bytes() == payload[:8 * MiB + 1]
        dst.unlink()
    src.unlink()


def test_cross_fs_falls_back(tmpfs64, tmp_path, payload):
    src = tmpfs64 / "x"
    src.write_bytes(payload[:2 * MiB + 9])
    how = _copy(src, tmp_path / "y", WriteMode())
    assert how in ("pipeline", "copy_file_range")
    assert (tmp_path / "y").read_bytes() == payload[:2 * MiB + 9]
    assert _copy(src, tmp_path / "z", WriteMode(drop_cache=True)) == "pipeline"
    assert (tmp_path / "z").read_bytes() == payload[:2 * MiB + 9]
