"""Direct-I/O geometry of a destination file, and what file system it is on.

Alignment is a per-file property (notes/directio.md §2.4, §7.2):

1. ``statx(STATX_DIOALIGN)`` on the *open regular file* (never on a
   directory, which never reports it) gives ``stx_dio_mem_align`` and
   ``stx_dio_offset_align``.  Both 0 with the bit set means "this file
   cannot do direct I/O" (ext4 data=journal, encrypted, verity files).
2. Without the bit (btrfs, tmpfs, NFS, FUSE, kernels before 6.1): the
   ``logical_block_size`` of the block device ``st_dev`` in sysfs, rounded
   up to 4096.
3. Otherwise 4096.

Per-device facts (file system type, mount point, the sysfs fallback, whether
``F_SETFL O_DIRECT`` is refused) are cached per ``st_dev``; the statx call is
repeated per file because it is cheap and the verdict can differ per file.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading

from .. import native
from ..record import record

__all__ = ["DioGeometry", "FsInfo", "fs_info", "geometry_for_fd", "clear_caches",
           "set_direct", "sysfs_logical_block_size", "max_request_bytes", "PAGE_SIZE", "DEFAULT_ALIGN",
           "MEMORY_ONLY_FS"]

PAGE_SIZE = mmap.PAGESIZE
DEFAULT_ALIGN = 4096
# File systems whose file data lives in RAM: O_DIRECT and cache dropping
# cannot keep anything out of memory there.
MEMORY_ONLY_FS = frozenset({"tmpfs", "ramfs", "shmem", "devtmpfs", "hugetlbfs"})

_lock = threading.Lock()
_fs_cache: dict[int, "FsInfo"] = {}
_sysfs_cache: dict = {}


@record(frozen=True)
class FsInfo:
    """The mount a file lives on, from /proc/self/mountinfo by st_dev."""
    st_dev: int
    fs_type: str          # "ext4", "xfs", "ramfs", ... or "unknown"
    mount_point: str      # "/" ... or "?" when not found

    @property
    def memory_only(self) -> bool:
        return self.fs_type in MEMORY_ONLY_FS

    def describe(self) -> str:
        return f"{self.fs_type} mounted at {self.mount_point}"


@record(frozen=True)
class DioGeometry:
    """Direct-I/O alignment of one file.

    ``source`` says where the numbers came from: ``"statx"``,
    ``"sysfs logical_block_size of MAJ:MIN"`` or ``"default"``.
    ``capable`` is False when statx reports 0/0 (no DIO for this file).
    """
    mem_align: int
    offset_align: int
    source: str
    capable: bool = True

    def describe(self) -> str:
        return f"mem {self.mem_align}, offset {self.offset_align} (from {self.source})"


def clear_caches() -> None:
    """Forget cached per-device facts (tests, or after remounts)."""
    with _lock:
        _fs_cache.clear()
        _sysfs_cache.clear()


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _mounts_of(st_dev: int):
    want = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 7 or fields[2] != want:
                    continue
                try:
                    sep = fields.index("-", 6)
                except ValueError:
                    continue
                fs_type = fields[sep + 1] if sep + 1 < len(fields) else "unknown"
                found.append((_unescape(fields[4]), fs_type))
    except OSError:
        pass
    return found


def _fd_path(fd: int) -> "str | None":
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def fs_info(fd: int, st_dev: "int | None" = None) -> FsInfo:
    """File system type and mount point of the open file ``fd`` (cached per
    st_dev).  With bind mounts of one device, the mount point that is the
    longest prefix of the fd's path wins."""
    if st_dev is None:
        st_dev = os.fstat(fd).st_dev
    with _lock:
        info = _fs_cache.get(st_dev)
    if info is not None:
        return info
    mounts = _mounts_of(st_dev)
    if not mounts:
        info = FsInfo(st_dev, "unknown", "?")
    else:
        path = _fd_path(fd) or ""
        best = None
        for mp, typ in mounts:
            inside = path == mp or path.startswith(mp.rstrip("/") + "/")
            if inside and (best is None or len(mp) > len(best[0])):
                best = (mp, typ)
        mp, typ = best or mounts[0]
        info = FsInfo(st_dev, typ, mp)
    with _lock:
        _fs_cache[st_dev] = info
    return info


def _sysfs_queue(st_dev: int, name: str) -> "int | None":
    base = os.path.realpath(f"/sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}")
    for rel in ("queue", "../queue"):  # a partition reads its disk's queue
        try:
            with open(os.path.join(base, rel, name)) as f:
                value = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if value > 0:
            return value
    return None


def sysfs_logical_block_size(st_dev: int) -> "int | None":
    """The logical block size of block device st_dev, or None when there is
    no such device (btrfs, tmpfs, NFS)."""
    with _lock:
        if st_dev in _sysfs_cache:
            return _sysfs_cache[st_dev]
    value = _sysfs_queue(st_dev, "logical_block_size")
    with _lock:
        _sysfs_cache[st_dev] = value
    return value


def max_request_bytes(st_dev: int) -> "int | None":
    """The block device's largest request (queue/max_sectors_kb), or None."""
    key = ("max", st_dev)
    with _lock:
        if key in _sysfs_cache:
            return _sysfs_cache[key]
    kb = _sysfs_queue(st_dev, "max_sectors_kb")
    value = kb * 1024 if kb else None
    with _lock:
        _sysfs_cache[key] = value
    return value


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def geometry_for_fd(fd: int, st_dev: "int | None" = None) -> DioGeometry:
    """Direct-I/O alignment of the open regular file ``fd``."""
    if st_dev is None:
        st_dev = os.fstat(fd).st_dev
    try:
        mask, mem, off, _read = native.statx_dio(fd)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        mask, mem, off = 0, 0, 0
    if mask & 0x2000:
        if mem == 0 and off == 0:
            return DioGeometry(0, 0, "statx", capable=False)
        mem = mem or off
        off = off or mem
        return DioGeometry(mem, off, "statx")
    lbs = sysfs_logical_block_size(st_dev)
    if lbs:
        a = _round_up(max(lbs, DEFAULT_ALIGN), DEFAULT_ALIGN) if lbs <= DEFAULT_ALIGN else lbs
        return DioGeometry(a, a, f"sysfs logical_block_size of {os.major(st_dev)}:{os.minor(st_dev)}"
                           f" ({lbs}), rounded up to {a}")
    return DioGeometry(DEFAULT_ALIGN, DEFAULT_ALIGN, "default")


def set_direct(fd: int, on: bool) -> None:
    """Set or clear O_DIRECT on an open fd (fcntl F_SETFL)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    new = (flags | os.O_DIRECT) if on else (flags & ~os.O_DIRECT)
    if new != flags:
        fcntl.fcntl(fd, fcntl.F_SETFL, new)
