"""Write-behind: disk writes overlap the producer (the network reader).

A fixed set of K staging buffers cycles between the producer and one writer
thread: the producer takes a free buffer (blocking while all K are in
flight, which bounds memory to K x chunk), fills it and submits it with its
file offset; the writer thread calls ``write_fn(items)`` in submission
order, where ``items`` is a list of up to ``max_batch`` file-contiguous
``(buf, length, offset)`` already waiting (one ``pwritev`` for all: larger
requests are markedly faster on the measured disk), and hands the buffers
back.  ``os.pwritev`` releases the GIL, so the two really overlap.

The first exception in the writer wins: later items are skipped (their
buffers still come back) and the error is raised by the producer's next
``get_buffer()``/``submit()``/``drain()``.  ``close()``/``abort()`` always
join the thread.

``InlineWriter`` has the same interface and writes synchronously, for modes
where the kernel already does write-behind (buffered, RWF_DONTCACHE).
"""

from __future__ import annotations

import queue
import threading

__all__ = ["WriteBehind", "InlineWriter"]

_STOP = object()


class InlineWriter:
    """Synchronous writes (no thread): submitted buffers are collected until
    all are full (or ``max_batch`` of them), then written with one
    ``write_fn(items)`` call."""

    def __init__(self, write_fn, buffers, max_batch: "int | None" = None):
        self._write = write_fn
        self._free = list(buffers)
        self._pending: list = []
        self._max = max(1, min(max_batch or len(buffers), len(buffers)))
        self.error = None

    def _flush(self) -> None:
        items, self._pending = self._pending, []
        try:
            self._write(items)
        finally:
            self._free.extend(b for b, _, _ in items)

    def get_buffer(self):
        if not self._free:
            self._flush()
        return self._free.pop()

    def submit(self, buf, length: int, offset: int) -> None:
        self._pending.append((buf, length, offset))
        if len(self._pending) >= self._max:
            self._flush()

    def give_back(self, buf) -> None:
        self._free.append(buf)

    def check(self) -> None:
        pass

    def drain(self) -> None:
        if self._pending:
            self._flush()

    def close(self):
        """Stop (pending writes are flushed by drain(), not here); returns
        every buffer."""
        free = self._free + [b for b, _, _ in self._pending]
        self._free, self._pending = [], []
        return free

    abort = close


class WriteBehind:
    """A writer thread fed by a bounded set of buffers (see module doc)."""

    def __init__(self, write_fn, buffers, max_batch: int = 1, name: str = "pysync-writebehind"):
        if not buffers:
            raise ValueError("write-behind needs at least one buffer")
        self._write = write_fn
        self._max = max(1, max_batch)
        self._nbufs = len(buffers)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for b in buffers:
            self._free.put(b)
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self.error: "BaseException | None" = None
        self._skip = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- writer thread ------------------------------------------------------------
    def _run(self) -> None:
        work, free, most = self._work, self._free, self._max
        held = None
        while True:
            if held is not None:
                item, held = held, None
            else:
                item = work.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            batch = [item]
            while len(batch) < most:
                try:
                    nxt = work.get_nowait()
                except queue.Empty:
                    break
                last = batch[-1]
                if type(nxt) is tuple and nxt[2] == last[2] + last[1]:
                    batch.append(nxt)
                else:
                    held = nxt
                    break
            try:
                if self.error is None and not self._skip:
                    self._write(batch)
            except BaseException as e:  # first error wins
                if self.error is None:
                    self.error = e
            finally:
                for b, _, _ in batch:
                    free.put(b)

    # -- producer side ------------------------------------------------------------
    def check(self) -> None:
        """Raise the writer's first error, if any."""
        if self.error is not None:
            raise self.error

    def get_buffer(self):
        self.check()
        buf = self._free.get()
        if self.error is not None:
            self._free.put(buf)
            raise self.error
        return buf

    def give_back(self, buf) -> None:
        """Return a buffer taken with get_buffer() that will not be submitted."""
        self._free.put(buf)

    def submit(self, buf, length: int, offset: int) -> None:
        if self.error is not None:
            self._free.put(buf)
            raise self.error
        self._work.put((buf, length, offset))

    def drain(self) -> None:
        """Wait until everything submitted has been written; raise the
        writer's error if there was one."""
        if self._thread.is_alive():
            done = threading.Event()
            self._work.put(done)
            while not done.wait(0.5):
                if not self._thread.is_alive():  # pragma: no cover - cannot happen
                    break
        self.check()

    def _stop(self):
        if not self._closed:
            self._closed = True
            self._work.put(_STOP)
            self._thread.join()
        bufs = []
        while len(bufs) < self._nbufs:
            try:
                bufs.append(self._free.get_nowait())
            except queue.Empty:  # pragma: no cover - a buffer was never given back
                break
        self._nbufs = 0
        return bufs

    def close(self):
        """Finish pending writes, join the thread, return all buffers."""
        return self._stop()

    def abort(self):
        """Skip whatever is still queued, join the thread, return all
        buffers.  The write in progress (one syscall) is waited for."""
        self._skip = True
        return self._stop()
