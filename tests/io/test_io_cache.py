"""Read side of --drop-cache: what was cached stays cached, what we bring
in goes away."""

from __future__ import annotations

import os

import pytest

from iohelp import BIG, MiB, evict, resident, sha, unless_cache_dropped, warm
from pysync.io import cache
from pysync.io.cache import SourceReader, read_chunks

POLICIES = ["dontcache", "nocache"]


def _force(path, policy):
    if policy == "nocache":
        with cache._lock:
            cache._dontcache_read[os.stat(path).st_dev] = False


def _read_all(path, drop, chunk=cache.READ_CHUNK):
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = list(read_chunks(fd, None, drop, chunk))
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)
    return b"".join(parts)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory, payload):
    p = tmp_path_factory.mktemp("rd") / "src192"
    p.write_bytes(memoryview(payload)[:BIG])
    return p


@pytest.mark.parametrize("policy", POLICIES)
def test_cached_source_stays_cached(tmp_path, payload, policy):
    unless_cache_dropped(lambda: _stays_cached(tmp_path, payload, policy))


def _stays_cached(tmp_path, payload, policy):
    p = tmp_path / "src32"
    p.write_bytes(payload[:32 * MiB])
    warm(p)
    assert resident(p) >= 32 * MiB * 0.99
    _force(p, policy)
    fd = os.open(p, os.O_RDONLY)
    try:
        with SourceReader(fd, True) as r:
            seen = [r.mode, r._runs]
            got = []
            while True:
                b = r.read(MiB)
                if not b:
                    break
                got.append(b)
            seen.append(cache.resident_bytes(fd))
        seen.append(cache.resident_bytes(fd))
    finally:
        os.close(fd)
    assert b"".join(got) == payload[:32 * MiB]
    assert resident(p) >= 32 * MiB * 0.9, seen


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_uncached_source_leaves_nothing(big_file, payload, policy):
    evict(big_file)
    assert resident(big_file) < BIG // 100
    _force(big_file, policy)
    data = _read_all(big_file, True)
    assert resident(big_file) < BIG // 10
    assert sha(data) == sha(memoryview(payload)[:BIG])


def test_half_warm_keeps_exactly_the_warm_half(tmp_path, payload):
    unless_cache_dropped(lambda: _half_warm(tmp_path, payload))


def _half_warm(tmp_path, payload):
    p = tmp_path / "half"
    p.write_bytes(payload[:64 * MiB])
    evict(p)
    with open(p, "rb") as f:  # pre-warm the second half
        f.seek(32 * MiB)
        f.read(32 * MiB)
    _force(p, "nocache")
    fd = os.open(p, os.O_RDONLY)
    try:
        with SourceReader(fd, True) as r:
            assert r.mode == "nocache"
            got = []
            while True:
                b = r.read(MiB)
                if not b:
                    break
                got.append(b)
        assert b"".join(got) == payload[:64 * MiB]
        first = cache.resident_bytes(fd, 0, 32 * MiB)
        second = cache.resident_bytes(fd, 32 * MiB, 32 * MiB)
    finally:
        os.close(fd)
    assert first < 32 * MiB // 10
    assert second >= 32 * MiB * 0.95


def test_plain_read_chunks_and_limits(tmp_path, payload):
    p = tmp_path / "p"
    p.write_bytes(payload[:3 * MiB + 5])
    assert _read_all(p, False) == payload[:3 * MiB + 5]
    fd = os.open(p, os.O_RDONLY)
    try:
        os.lseek(fd, 100, os.SEEK_SET)
        parts = list(read_chunks(fd, 1000, True, chunk=300))
        assert [len(x) for x in parts] == [300, 300, 300, 100]
        assert b"".join(parts) == payload[100:1100]
        r = SourceReader(fd, True)
        assert bytes(r.pread(10, 5)) == payload[5:15]
        buf = bytearray(7)
        assert r.readinto(memoryview(buf)) == 7 and bytes(buf) == payload[100:107]
        r.close()
    finally:
        os.close(fd)


def test_tmpfs_reads_do_not_drop(tmpfs64, payload):
    p = tmpfs64 / "t"
    p.write_bytes(payload[:4 * MiB])
    fd = os.open(p, os.O_RDONLY)
    try:
        assert SourceReader(fd, True).mode == "plain"
    finally:
        os.close(fd)
    assert _read_all(p, True) == payload[:4 * MiB]
