"""Strong checksums: rsync's seeding and byte order, checked independently."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest
import xxhash

from pysync.protocol.checksums import CHECKSUM_DIGEST_LEN, get_checksum

NAMES = ["xxh128", "xxh3", "xxh64", "md5", "md4", "sha1", "none"]
SEEDS = [0, 1, 0x12345678, 0x7FFFFFFF, -1, -123456789, -0x80000000]
M64 = (1 << 64) - 1


def _native_md4():
    try:
        from pysync import native
        native.Md4
    except Exception as e:  # ImportError, or a half-built module
        pytest.skip(f"pysync.native (md4) not available: {e}")
    return native


# --- an independent MD4 (RFC 1320), only for these tests ------------------------

def _rotl(x, n):
    x &= 0xFFFFFFFF
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def md4_reference(data: bytes) -> bytes:
    msg = bytearray(data)
    bit_len = (8 * len(data)) & M64
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bit_len)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        f = lambda x_, y, z: (x_ & y) | (~x_ & z)
        g = lambda x_, y, z: (x_ & y) | (x_ & z) | (y & z)
        h = lambda x_, y, z: x_ ^ y ^ z
        for i in range(16):
            k = i
            s = (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, _rotl(a + f(b, c, d) + x[k], s), b, c
        for i in range(16):
            k = (i % 4) * 4 + i // 4
            s = (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, _rotl(a + g(b, c, d) + x[k] + 0x5A827999, s), b, c
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):
            k = order[i]
            s = (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, _rotl(a + h(b, c, d) + x[k] + 0x6ED9EBA1, s), b, c
        a = (a + aa) & 0xFFFFFFFF
        b = (b + bb) & 0xFFFFFFFF
        c = (c + cc) & 0xFFFFFFFF
        d = (d + dd) & 0xFFFFFFFF
    return struct.pack("<4I", a, b, c, d)


def test_md4_reference_itself():
    assert md4_reference(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert md4_reference(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"


# --- the rules, written out ----------------------------------------------------

def seed_u64(seed: int) -> int:
    """C: an int32 passed to an unsigned 64-bit parameter (sign-extended)."""
    (signed,) = struct.unpack("<i", struct.pack("<I", seed & 0xFFFFFFFF))
    return signed & M64


def seed4(seed: int) -> bytes:
    return struct.pack("<I", seed & 0xFFFFFFFF) if seed & 0xFFFFFFFF else b""


def expected_block(name: str, data: bytes, seed: int) -> bytes:
    if name == "xxh128":
        v = xxhash.xxh3_128_intdigest(data, seed_u64(seed))
        return struct.pack("<QQ", v & M64, v >> 64)
    if name == "xxh3":
        return struct.pack("<Q", xxhash.xxh3_64_intdigest(data, seed_u64(seed)))
    if name == "xxh64":
        return struct.pack("<Q", xxhash.xxh64_intdigest(data, seed_u64(seed)))
    if name == "md5":
        return hashlib.md5(seed4(seed) + data).digest()
    if name == "sha1":
        return hashlib.sha1(seed4(seed) + data).digest()
    if name == "md4":
        return md4_reference(data + seed4(seed))
    raise AssertionError(name)


def expected_file(name: str, data: bytes) -> bytes:
    if name == "none":
        return b"\x00"
    if name == "md4":
        return md4_reference(data)
    if name in ("md5", "sha1"):
        return hashlib.new(name, data).digest()
    return expected_block(name, data, 0)


def _checksum(name):
    if name == "md4":
        _native_md4()
    return get_checksum(name)


# --- tests -----------------------------------------------------------------------

def test_hello_world_xxh128_whole_file():
    # protocol.md §5.7, verified against rsync.
    h = get_checksum("xxh128").file_hasher()
    h.update(b"hello world\n")
    assert h.digest().hex() == "254448a533e7b23613cd0071d8c9faee"


@pytest.mark.parametrize("name", NAMES)
def test_digest_lengths(name):
    expected = {"xxh128": 16, "xxh3": 8, "xxh64": 8, "md5": 16, "md4": 16, "sha1": 20, "none": 1}
    assert CHECKSUM_DIGEST_LEN[name] == expected[name]
    cs = _checksum(name)
    assert cs.name == name and cs.digest_len == expected[name]


@pytest.mark.parametrize("name", NAMES)
def test_whole_file_sum_is_unseeded_and_streams(name):
    cs = _checksum(name)
    rnd = random.Random(2)
    for size in (0, 1, 63, 64, 65, 1000, 100_000):
        data = rnd.randbytes(size)
        h = cs.file_hasher()
        for i in range(0, size, 777):
            h.update(memoryview(data)[i:i + 777])
        assert h.digest() == expected_file(name, data), size
        assert len(h.digest()) == cs.digest_len


@pytest.mark.parametrize("name", ["xxh128", "xxh3", "xxh64", "md5", "md4", "sha1"])
def test_block_sums_follow_the_seed_rules(name):
    cs = _checksum(name)
    rnd = random.Random(3)
    for seed in SEEDS:
        for size in (0, 1, 4, 700, 4096, 131072):
            data = rnd.randbytes(size)
            want = expected_block(name, data, seed)
            assert cs.block_sum(data, seed) == want, (seed, size)
            assert cs.seeded(seed)(data) == want
            assert cs.block_sum(bytearray(data), seed) == want


@pytest.mark.parametrize("name", ["xxh128", "xxh3", "xxh64", "md5", "sha1"])
def test_signed_and_unsigned_seed_forms_agree(name):
    cs = get_checksum(name)
    data = b"x" * 700
    assert cs.block_sum(data, -1) == cs.block_sum(data, 0xFFFFFFFF)
    assert cs.block_sum(data, -123456789) == cs.block_sum(data, (-123456789) & 0xFFFFFFFF)


def test_zero_seed_adds_no_bytes():
    data = b"some block"
    assert get_checksum("md5").block_sum(data, 0) == hashlib.md5(data).digest()
    assert get_checksum("sha1").block_sum(data, 0) == hashlib.sha1(data).digest()


def test_md5_without_seed_fix_appends_the_seed():
    cs = get_checksum("md5", seed_fix=False)
    assert cs.block_sum(b"abc", 5) == hashlib.md5(b"abc" + b"\x05\0\0\0").digest()
    assert cs.block_sum(b"abc", 0) == hashlib.md5(b"abc").digest()
    # only md5 cares
    assert get_checksum("xxh64", seed_fix=False) is get_checksum("xxh64")


def test_md4_seed_goes_after_the_data():
    native = _native_md4()
    cs = get_checksum("md4")
    assert cs.block_sum(b"abc", 0) == native.md4(b"abc") == md4_reference(b"abc")
    assert cs.block_sum(b"abc", 7) == md4_reference(b"abc\x07\0\0\0")


def test_none():
    cs = get_checksum("none")
    h = cs.file_hasher()
    h.update(b"anything")
    assert h.digest() == b"\x00"


def test_names():
    assert get_checksum("xxhash") is get_checksum("xxh64")
    with pytest.raises(ValueError):
        get_checksum("crc32")


# Captured from stock rsync 3.2.7 (protocol 32): a client pushed NEW over
# OLD (the basis, 6 blocks of 700 bytes) with --checksum-seed=-123456789
# --cc=NAME; we replayed the client's stream into a fresh `rsync --server`
# with the file's whole-file sum corrupted, so its generator asked again in
# the redo phase with s2length 16. These are that generator's 6 block sums
# (head cut off): uint32 weak + 16 strong bytes each. For xxh3/xxh64 (8-byte
# digests) rsync 3.2.7 still sends 16 bytes, the last 8 being junk.
REDO_SEED = -123456789
OLD = b"".join(b"%04d: the quick brown fox jumps over the lazy dog\n" % i for i in range(80))
REDO_SUMS = {
    "xxh128": "cdef457c15136150b45f7eb37d1577eb66c32e79efefc7b490f2238a27d3f2b16ec34d1a0f723266"
              "ffef1bcc8fa28abf23d556941e19c40dd7233fbc0ff06fe3642fb1bed3ab83b455fa39c433498575"
              "31f0e10d286dfba584a412f89f98e04526b3759095aba5497159086b07a9dbe61425934e254abe3d",
    "xxh3": "cdef457c15136150b45f7eb3002f685900000000efefc7b490f2238a27d3f2b1002f685900000000"
            "ffef1bcc8fa28abf23d55694002f6859000000000ff06fe3642fb1bed3ab83b4002f685900000000"
            "31f0e10d286dfba584a412f8002f68590000000095aba5497159086b07a9dbe6002f685900000000",
    "xxh64": "cdef457c031887a69c004e92002f685900000000efefc7b4ac272e4aec6ba6d6002f685900000000"
             "ffef1bcc6977b5d21310507e002f6859000000000ff06fe3390159cb049520b7002f685900000000"
             "31f0e10dbb739657d2a0a111002f68590000000095aba5493e1e17f850ca8604002f685900000000",
    "md5": "cdef457c384a6ddef963ce5aa78932e03497ee63efefc7b4f3598452ef9d0c379ae974cb4ae629a7"
           "ffef1bcc421085f679c5f6fdcce34f7f0e1ee5a90ff06fe3777f86c7cd1047f24b2d3666886c6f23"
           "31f0e10d251b67795bf150fa15240f9ee1f42bf195aba5492afea0427e27d26ea68ce6dcaa129b04",
    "md4": "cdef457ca9c898119d79f299e12ba56cc5487e85efefc7b4b126f981aceca1d2cddb7eb758719a82"
           "ffef1bcc0212ad25566a0d991510e544d592a0bc0ff06fe3975129b331a1b59f465b5f6a4cd9968f"
           "31f0e10d79a555c861fe860e5725b41c2fd6790495aba549b1d0ec1681f79ad5abaaf9c79fd27c30",
    "sha1": "cdef457c1214f878e164dc4f954983485e25cda6efefc7b43288a8a0738eef994ba0861a4c8c0183"
            "ffef1bcce8990bc6e46258efeffb7aa5bdaa264f0ff06fe386eee97f423796873b751f1af628063c"
            "31f0e10d57a694410805d649082b1c673f08cd5595aba5496956a7f925a069415bb6bec7453b1999",
}


@pytest.mark.parametrize("name", sorted(REDO_SUMS))
def test_block_sums_match_rsync(name):
    cs = _checksum(name)
    raw = bytes.fromhex(REDO_SUMS[name])
    n = min(16, cs.digest_len)
    for i in range(6):
        weak, strong = struct.unpack_from("<I16s", raw, i * 20)
        block = OLD[i * 700:(i + 1) * 700]
        assert cs.block_sum(block, REDO_SEED)[:n] == strong[:n], i
