"""pysync.native against its pure-Python reference, and both against answers
worked out here by hand or from the definition.

Every test taking ``backend`` runs once on pysync.native (the C module, or
the reference when PYSYNC_NATIVE=ref) and once on pysync._reference.
"""

import array
import mmap
import os
import random
import subprocess
import sys

import pytest

import pysync._reference as reference
import pysync.native as native

M32 = 0xFFFFFFFF


@pytest.fixture(params=["native", "ref"])
def backend(request):
    return native if request.param == "native" else reference


def rand_bytes(seed, n):
    return random.Random(seed).randbytes(n)


# -- the definition, written independently of the code under test ----------

def signed(b):
    return b - 256 if b >= 0x80 else b


def definition_sums(window):
    """s1 = sum x[i], s2 = sum (n - i) x[i] over signed bytes, mod 2**32."""
    n = len(window)
    xs = [signed(b) for b in window]
    return (sum(xs) & M32, sum((n - i) * x for i, x in enumerate(xs)) & M32)


def pack(s1, s2):
    return (s1 & 0xFFFF) | ((s2 & 0xFFFF) << 16)


def all_window_sums(data, blen):
    """definition_sums(data[o:o+blen]) for every o, in O(n) through prefix
    sums: with P[j] = sum x[t], Q[j] = sum t*x[t] over t < j, the window at o
    has s1 = P[o+b] - P[o] and s2 = (o+b)(P[o+b] - P[o]) - (Q[o+b] - Q[o])."""
    p, q = [0], [0]
    for t, b in enumerate(data):
        p.append(p[-1] + signed(b))
        q.append(q[-1] + t * signed(b))
    out = []
    for o in range(len(data) - blen + 1):
        s1 = p[o + blen] - p[o]
        out.append((s1 & M32, ((o + blen) * s1 - (q[o + blen] - q[o])) & M32))
    return out


def test_window_sums_helper_matches_definition():
    data = rand_bytes(1, 500)
    sums = all_window_sums(data, 33)
    for o in (0, 1, 100, 467):
        assert sums[o] == definition_sums(data[o:o + 33])


# -- weak checksum ----------------------------------------------------------

KNOWN_WEAK = [
    (b"", 0),
    # 1, 2, 3: s1 = 6; s2 = 3*1 + 2*2 + 1*3 = 10.
    (b"\x01\x02\x03", 0x000A0006),
    # "abcd" = 97..100: s1 = 394 = 0x18a; s2 = 4*97 + 3*98 + 2*99 + 100 = 980.
    (b"abcd", 0x03D4018A),
    # 0xff is -1: s1 = s2 = -1, both low halves 0xffff.
    (b"\xff", 0xFFFFFFFF),
    # four times -128: s1 = -512 -> 0xfe00; s2 = -128 * 10 = -1280 -> 0xfb00.
    (bytes([0x80] * 4), 0xFB00FE00),
    # 127, -128: s1 = -1 -> 0xffff; s2 = 2*127 - 128 = 126 = 0x7e.
    # (Read unsigned it would be s1 = 255, s2 = 382.)
    (b"\x7f\x80", 0x007EFFFF),
    # 1000 times -1: s1 = -1000 -> 0xfc18; s2 = -500500, and
    # 500500 = 7*65536 + 41748, so s2 -> 65536 - 41748 = 23788 = 0x5cec.
    (b"\xff" * 1000, 0x5CECFC18),
]


@pytest.mark.parametrize("data,expected", KNOWN_WEAK)
def test_weak_checksum_known_answers(backend, data, expected):
    assert backend.weak_checksum(data) == expected


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 63, 64, 65, 95, 699, 700, 701, 1 << 20, (1 << 20) + 17])
def test_weak_checksum_backends_agree(n):
    data = rand_bytes(n, n)
    expected = pack(*definition_sums(data))
    assert native.weak_checksum(data) == expected
    assert reference.weak_checksum(data) == expected


@pytest.mark.parametrize("backend_name", ["native", "ref"])
def test_buffer_types(backend_name, tmp_path):
    backend = native if backend_name == "native" else reference
    data = rand_bytes(7, 4096)
    expected = pack(*definition_sums(data))
    path = tmp_path / "f"
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as ro:
        assert backend.weak_checksum(ro) == expected
        table = backend.WeakTable([pack(*definition_sums(data[100:164]))])
        assert backend.search(ro, 0, 64, table)[0] == 100
    # The buffer is released: the mmap above closed without BufferError.
    anon = mmap.mmap(-1, len(data))
    anon[:] = data
    for buf in (data, bytearray(data), memoryview(data), anon,
                array.array("B", data), memoryview(bytearray(data)).toreadonly()):
        assert backend.weak_checksum(buf) == expected
    anon.close()
    # A non-byte format is read as its bytes.
    words = array.array("I")
    words.frombytes(data)
    assert backend.weak_checksum(memoryview(words)) == expected
    # A slice of a memoryview is just those bytes.
    assert backend.weak_checksum(memoryview(data)[10:20]) == pack(*definition_sums(data[10:20]))


# -- weak-sum table ---------------------------------------------------------

def test_table_membership(backend):
    rng = random.Random(3)
    values = [rng.getrandbits(32) for _ in range(20000)] + [0, M32, 0, 5, 5]
    table = backend.WeakTable(values)
    assert len(table) == len(set(values))
    assert all(v in table for v in values)
    others = {rng.getrandbits(32) for _ in range(20000)} - set(values)
    assert not any(v in table for v in others)
    assert -1 not in table and 1 << 32 not in table
    empty = backend.WeakTable([])
    assert len(empty) == 0 and 0 not in empty


@pytest.fixture(scope="module")
def many_sums():
    rng = random.Random(4)
    values = array.array("I", rng.randbytes(4 * 1_200_000))
    return values, frozenset(values)


def test_table_large(backend, many_sums):
    # Past 2**20 entries the prefilter stops growing (2**26 bits).
    values, distinct = many_sums
    table = backend.WeakTable(values)
    assert len(table) == len(distinct)
    assert all(v in table for v in values[::97])
    rng = random.Random(5)
    absent = {rng.getrandbits(32) for _ in range(5000)} - distinct
    assert not any(v in table for v in absent)
    data = rand_bytes(4, 5000)
    window = pack(*definition_sums(data[3000:3100]))
    values = array.array("I", values)
    values.append(window)
    table = backend.WeakTable(values)
    hit = backend.search(data, 0, 100, table)
    expected = next(o for o, s in enumerate(all_window_sums(data, 100)) if pack(*s) in table)
    assert hit == (expected,) + definition_sums(data[expected:expected + 100])


def test_table_from_array(backend):
    values = array.array("I", [1, 2, 3, 0xDEADBEEF])
    table = backend.WeakTable(values)
    assert len(table) == 4 and 0xDEADBEEF in table and 4 not in table
    assert len(backend.WeakTable(iter([7, 8]))) == 2


@pytest.mark.parametrize("bad,error", [([-1], ValueError), ([1 << 32], ValueError),
                                       ([1.5], TypeError)])
def test_table_rejects(backend, bad, error):
    with pytest.raises(error):
        backend.WeakTable(bad)


# -- search -----------------------------------------------------------------

def test_search_known_answers(backend):
    # 1, 2, 3: s1 = 6, s2 = 10 (as above).
    assert backend.search(b"\x01\x02\x03", 0, 3, backend.WeakTable([0x000A0006])) == (0, 6, 10)
    # -128, -128: s1 = -256, s2 = 2*(-128) - 128 = -384, as uint32.
    hit = backend.search(b"\x80\x80", 0, 2, backend.WeakTable([0xFE80FF00]))
    assert hit == (0, (1 << 32) - 256, (1 << 32) - 384)
    # Windows of 2 over 1, 2, 3, 4: (1,2) s1=3 s2=4; (2,3) s1=5 s2=7;
    # (3,4) s1=7 s2=10.  Only the second is in the table.
    assert backend.search(b"\x01\x02\x03\x04", 0, 2, backend.WeakTable([0x00070005])) == (1, 5, 7)
    # No hit: the sums of the last window come back.
    assert backend.search(b"\x01\x02\x03\x04", 0, 2, backend.WeakTable([])) == (-1, 7, 10)
    # Continuing from the window at 1 with its sums rolls to the window at 2.
    table = backend.WeakTable([0x000A0007])
    assert backend.search(b"\x01\x02\x03\x04", 2, 2, table, prev=(5, 7)) == (2, 7, 10)


def test_search_no_window_fits(backend):
    table = backend.WeakTable([0])
    assert backend.search(b"", 0, 1, table) == (-1, 0, 0)
    assert backend.search(b"abc", 0, 4, table) == (-1, 0, 0)
    assert backend.search(b"abc", 2, 2, table) == (-1, 0, 0)
    assert backend.search(b"abc", 10, 2, table, prev=(1, 2)) == (-1, 0, 0)


def test_search_argument_errors(backend):
    table = backend.WeakTable([1])
    with pytest.raises(ValueError):
        backend.search(b"abcd", 0, 0, table)
    with pytest.raises(ValueError):
        backend.search(b"abcd", -1, 2, table)
    with pytest.raises(ValueError):
        backend.search(b"abcd", 0, 2, table, prev=(0, 0))
    with pytest.raises(TypeError):
        backend.search(b"abcd", 0, 2, {1})
    other = reference if backend is native else native
    if other.WeakTable is not backend.WeakTable:
        with pytest.raises(TypeError):
            backend.search(b"abcd", 0, 2, other.WeakTable([1]))


@pytest.mark.parametrize("blen", [1, 2, 37, 128])
def test_rolling_equals_fresh_at_every_offset(backend, blen):
    data = rand_bytes(blen, 1500) + b"\x80\xff\x7f\x00" * 64
    expected = all_window_sums(data, blen)
    empty = backend.WeakTable([])
    everything = backend.WeakTable(pack(*s) for s in expected)
    prev = prev_hit = None
    view = memoryview(data)
    for o, sums in enumerate(expected):
        # Only the window at o fits, so this is one roll from prev.
        got = backend.search(view[:o + blen], o, blen, empty, prev)
        assert got == (-1,) + sums, o
        prev = got[1:]
        # With every window sum in the table each call stops at once.
        hit = backend.search(data, o, blen, everything, prev_hit)
        assert hit == (o,) + sums, o
        prev_hit = hit[1:]
        assert backend.weak_checksum(view[o:o + blen]) == pack(*sums)


def make_table_values(data, blen, seed, real=12, fake=200):
    """Some real window sums (taken at random offsets) and random values."""
    rng = random.Random(seed)
    windows = all_window_sums(data, blen)
    values = [pack(*windows[rng.randrange(len(windows))]) for _ in range(real)] if windows else []
    return values + [rng.getrandbits(32) for _ in range(fake)]


def walk(backend, data, blen, table, rng):
    """Drive search as the matcher does: after a hit either continue at o+1
    with the sums (a strong-sum miss) or restart at o+blen (a match).
    Returns the hits, each with the start it was searched from."""
    hits, start, prev = [], 0, None
    while True:
        o, s1, s2 = backend.search(data, start, blen, table, prev)
        if o < 0:
            return hits, (s1, s2), start
        hits.append((start, o, s1, s2))
        if rng.random() < 0.5:
            start, prev = o + 1, (s1, s2)
        else:
            start, prev = o + blen, None


@pytest.mark.parametrize("n_delta", [-1, 0, 1, 2000])
@pytest.mark.parametrize("blen", [1, 7, 64, 300])
def test_search_matches_naive_scan(backend, blen, n_delta):
    n = max(blen + n_delta, 0)
    data = bytearray(rand_bytes(n * 1000 + blen, n))
    # Repeat a stretch so that real sums hit more than once.
    if n > 3 * blen:
        data[n - blen:] = data[:blen]
    data = bytes(data)
    windows = all_window_sums(data, blen)
    values = make_table_values(data, blen, seed=n + blen)
    wanted = set(values)
    table = backend.WeakTable(values)
    hits, last, start = walk(backend, data, blen, table, random.Random(n))
    for from_, o, s1, s2 in hits:
        naive = next(p for p in range(from_, len(windows)) if pack(*windows[p]) in wanted)
        assert o == naive
        assert (s1, s2) == windows[o]
    assert not any(pack(*w) in wanted for w in windows[start:])
    if start < len(windows):
        assert last == windows[-1]
    else:
        assert last == (0, 0)


def test_search_large_backends_agree():
    data = rand_bytes(11, 1 << 20)
    blen = 700
    values = make_table_values(data, blen, seed=11, real=4, fake=10000)
    results = []
    for backend in (native, reference):
        table = backend.WeakTable(values)
        hits, last, _ = walk(backend, data, blen, table, random.Random(5))
        results.append((hits, last))
    assert results[0] == results[1]
    assert len(results[0][0]) >= 4


# -- MD4 --------------------------------------------------------------------

# RFC 1320, appendix A.5.
RFC1320 = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]


@pytest.mark.parametrize("data,hexdigest", RFC1320)
def test_md4_rfc1320(backend, data, hexdigest):
    assert backend.md4(data).hex() == hexdigest
    assert backend.Md4(data).hexdigest() == hexdigest
    h = backend.Md4()
    for b in data:
        h.update(bytes([b]))
    assert h.hexdigest() == hexdigest


def test_md4_incremental(backend):
    data = rand_bytes(13, 5000)
    whole = backend.md4(data)
    for chunk in (1, 3, 55, 56, 63, 64, 65, 127, 1000):
        h = backend.Md4()
        for i in range(0, len(data), chunk):
            h.update(memoryview(data)[i:i + chunk])
        assert h.digest() == whole, chunk
    h = backend.Md4(data[:1000])
    fork = h.copy()
    assert h.digest() == h.digest() == backend.md4(data[:1000])
    h.update(data[1000:])
    assert h.digest() == whole
    assert fork.digest() == backend.md4(data[:1000])
    assert (h.name, h.digest_size, h.block_size) == ("md4", 16, 64)


def test_md4_backends_agree():
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 121, 4096, 100003):
        data = rand_bytes(n, n)
        assert native.md4(data) == reference.md4(data), n
        assert native.md4(bytearray(data)) == reference.md4(memoryview(data)), n


# -- backend selection ------------------------------------------------------

def run_python(code, **env):
    root = os.path.dirname(os.path.dirname(os.path.abspath(native.__file__)))
    full_env = dict(os.environ, PYTHONPATH=root, **env)
    return subprocess.run([sys.executable, "-c", code], env=full_env,
                          capture_output=True, text=True, cwd=root)


def test_backend_flag():
    expected = "ref" if os.environ.get("PYSYNC_NATIVE") == "ref" else "native"
    assert native.BACKEND == expected
    assert native.ABI == reference.ABI == 1


def test_ref_switch():
    r = run_python("import pysync.native as n; print(n.BACKEND, n.search.__module__, "
                   "n.Md4.__module__)", PYSYNC_NATIVE="ref")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ref", "pysync._reference", "pysync._reference"]


def test_bad_switch_and_missing_module():
    r = run_python("import pysync.native", PYSYNC_NATIVE="fast")
    assert r.returncode != 0 and "ImportError" in r.stderr and "PYSYNC_NATIVE" in r.stderr
    r = run_python("import sys; sys.modules['pysync._native'] = None; import pysync.native",
                   PYSYNC_NATIVE="")
    assert r.returncode != 0 and "pip install ." in r.stderr


@pytest.mark.parametrize("blen", [1, 64, 700])
def test_make_searcher_agrees_with_search(blen):
    data = bytearray(rand_bytes(77 + blen, 50_000))
    data[-blen:] = data[1000:1000 + blen]
    values = make_table_values(bytes(data), blen, seed=blen, real=6, fake=500)
    table = native.WeakTable(values)
    fast = native.make_searcher(table)
    rng = random.Random(blen)
    start, prev = 0, None
    while True:
        got = fast(data, start, blen, prev)
        assert got == native.search(data, start, blen, table, prev)
        if got[0] < 0:
            break
        start = got[0] + 1
        prev = (got[1], got[2]) if rng.random() < 0.5 else None
    assert fast(data, len(data), blen) == (-1, 0, 0)


def test_make_searcher_refuses_other_tables():
    with pytest.raises(TypeError):
        native.make_searcher([1, 2, 3])


def test_weak_checksum_chunked_form_at_every_alignment():
    """The native sum runs in 32-byte chunks; every length and start offset
    around the chunk edges, and all-0x80 / all-0x7f bytes (the extremes of a
    signed char), give the defining sums."""
    base = rand_bytes(300, 5)
    for data in (base, b"\x80" * 300, b"\x7f" * 300, b"\xff" * 300):
        for start in (0, 1, 7, 31):
            for n in range(0, 140):
                chunk = data[start:start + n]
                assert native.weak_checksum(chunk) == pack(*definition_sums(chunk))


@pytest.mark.parametrize("blen", [1, 7, 64, 700])
def test_block_weaks_is_weak_checksum_per_block(backend, blen):
    data = rand_bytes(blen, 5 * blen + blen // 2 + 3)
    want = [backend.weak_checksum(data[o:o + blen]) for o in range(0, len(data), blen)]
    assert list(backend.block_weaks(data, blen)) == want
    assert list(backend.block_weaks(b"", blen)) == []
    with pytest.raises(ValueError):
        backend.block_weaks(data, 0)


@pytest.mark.parametrize("blen", [1, 5, 64, 700])
def test_block_runner_counts_consecutive_matching_blocks(backend, blen):
    old = rand_bytes(blen + 1, 12 * blen)
    weaks = [backend.weak_checksum(old[o:o + blen]) for o in range(0, len(old), blen)]
    run = backend.make_block_runner(weaks)
    buf = rand_bytes(3, 3) + old[2 * blen:9 * blen] + rand_bytes(4, blen)
    assert run(buf, 3, blen, 2, 100) == 7           # blocks 2..8, then noise
    assert run(buf, 3, blen, 2, 4) == 4             # capped
    assert run(buf, 3, blen, 3, 100) == 0           # wrong block expected
    assert run(buf, 3 + blen, blen, 3, 100) == 6
    assert run(buf, 2, blen, 2, 100) == 0           # one byte off
    assert run(buf[:3 + 5 * blen - 1], 3, blen, 2, 100) == 4   # last window short
    assert run(old, 0, blen, 0, 100) == 12           # up to the end of weaks
    assert run(old, 0, blen, 12, 100) == 0
    assert backend.make_block_runner(weaks[:5])(old, 0, blen, 0, 100) == 5


def test_block_helpers_backends_agree():
    rnd = random.Random(9)
    for blen in (1, 3, 700, 4096):
        old = rnd.randbytes(40 * blen + 11)
        assert list(native.block_weaks(old, blen)) == list(reference.block_weaks(old, blen))
        weaks = list(reference.block_weaks(old, blen))[:40]
        new = bytearray(old)
        for _ in range(5):
            new[rnd.randrange(len(new))] ^= 0x55
        a, b = native.make_block_runner(weaks), reference.make_block_runner(weaks)
        for _ in range(50):
            want = rnd.randrange(40)
            pos = want * blen + rnd.choice((0, 0, 1, -1))
            if pos < 0:
                continue
            assert a(bytes(new), pos, blen, want, 64) == b(bytes(new), pos, blen, want, 64)
