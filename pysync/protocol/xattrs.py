"""Extended attributes on the wire (-X; xattrs.c send_xattr / receive_xattr,
send_xattr_request / recv_xattr_request).

Each file-list entry carries its xattr set after the other fields: either
a reference to an identical set sent earlier (varint index + 1) or a
literal set (varint 0, count, then per item: name length with its NUL,
value length, name, and the value itself when it is at most
``MAX_FULL_DATUM`` bytes long, else its MD5 digest).  The receiving side
asks for the full values it needs with a request list after an itemize
record; the sender answers after its echo of that record.

Everything here is bytes and values: reading xattrs from files is
io/xattrs.py's job, deciding what to do with them the engine's.
"""

from __future__ import annotations

from .buffer import ProtocolError, ReadBuffer
from .ints import decode_varint, encode_varint

__all__ = ["XattrItem", "make_items", "XattrEncoder", "XattrDecoder", "xattr_compare",
           "encode_request", "decode_request", "encode_values", "decode_values",
           "MAX_FULL_DATUM", "XATTR_SUM_LEN", "is_rsync_internal"]

# upstream: xattrs.c MAX_FULL_DATUM: longer values travel as a digest first.
MAX_FULL_DATUM = 32
# The digest is the protocol >= 30 default checksum without a seed: MD5.
XATTR_SUM_LEN = 16
# Bounds a peer may not exceed (rsync 3.4.3's MAX_WIRE_XATTR_* and its
# per-value / per-file limits).
MAX_WIRE_XATTR_COUNT = 65536
MAX_WIRE_XATTR_NAMELEN = 4096
MAX_XATTR_VALUE_BYTES = 128 * 1024 * 1024
MAX_XATTR_LIST_BYTES = 512 * 1024 * 1024

# rsync keeps its own metadata (fake-super stat, ACLs) in user.rsync.%NAME;
# those travel only with -XX.
_RSYNC_INTERNAL = b"user.rsync.%"


def is_rsync_internal(name: bytes) -> bool:
    return name.startswith(_RSYNC_INTERNAL)


class XattrItem:
    """One attribute: ``name`` without its NUL, ``datum_len`` the length of
    the value, ``value`` the value when known in full (None when only the
    ``digest`` came over), ``num`` its 1-based position in the sender's list."""

    __slots__ = ("name", "datum_len", "value", "digest", "num")

    def __init__(self, name: bytes, datum_len: int, value: bytes | None, digest: bytes | None,
                 num: int):
        self.name = name
        self.datum_len = datum_len
        self.value = value
        self.digest = digest
        self.num = num

    @property
    def abbreviated(self) -> bool:
        return self.datum_len > MAX_FULL_DATUM

    def key(self):
        return (self.name, self.datum_len, self.digest if self.abbreviated else self.value)

    def __repr__(self):
        return f"XattrItem({self.name!r}, len={self.datum_len}, num={self.num})"


def value_digest(value: bytes) -> bytes:
    import hashlib  # only -X runs with long values need it; ~3 ms to load

    return hashlib.md5(value).digest()


def make_items(pairs) -> tuple:
    """(name, value) pairs read from a file -> the sorted item tuple a set
    is made of; long values keep only their digest (the sender re-reads
    them when asked)."""
    out = []
    for num, (name, value) in enumerate(sorted(pairs), 1):
        if len(value) > MAX_FULL_DATUM:
            out.append(XattrItem(name, len(value), None, value_digest(value), num))
        else:
            out.append(XattrItem(name, len(value), bytes(value), None, num))
    return tuple(out)


class XattrEncoder:
    """Sender side: the sets sent so far, so a repeated set goes as an index."""

    __slots__ = ("_index", "sets")

    def __init__(self):
        self._index = {}
        self.sets = []

    def encode(self, items: tuple) -> tuple:
        """-> (wire bytes, set index)."""
        key = tuple(i.key() for i in items)
        ndx = self._index.get(key)
        if ndx is not None:
            return encode_varint(ndx + 1), ndx
        out = bytearray(encode_varint(0))
        out += encode_varint(len(items))
        for it in items:
            out += encode_varint(len(it.name) + 1)
            out += encode_varint(it.datum_len)
            out += it.name + b"\0"
            out += it.digest if it.abbreviated else it.value
        ndx = len(self.sets)
        self.sets.append(items)
        self._index[key] = ndx
        return bytes(out), ndx


class XattrDecoder:
    """Receiver side: the sets received so far.  ``keep(name)`` says which
    names this receiver may store (namespace rules, -XX, filters); the
    others are read and dropped.  It may instead return the name to store
    the item under (rsync's user.rsync.NAME disguise)."""

    __slots__ = ("sets", "keep")

    def __init__(self, keep):
        self.sets = []
        self.keep = keep

    def decode(self, buf: ReadBuffer) -> int:
        """One entry's xattr field -> its set index.  The caller's
        ``buf.attempt`` rolls back a short read; a new set is only stored
        once it is complete."""
        ref = decode_varint(buf)
        if ref < 0 or ref > len(self.sets):
            raise ProtocolError(f"receive_xattr: xa index {ref} out of range", 12)
        if ref:
            return ref - 1
        count = decode_varint(buf)
        if not 0 <= count <= MAX_WIRE_XATTR_COUNT:
            raise ProtocolError(f"xattr count {count} out of range", 2)
        items = []
        total = 0
        for num in range(1, count + 1):
            name_len = decode_varint(buf)
            datum_len = decode_varint(buf)
            if not 0 <= name_len <= MAX_WIRE_XATTR_NAMELEN:
                raise ProtocolError(f"xattr name_len {name_len} out of range", 2)
            if not 0 <= datum_len <= MAX_XATTR_VALUE_BYTES:
                raise ProtocolError("xattr datum_len exceeds per-value limit", 2)
            total += name_len + datum_len
            if total > MAX_XATTR_LIST_BYTES:
                raise ProtocolError("xattr list exceeds per-file limit", 2)
            raw = buf.take(name_len)
            if name_len < 1 or raw[-1] != 0:
                raise ProtocolError("Invalid xattr name received (missing trailing \\0).", 11)
            name = bytes(raw[:-1])
            if datum_len > MAX_FULL_DATUM:
                item = XattrItem(name, datum_len, None, bytes(buf.take(XATTR_SUM_LEN)), num)
            else:
                item = XattrItem(name, datum_len, bytes(buf.take(datum_len)), None, num)
            if b"\0" in name:
                continue
            kept = self.keep(name)
            if not kept:
                continue
            if kept is not True:
                item.name = kept        # stored under another name (--fake-super)
            items.append(item)
        items.sort(key=lambda i: i.name)
        self.sets.append(tuple(items))
        return len(self.sets) - 1


def xattr_compare(items: tuple, local: dict, requested: bool) -> tuple:
    """Compare a sender's set with the receiver's attributes (name -> value).
    -> (differs, nums of abbreviated items whose full value we need).
    ``requested``: the set's long values were asked for already (rsync's
    XSTATE_DONE), so none is asked for again."""
    differs = len(items) != len(local)
    todo = []
    for it in items:
        have = local.get(it.name)
        if it.abbreviated:
            same = (have is not None and len(have) == it.datum_len
                    and value_digest(have) == it.digest)
            if not same and not requested:
                todo.append(it.num)
        else:
            same = have is not None and have == it.value
        if not same:
            differs = True
    return differs, todo


def encode_request(nums) -> bytes:
    """The generator's list of wanted values: deltas of their numbers, 0 ends it."""
    out = bytearray()
    prior = 0
    for n in nums:
        out += encode_varint(n - prior)
        prior = n
    out.append(0)
    return bytes(out)


def decode_request(buf: ReadBuffer) -> list:
    nums = []
    num = 0
    while True:
        rel = decode_varint(buf)
        if rel == 0:
            return nums
        num += rel
        if not 0 < num <= MAX_WIRE_XATTR_COUNT or len(nums) >= MAX_WIRE_XATTR_COUNT:
            raise ProtocolError(f"xattr request number {num} out of range", 2)
        nums.append(num)


def encode_values(values) -> bytes:
    """The sender's answer: (num, value) pairs in list order, 0 ends it."""
    out = bytearray()
    prior = 0
    for n, v in values:
        out += encode_varint(n - prior)
        prior = n
        out += encode_varint(len(v))
        out += v
    out.append(0)
    return bytes(out)


def decode_values(buf: ReadBuffer) -> list:
    out = []
    num = 0
    while True:
        rel = decode_varint(buf)
        if rel == 0:
            return out
        num += rel
        if not 0 < num <= MAX_WIRE_XATTR_COUNT or len(out) >= MAX_WIRE_XATTR_COUNT:
            raise ProtocolError(f"xattr value number {num} out of range", 2)
        n = decode_varint(buf)
        if not 0 <= n <= MAX_XATTR_VALUE_BYTES:
            raise ProtocolError("xattr datum_len exceeds per-value limit", 2)
        out.append((num, bytes(buf.take(n))))
