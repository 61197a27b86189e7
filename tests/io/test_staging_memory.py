"""Staging memory of the write path: a plain buffered sink with
write-behind double-buffers (two chunks of one page-cache write each),
whatever queue_bytes and chunk_bytes say (the O_DIRECT sinks stage up to
queue_bytes: test_io_sink.py)."""
from __future__ import annotations

from iohelp import MiB, write_file

from pysync.io.buffers import POOL
from pysync.io.sink import CHUNK, PAGE_CACHE_CHUNK, WriteMode


def _peak(tmp_path, name, data, mode) -> int:
    POOL.reset_peak()
    base = POOL.outstanding_bytes
    write_file(tmp_path / name, data, mode, choices=(1, 4096, 1 << 20, 3 << 20))
    assert (tmp_path / name).read_bytes() == bytes(data)
    assert POOL.outstanding_bytes == base
    return POOL.peak_bytes - base


def test_buffered_write_behind_stages_two_chunks(tmp_path, payload):
    data = memoryview(payload)[:48 * MiB]
    peak = _peak(tmp_path, "b", data, WriteMode(write_behind=True, queue_bytes=16 * MiB))
    assert PAGE_CACHE_CHUNK < peak <= 2 * PAGE_CACHE_CHUNK     # both buffers used, no third
    assert PAGE_CACHE_CHUNK < CHUNK         # smaller than the O_DIRECT sinks' chunks

