"""Strong checksum algorithms by their negotiated name (checksum.c).

One :class:`Checksum` per name: ``block_sum(data, seed)`` is the per-block
strong sum the generator sends and the sender verifies (full length; the
caller truncates to the sum head's s2length), ``file_hasher()`` streams the
whole-file sum sent after each file's tokens (protocol.md §5.4, §5.7).

Seeding, as rsync does it with CF_CHKSUM_SEED_FIX (every peer we talk to):

* xxh128 / xxh3 / xxh64: the session seed is a C ``int`` passed to a 64-bit
  seed parameter, so it is sign-extended; digests go out little-endian
  (xxh128: low 64 bits first, then high 64 bits, the reverse of the
  canonical hex form).
* md5, sha1: the seed's 4 little-endian bytes are hashed *before* the data;
  md4: *after* it. A zero seed adds no bytes at all.
* Whole-file sums are never seeded (protocol >= 30).

md4 comes from ``pysync.native`` and is imported only when md4 is asked
for, so the rest works without the native module.
"""

from __future__ import annotations

__all__ = ["Checksum", "CHECKSUM_DIGEST_LEN", "get_checksum"]

# Digest length per negotiated name (checksum.c csum_len_for_type()).
CHECKSUM_DIGEST_LEN = {
    "xxh128": 16,
    "xxh3": 8,
    "xxh64": 8,
    "md5": 16,
    "md4": 16,
    "sha1": 20,
    "none": 1,
}
# Names rsync also accepts on the wire for the same algorithm (compat.c).
_ALIASES = {"xxhash": "xxh64"}

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_NONE_DIGEST = b"\x00"


def _seed_u64(seed: int) -> int:
    """The session seed as xxhash wants it: int32, sign-extended to 64 bits."""
    seed &= _MASK32
    if seed & 0x80000000:
        seed |= _MASK64 ^ _MASK32
    return seed


def _seed_bytes(seed: int) -> bytes:
    """The seed as rsync mixes it into md4/md5/sha1: 4 LE bytes, none for 0."""
    seed &= _MASK32
    return seed.to_bytes(4, "little") if seed else b""


class Checksum:
    """One strong-sum algorithm. Immutable; share it freely.

    ``seeded(seed)`` returns a one-argument function ``f(data) -> bytes``
    with the seed conversion done once; use it in hot loops.
    """

    __slots__ = ("name", "digest_len", "_seeded", "_file", "_last")

    def __init__(self, name: str, digest_len: int, seeded, file_factory):
        self.name = name
        self.digest_len = digest_len
        self._seeded = seeded
        self._file = file_factory
        self._last = (None, None)  # (seed, function) of the latest block_sum

    def seeded(self, seed: int):
        return self._seeded(seed)

    def block_sum(self, data, seed: int) -> bytes:
        """Full-length strong sum of one block with the session seed."""
        last_seed, f = self._last
        if seed != last_seed:
            f = self._seeded(seed)
            self._last = (seed, f)
        return f(data)

    def file_hasher(self):
        """A fresh unseeded whole-file hasher: ``update(data)``, ``digest()``."""
        return self._file()

    def __repr__(self) -> str:
        return f"<Checksum {self.name} ({self.digest_len} bytes)>"


# --- xxhash family -----------------------------------------------------------
# xxhash is imported on a sum's first use: a run that sums nothing (a no-op,
# a whole-file local copy's negotiation) does not load it (~2-4 ms cold).


def _xxh128_seeded(seed: int):
    s = _seed_u64(seed)
    import xxhash
    f = xxhash.xxh3_128_digest
    # The canonical digest is high64 BE + low64 BE; reversed it is rsync's
    # low64 LE + high64 LE.
    return lambda data: f(data, s)[::-1]


def _xxh3_seeded(seed: int):
    s = _seed_u64(seed)
    import xxhash
    f = xxhash.xxh3_64_intdigest
    return lambda data: f(data, s).to_bytes(8, "little")


def _xxh64_seeded(seed: int):
    s = _seed_u64(seed)
    import xxhash
    f = xxhash.xxh64_intdigest
    return lambda data: f(data, s).to_bytes(8, "little")


def _xxh_stream(kind: str):
    import xxhash
    return _ReversedDigest(getattr(xxhash, kind)())


class _ReversedDigest:
    """Wraps an xxhash streaming object so digest() is little-endian."""

    __slots__ = ("_h",)

    def __init__(self, h):
        self._h = h

    def update(self, data) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()[::-1]

    def copy(self):
        return _ReversedDigest(self._h.copy())


# --- hashlib family ----------------------------------------------------------
# hashlib is imported only when md5 or sha1 is negotiated: loading it (and
# OpenSSL) costs ~3 ms at every start, and xxh128/xxh64 are the usual pick.

def _prefix_seeded(new):
    """md5/sha1: H(seed_le4 + data); plain H(data) for seed 0."""
    def seeded(seed: int):
        prefix = _seed_bytes(seed)
        if not prefix:
            return lambda data: new(data).digest()
        base = new(prefix)

        def f(data):
            h = base.copy()
            h.update(data)
            return h.digest()
        return f
    return seeded


def _md5_suffix_seeded(seed: int):
    """md5 for peers without CF_CHKSUM_SEED_FIX: MD5(data + seed_le4)."""
    import hashlib

    suffix = _seed_bytes(seed)
    new = hashlib.md5
    if not suffix:
        return lambda data: new(data).digest()

    def f(data):
        h = new(data)
        h.update(suffix)
        return h.digest()
    return f


class _NoneHasher:
    """The 'none' whole-file sum: one zero byte."""

    __slots__ = ()

    def update(self, data) -> None:
        pass

    def digest(self) -> bytes:
        return _NONE_DIGEST

    def copy(self):
        return self


def _none_seeded(seed: int):
    return lambda data: _NONE_DIGEST


def _make_hashlib(name: str, digest_len: int) -> Checksum:
    import hashlib

    new = getattr(hashlib, name)
    return Checksum(name, digest_len, _prefix_seeded(new), new)


def _make_md4() -> Checksum:
    from pysync import native  # only when md4 is negotiated

    md4_obj = native.Md4
    md4_once = native.md4

    def seeded(seed: int):
        # Built-in md4 path of checksum.c: the seed is appended.
        suffix = _seed_bytes(seed)
        if not suffix:
            return md4_once

        def f(data):
            h = md4_obj()
            h.update(data)
            h.update(suffix)
            return h.digest()
        return f

    return Checksum("md4", 16, seeded, md4_obj)


_BUILDERS = {
    "xxh128": lambda: Checksum("xxh128", 16, _xxh128_seeded, lambda: _xxh_stream("xxh3_128")),
    "xxh3": lambda: Checksum("xxh3", 8, _xxh3_seeded, lambda: _xxh_stream("xxh3_64")),
    "xxh64": lambda: Checksum("xxh64", 8, _xxh64_seeded, lambda: _xxh_stream("xxh64")),
    "md5": lambda: _make_hashlib("md5", 16),
    "md4": _make_md4,
    "sha1": lambda: _make_hashlib("sha1", 20),
    "none": lambda: Checksum("none", 1, _none_seeded, _NoneHasher),
}

_cache: dict = {}


def get_checksum(name: str, *, seed_fix: bool = True) -> Checksum:
    """The algorithm negotiated as ``name`` (``xxhash`` is an alias of xxh64).

    ``seed_fix=False`` is for a peer that did not get CF_CHKSUM_SEED_FIX:
    it only changes md5's block sums (seed after the data). Unknown names
    raise ValueError: negotiation never yields one.
    """
    name = _ALIASES.get(name, name)
    key = (name, seed_fix or name != "md5")
    cs = _cache.get(key)
    if cs is None:
        build = _BUILDERS.get(name)
        if build is None:
            raise ValueError(f"unknown checksum name {name!r}")
        cs = build()
        if not key[1]:
            cs = Checksum("md5", 16, _md5_suffix_seeded, cs._file)
        _cache[key] = cs
    return cs
