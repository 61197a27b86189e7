"""Fixtures for the write-path tests (helpers are in iohelp.py).  What needs
root or loop devices skips with a reason when they are missing; every mount,
loop device and image is removed in a ``finally``."""

from __future__ import annotations

import os
import threading

import pytest

from iohelp import BIG, HAVE_LOOP, IS_ROOT, loop_fs, mkfs_xfs_missing, mounted
from pysync.io import sink as sink_mod
from pysync.io.buffers import POOL
from pysync.io.cache import flush_pending_drops


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (seconds; each under 30 s)")


@pytest.fixture(autouse=True)
def _fresh_state():
    """Per-device verdicts are keyed by st_dev, and loop devices get reused
    by other file systems between tests: forget them.  Afterwards, check
    that no staging buffer leaked and no writer thread is left."""
    sink_mod.clear_caches()
    before = POOL.outstanding
    yield
    flush_pending_drops()
    sink_mod.clear_caches()
    assert POOL.outstanding == before, "staging buffers leaked"
    assert not [t for t in threading.enumerate() if t.name == "pysync-writebehind"], \
        "writer thread left running"


@pytest.fixture(scope="session")
def payload():
    """Random bytes for every size, the largest included."""
    return os.urandom(BIG + 4096)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("iofs")


def _need_loop():
    if not HAVE_LOOP:
        pytest.skip("needs root, losetup and /dev/loop-control")


@pytest.fixture(scope="session")
def xfs_4k(scratch):
    """xfs on a loop device with 4096-byte logical sectors."""
    _need_loop()
    reason = mkfs_xfs_missing()
    if reason:
        pytest.skip(reason)
    with loop_fs(scratch, "xfs", 700, sector=4096) as m:
        yield m


@pytest.fixture(scope="session")
def ext4_4k(scratch):
    """ext4 on a loop device with 4096-byte logical sectors."""
    _need_loop()
    with loop_fs(scratch, "ext4", 600, sector=4096) as m:
        yield m


@pytest.fixture
def ext4_64m(tmp_path):
    _need_loop()
    with loop_fs(tmp_path, "ext4", 64) as m:
        yield m


@pytest.fixture
def ext4_journal(tmp_path):
    _need_loop()
    with loop_fs(tmp_path, "ext4", 64, mount_options="data=journal") as m:
        yield m


@pytest.fixture
def ramfs(tmp_path):
    if not IS_ROOT:
        pytest.skip("needs root to mount ramfs")
    with mounted("ramfs", "ramfs", tmp_path / "ramfs") as m:
        yield m


@pytest.fixture
def tmpfs64(tmp_path):
    if not IS_ROOT:
        pytest.skip("needs root to mount tmpfs")
    with mounted("tmpfs", "tmpfs", tmp_path / "tmpfs", "size=64m") as m:
        yield m
