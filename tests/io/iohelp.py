"""Helpers for tests/io: real file systems on loop devices, ramfs/tmpfs
mounts, page-cache measurement, writing through make_sink."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path

from pysync.io.cache import flush_pending_drops, resident_bytes
from pysync.io.sink import WriteMode, make_sink

MiB = 1 << 20
SIZES = [0, 1, 511, 4095, 4096, 4097, MiB - 1, MiB, MiB + 1, 3 * MiB + 777]
BIG = 192 * MiB
IS_ROOT = os.geteuid() == 0
HAVE_LOOP = IS_ROOT and os.path.exists("/dev/loop-control") and bool(shutil.which("losetup"))


def run(*cmd, check=True, **kw):
    return subprocess.run([str(c) for c in cmd], check=check, capture_output=True, text=True, **kw)


def resident(path) -> int:
    """Bytes of the file in the page cache: fincore when installed, else
    our own mincore."""
    if shutil.which("fincore"):
        r = run("fincore", "--bytes", "--raw", "--noheadings", "-o", "RES", path, check=False)
        if r.returncode == 0 and r.stdout.strip():
            return int(r.stdout.split()[0])
    fd = os.open(path, os.O_RDONLY)
    try:
        return resident_bytes(fd)
    finally:
        os.close(fd)


def evict(path) -> None:
    """Make a file 'not previously cached'."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path) -> None:
    with open(path, "rb") as f:
        while f.read(8 * MiB):
            pass


def pieces(size, seed=0, choices=(1, 700, 32 * 1024, 65536 + 3, 1 << 20)):
    """(start, end) pieces covering [0, size), sizes drawn from choices."""
    rng = random.Random(seed)
    pos = 0
    while pos < size:
        n = min(rng.choice(choices), size - pos)
        yield pos, pos + n
        pos += n


def write_file(path, data, mode: WriteMode, expected=None, seed=0, choices=None):
    """Write ``data`` to ``path`` through make_sink like the receiver does
    (temp fd opened O_WRONLY); returns the sink."""
    path = Path(path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    sink = None
    try:
        sink = make_sink(fd, dir_fd, path.name.encode(), str(path).encode(),
                         len(data) if expected is None else expected, mode)
        mv = memoryview(data)
        kw = {"choices": choices} if choices else {}
        for a, b in pieces(len(data), seed, **kw):
            sink.write(mv[a:b])
        sink.finish()
        flush_pending_drops()
        return sink
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        os.close(fd)
        os.close(dir_fd)


def sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


@contextlib.contextmanager
def mounted(fstype, source, target, options=None):
    os.makedirs(target, exist_ok=True)
    cmd = ["mount", "-t", fstype] + (["-o", options] if options else []) + [source, target]
    run(*cmd)
    try:
        yield Path(target)
    finally:
        if run("umount", target, check=False).returncode != 0:
            run("umount", "-l", target, check=False)
        with contextlib.suppress(OSError):
            os.rmdir(target)


@contextlib.contextmanager
def loop_fs(workdir, fstype, size_mib, sector=512, mkfs_args=(), mount_options=None):
    """A fresh file system of ``size_mib`` on a loop device (``sector`` =
    its logical block size), mounted under workdir; all undone at exit."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{fstype}-{sector}-{uuid.uuid4().hex[:8]}"
    img = workdir / f"{tag}.img"
    mnt = workdir / f"{tag}.mnt"
    dev = None
    try:
        with open(img, "wb") as f:
            f.truncate(size_mib * MiB)
        cmd = ["losetup", "-f", "--show", "-b", str(sector)]
        r = run(*cmd, "--direct-io=on", img, check=False)
        if r.returncode != 0:
            r = run(*cmd, img)
        dev = r.stdout.strip()
        mkfs = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"]}[fstype]
        run(*mkfs, *mkfs_args, dev)
        with mounted(fstype, dev, mnt, mount_options) as m:
            yield m
    finally:
        if dev:
            run("losetup", "-d", dev, check=False)
        with contextlib.suppress(OSError):
            img.unlink()


_XFS_STATE = {}


def mkfs_xfs_missing() -> "str | None":
    """None when mkfs.xfs is usable (installing xfsprogs with apt-get if it
    is missing), else the reason to skip."""
    if shutil.which("mkfs.xfs"):
        return None
    if "reason" in _XFS_STATE:
        return _XFS_STATE["reason"]
    reason = "mkfs.xfs missing and apt-get could not install xfsprogs"
    if shutil.which("apt-get") and IS_ROOT:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run("apt-get", "install", "-y", "-q", "xfsprogs", check=False, env=env)
        if r.returncode != 0:
            run("apt-get", "update", "-q", check=False, env=env)
            r = run("apt-get", "install", "-y", "-q", "xfsprogs", check=False, env=env)
        if r.returncode == 0 and shutil.which("mkfs.xfs"):
            reason = None
    _XFS_STATE["reason"] = reason
    return reason


def drop_count() -> int:
    """How often anyone wrote to /proc/sys/vm/drop_caches (vmstat)."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("drop_pagecache "):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def unless_cache_dropped(body, tries=3):
    """Run a test body that asserts pages *stay* cached; the machine is
    shared, and a `echo 3 > /proc/sys/vm/drop_caches` from elsewhere during
    the body is not our failure: run it again then."""
    for i in range(tries):
        before = drop_count()
        try:
            return body()
        except AssertionError:
            if drop_count() == before or i == tries - 1:
                raise
