"""Page-aligned staging buffers for the write path.

Every buffer is an anonymous ``MAP_PRIVATE`` mapping: page aligned (so it
satisfies any direct-I/O memory alignment up to the page size) and, unlike
``mmap.mmap(-1, n)`` which is ``MAP_SHARED``, not counted as Shmem in
``Cached:`` (notes/directio.md §3.5).

One process-wide pool hands buffers out and keeps a few idle ones for reuse
(their pages are already faulted in).  It counts what is out, so tests can
check that nothing leaks and that staging memory stays bounded.
"""

from __future__ import annotations

import mmap
import threading

from .. import native

__all__ = ["AlignedBuffer", "BufferPool", "POOL", "buffer_address"]


def buffer_address(buf) -> int:
    """Address of the first byte of a writable buffer (mmap, bytearray)."""
    return native.buffer_address(buf)


class AlignedBuffer:
    """``size`` bytes of page-aligned anonymous memory.

    ``view`` is a writable memoryview over all of it, ``addr`` the address
    of its first byte (to check alignment before a direct write).
    """

    __slots__ = ("size", "map", "view", "addr", "__weakref__")

    def __init__(self, size: int, mem_align: int = mmap.PAGESIZE):
        if size <= 0:
            raise ValueError("buffer size must be positive")
        extra = mem_align if mem_align > mmap.PAGESIZE else 0
        self.map = mmap.mmap(-1, size + extra, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        base = buffer_address(self.map)
        skip = (-base) % mem_align if extra else 0
        self.size = size
        self.view = memoryview(self.map)[skip:skip + size]
        self.addr = base + skip
        if self.addr % mem_align:
            raise AssertionError(f"mmap gave a buffer at {self.addr:#x}, not {mem_align}-aligned")

    def close(self) -> None:
        self.view.release()
        self.map.close()


class BufferPool:
    """Hands out AlignedBuffers and keeps up to ``max_idle_bytes`` of
    returned ones for reuse.  Thread-safe."""

    def __init__(self, max_idle_bytes: int = 32 << 20):
        self.max_idle_bytes = max_idle_bytes
        self._idle: dict[int, list[AlignedBuffer]] = {}
        self._idle_bytes = 0
        self._lock = threading.Lock()
        self.outstanding = 0          # buffers handed out and not returned
        self.outstanding_bytes = 0
        self.peak_bytes = 0           # high-water mark of outstanding_bytes

    def acquire(self, size: int) -> AlignedBuffer:
        with self._lock:
            free = self._idle.get(size)
            buf = free.pop() if free else None
            if buf is not None:
                self._idle_bytes -= size
            self.outstanding += 1
            self.outstanding_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.outstanding_bytes)
        if buf is None:
            try:
                buf = AlignedBuffer(size)
            except BaseException:
                with self._lock:
                    self.outstanding -= 1
                    self.outstanding_bytes -= size
                raise
        return buf

    def release(self, buf: AlignedBuffer) -> None:
        with self._lock:
            self.outstanding -= 1
            self.outstanding_bytes -= buf.size
            if self._idle_bytes + buf.size <= self.max_idle_bytes:
                self._idle.setdefault(buf.size, []).append(buf)
                self._idle_bytes += buf.size
                return
        buf.close()

    def reset_peak(self) -> None:
        with self._lock:
            self.peak_bytes = self.outstanding_bytes

    def trim(self) -> None:
        """Unmap every idle buffer."""
        with self._lock:
            idle = [b for bufs in self._idle.values() for b in bufs]
            self._idle.clear()
            self._idle_bytes = 0
        for b in idle:
            b.close()


POOL = BufferPool()
