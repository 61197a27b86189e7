"""WriteBehind without a kernel: order, bounds, first error wins."""

from __future__ import annotations

import random
import threading
import time

import pytest

from pysync.io.writebehind import InlineWriter, WriteBehind


class Buf:
    def __init__(self):
        self.data = None


def test_order_and_bound():
    out = []
    in_flight = []
    bufs = [Buf() for _ in range(4)]
    held = set()
    lock = threading.Lock()

    batches = []

    def write(items):
        time.sleep(random.random() / 2000)
        batches.append(len(items))
        for buf, n, off in items:
            out.append((off, buf.data))

    wb = WriteBehind(write, bufs, max_batch=2)
    rng = random.Random(1)
    for i in range(300):
        b = wb.get_buffer()
        with lock:
            held.add(id(b))
            assert len(held) <= 4
        b.data = i
        if rng.random() < 0.1:
            time.sleep(0.001)
        wb.submit(b, 1, i)
        with lock:
            held.discard(id(b))
    wb.drain()
    assert [o for o, _ in out] == list(range(300)) and [d for _, d in out] == list(range(300))
    assert max(batches) == 2 and len(wb.close()) == 4


def test_first_error_wins_and_surfaces():
    calls = []

    def write(items):
        for buf, n, off in items:
            calls.append(off)
            if off == 2:
                raise OSError(5, "first")
            if off == 3:
                raise OSError(5, "second")

    bufs = [Buf() for _ in range(3)]
    wb = WriteBehind(write, bufs)
    with pytest.raises(OSError, match="first"):
        for i in range(100):
            wb.submit(wb.get_buffer(), 1, i)
        wb.drain()
    assert 3 not in calls  # later items were skipped, not written
    assert len(wb.abort()) == 3


def test_abort_skips_queue():
    gate = threading.Event()
    done = []

    def write(items):
        gate.wait()
        done.extend(off for _, _, off in items)

    wb = WriteBehind(write, [Buf() for _ in range(4)])
    for i in range(4):
        wb.submit(wb.get_buffer(), 1, i)
    threading.Timer(0.05, gate.set).start()
    assert len(wb.abort()) == 4
    assert done in ([0], [])


def test_batches_only_contiguous():
    seen = []
    gate = threading.Event()

    def write(items):
        gate.wait()
        seen.append([off for _, _, off in items])

    wb = WriteBehind(write, [Buf() for _ in range(6)], max_batch=3)
    for off in (0, 1, 2, 3, 10, 11):
        wb.submit(wb.get_buffer(), 1, off)
    gate.set()
    wb.drain()
    wb.close()
    assert [o for batch in seen for o in batch] == [0, 1, 2, 3, 10, 11]
    assert all(len(b) <= 3 and b == list(range(b[0], b[0] + len(b))) for b in seen)


def test_inline_writer():
    out = []
    w = InlineWriter(lambda items: out.append([off for _, _, off in items]), [Buf()])
    for i in range(3):
        w.submit(w.get_buffer(), 1, i)
    w.drain()
    assert out == [[0], [1], [2]] and len(w.close()) == 1
    out.clear()
    w = InlineWriter(lambda items: out.append([off for _, _, off in items]), [Buf(), Buf()])
    for i in range(5):
        w.submit(w.get_buffer(), 1, i)
    w.drain()
    assert out == [[0, 1], [2, 3], [4]] and len(w.close()) == 2
