"""Decode a captured rsync session (protocol/vectors/<name>/) with pysync's codecs.

A vector holds both directions of one real session between the stock rsync
client and ``rsync --server`` (see protocol/capture.py). :func:`walk` takes
them apart in the order of the protocol (protocol/SPEC.md, the session
sequence):

1. the raw start of each direction: int32 versions, the server's compat
   varint, the checksum/compression name lists (vstrings), the seed;
2. the multiplexed frames of each direction, split by :class:`Demux`, with
   the MSG_DATA payloads joined into one data stream per direction;
3. the sender's data stream: the filter list when the client sends one
   ahead of its file list (push with --delete), the file list entries, the
   end marker and the uid/gid lists, then per requested file the echoed
   ndx + iflags (+ sum head, token stream, whole-file checksum), the
   NDX_DONE sequence, the stats (server sender only) and the NDX_DEL_STATS
   echo (server sender only);
4. the generator's data stream: the filter list when the client is the
   receiver, then per file ndx + iflags (+ sum head and block sums), the
   NDX_DEL_STATS record when deleting, and its NDX_DONEs.

Every decoded value is kept as an :class:`Item` together with the exact
bytes it came from, so a test can re-encode the items with pysync's encoders
and compare byte for byte. Nothing here writes to the wire; this module only
reads vectors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pysync.protocol.buffer import NeedMore, ReadBuffer
from pysync.protocol.checksums import get_checksum
from pysync.protocol.constants import (CF_CHKSUM_SEED_FIX, CF_ID0_NAMES, CF_VARINT_FLIST_FLAGS,
                                       ITEM_BASIS_TYPE_FOLLOWS, ITEM_TRANSFER,
                                       ITEM_XNAME_FOLLOWS, MSG_DATA, NDX_DEL_STATS, NDX_DONE)
from pysync.protocol.filters import decode_filter_rule
from pysync.protocol.flist import EndOfList, FlistDecoder, FlistOptions, decode_id_list
from pysync.protocol.flist_sort import sort_and_clean
from pysync.protocol.handshake import decode_name_list, decode_seed, decode_version
from pysync.protocol.ints import decode_shortint, decode_varint, decode_vstring
from pysync.protocol.mux import Demux
from pysync.protocol.ndx import NdxDecoder
from pysync.protocol.stats import decode_del_stats, decode_stats
from pysync.protocol.sums import decode_block_sums, decode_sum_head
from pysync.protocol.tokens import END, TokenDecoder

__all__ = ["VECTORS_DIR", "Vector", "Item", "Request", "Side", "Walk", "WalkError",
           "vector_names", "load_vector", "walk", "weak_sum"]

VECTORS_DIR = Path(__file__).resolve().parents[2] / "protocol" / "vectors"


class WalkError(AssertionError):
    """The vector does not decode the way the protocol says it should."""


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

@dataclass
class Vector:
    name: str
    path: Path
    meta: dict
    c2s: bytes
    s2c: bytes
    argv: str
    basis: dict  # name (bytes) -> old destination content

    @property
    def client_is_sender(self) -> bool:
        return self.meta["roles"]["client"] == "sender"


def vector_names(root: Path = VECTORS_DIR) -> list:
    """Every vector directory (one with a meta.json) under ``root``."""
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())


def load_vector(name: str, root: Path = VECTORS_DIR) -> Vector:
    path = root / name
    meta = json.loads((path / "meta.json").read_text())
    basis = {}
    for fname, info in meta.get("basis", {}).items():
        data = (path / info["file"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise WalkError(f"{name}: basis file {fname} does not match its sha256")
        basis[fname.encode()] = data
    return Vector(name, path, meta, (path / "c2s.bin").read_bytes(),
                  (path / "s2c.bin").read_bytes(), (path / "argv.txt").read_text().strip(),
                  basis)


# --------------------------------------------------------------------------
# Decoded items
# --------------------------------------------------------------------------

@dataclass
class Item:
    """One decoded wire value and the exact bytes it was decoded from."""
    kind: str
    value: object
    raw: bytes


@dataclass
class Request:
    """One ``ndx + iflags`` record and what follows it.

    On the generator side ``sums`` are the block sums it sent; on the sender
    side ``tokens`` is the decoded token stream (bytes for literal data,
    int for a matched block), ``token_raw`` its exact bytes, ``content`` the
    file rebuilt from literals and basis blocks, ``file_sum`` the digest
    sent after the tokens.
    """
    ndx: int
    iflags: int
    basis_type: int | None = None
    xname: bytes | None = None
    head: object = None
    sums: list | None = None
    tokens: list | None = None
    token_raw: bytes = b""
    content: bytes | None = None
    file_sum: bytes | None = None


@dataclass
class Side:
    """One direction of the session."""
    raw: bytes
    handshake: list = field(default_factory=list)    # Items before multiplexing
    frames: list = field(default_factory=list)       # (tag, payload)
    messages: list = field(default_factory=list)     # non-DATA (tag, payload)
    data: bytes = b""                                # joined MSG_DATA payloads
    items: list = field(default_factory=list)        # Items of the data stream
    requests: list = field(default_factory=list)     # Requests in wire order
    negatives: list = field(default_factory=list)    # NDX_DONE / NDX_DEL_STATS in order
    stats: object = None
    del_stats: object = None

    @property
    def mux_raw(self) -> bytes:
        """The multiplexed part (everything after the handshake items)."""
        return self.raw[sum(len(i.raw) for i in self.handshake):]


@dataclass
class Walk:
    vector: Vector
    protocol: int
    compat_flags: int
    seed: int
    checksum: str
    compression: str | None
    flist_opts: FlistOptions
    c2s: Side
    s2c: Side
    filter_rules: list | None = None     # None: no filter list on the wire
    entries: list = field(default_factory=list)      # transmit order
    sorted_entries: list = field(default_factory=list)
    io_error: int = 0
    uid_names: dict | None = None
    gid_names: dict | None = None

    @property
    def sender(self) -> Side:
        return self.c2s if self.vector.client_is_sender else self.s2c

    @property
    def generator(self) -> Side:
        return self.s2c if self.vector.client_is_sender else self.c2s


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

class _Reader:
    """A ReadBuffer over a complete byte string that records Items."""

    def __init__(self, data: bytes, where: str, items: list):
        self.data = data
        self.buf = ReadBuffer(data)
        self.where = where
        self.items = items

    @property
    def pos(self) -> int:
        return len(self.data) - len(self.buf)

    @property
    def left(self) -> int:
        return len(self.buf)

    def read(self, kind: str, decode, *args):
        start = self.pos
        try:
            value = decode(self.buf, *args)
        except NeedMore:
            raise WalkError(f"{self.where}: stream ends inside {kind} at byte {start} "
                            f"of {len(self.data)}") from None
        self.buf.commit()
        self.items.append(Item(kind, value, self.data[start:self.pos]))
        return value


def weak_sum(block: bytes) -> int:
    """rsync's weak checksum, computed here independently: bytes taken as
    signed chars, s1 = sum, s2 = sum of running s1, (s1 & 0xffff) | s2 << 16."""
    s1 = s2 = 0
    for b in block:
        s1 += b - 256 if b >= 128 else b
        s2 += s1
    return ((s1 & 0xFFFF) | ((s2 & 0xFFFF) << 16)) & 0xFFFFFFFF


def _byte(buf: ReadBuffer) -> int:
    return buf.byte()


def _take(buf: ReadBuffer, n: int) -> bytes:
    return buf.take(n)


def _flist_options(meta: dict, compat: int, digest_len: int) -> FlistOptions:
    o = meta["options"]
    return FlistOptions(uid=o["preserve_uid"], gid=o["preserve_gid"], links=o["links"],
                        devices=o["devices"], specials=o["specials"],
                        hard_links=o["hard_links"],
                        checksum_len=digest_len if o["always_checksum"] else 0,
                        id0_names=bool(compat & CF_ID0_NAMES), numeric_ids=o["numeric_ids"])


# --------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------

def walk(vec: Vector) -> Walk:
    meta = vec.meta
    c2s, s2c = Side(vec.c2s), Side(vec.s2c)
    neg = meta["negotiation"]

    # 1. Raw handshake, both directions.
    cr = _Reader(vec.c2s, f"{vec.name} c2s handshake", c2s.handshake)
    sr = _Reader(vec.s2c, f"{vec.name} s2c handshake", s2c.handshake)
    client_version = cr.read("version", decode_version)
    server_version = sr.read("version", decode_version)
    protocol = min(client_version, server_version)
    compat = sr.read("compat_flags", decode_varint)
    negotiating = bool(compat & CF_VARINT_FLIST_FLAGS)
    if not compat & CF_CHKSUM_SEED_FIX:
        raise WalkError(f"{vec.name}: no CF_CHKSUM_SEED_FIX; not a peer pysync talks to")
    checksum = compression = None
    if negotiating and neg["checksum_list_sent"]:
        ours = cr.read("checksum_list", decode_name_list)
        theirs = sr.read("checksum_list", decode_name_list)
        checksum = next(n for n in ours if n in theirs)
    if negotiating and neg["compress_list_sent"]:
        ours = cr.read("compress_list", decode_name_list)
        theirs = sr.read("compress_list", decode_name_list)
        compression = next(n for n in ours if n in theirs)
    seed = sr.read("seed", decode_seed)
    checksum = checksum or meta["checksum"]
    if compression is None and meta["compression"]:
        compression = meta["compression"]  # an explicit --compress-choice

    # 2. Frames of each direction.
    for side, name in ((c2s, "c2s"), (s2c, "s2c")):
        demux = Demux()
        side.frames = demux.feed(side.mux_raw)
        if demux.pending():
            raise WalkError(f"{vec.name} {name}: {demux.pending()} bytes of an unfinished frame")
        side.data = b"".join(p for t, p in side.frames if t == MSG_DATA)
        side.messages = [(t, p) for t, p in side.frames if t != MSG_DATA]

    cs = get_checksum(checksum)
    digest_len = cs.digest_len
    w = Walk(vec, protocol, compat, seed, checksum, compression,
             _flist_options(meta, compat, digest_len), c2s, s2c)
    client_sender = vec.client_is_sender
    snd, gen = w.sender, w.generator
    sreader = _Reader(snd.data, f"{vec.name} sender stream", snd.items)
    greader = _Reader(gen.data, f"{vec.name} generator stream", gen.items)

    # 3a. Filter list: client -> server, always from a client receiver, from a
    # client sender only when the server receiver deletes.
    if not client_sender or meta["options"]["delete"]:
        r = greader if not client_sender else sreader
        w.filter_rules = []
        while True:
            rule = r.read("filter_rule", decode_filter_rule)
            if rule is None:
                r.items[-1].kind = "filter_end"
                break
            w.filter_rules.append(rule)

    # 3b. File list, end marker, id lists.
    fdec = FlistDecoder(w.flist_opts)
    while True:
        v = sreader.read("flist_entry", fdec.decode)
        if isinstance(v, EndOfList):
            sreader.items[-1].kind = "flist_end"
            w.io_error = v.io_error
            break
        w.entries.append(v)
    if not w.flist_opts.numeric_ids:
        if w.flist_opts.uid:
            w.uid_names = sreader.read("uid_list", decode_id_list, w.flist_opts.id0_names)
        if w.flist_opts.gid:
            w.gid_names = sreader.read("gid_list", decode_id_list, w.flist_opts.id0_names)
    w.sorted_entries = sort_and_clean(list(w.entries))
    if not w.entries:
        raise WalkError(f"{vec.name}: empty file list (not captured on purpose)")

    # 4. Generator: requests, DEL_STATS, DONEs.
    ndec = NdxDecoder()
    while greader.left:
        ndx = greader.read("ndx", ndec.decode)
        if ndx == NDX_DONE:
            gen.negatives.append(ndx)
            continue
        if ndx == NDX_DEL_STATS:
            gen.negatives.append(ndx)
            gen.del_stats = greader.read("del_stats", decode_del_stats)
            continue
        if not 0 <= ndx < len(w.sorted_entries):
            raise WalkError(f"{vec.name} generator: ndx {ndx} out of range")
        req = _read_attrs(greader, ndx)
        if req.iflags & ITEM_TRANSFER and not meta["options"]["dry_run"]:
            req.head = greader.read("sum_head", decode_sum_head, digest_len)
            req.sums = greader.read("block_sums", decode_block_sums, req.head)
        gen.requests.append(req)

    # 5. Sender: echoes, token streams, file sums, DONEs, stats, DEL_STATS echo.
    ndec = NdxDecoder()
    tdec = TokenDecoder(compression)
    dones = 0
    server_sender = not client_sender
    while sreader.left:
        ndx = sreader.read("ndx", ndec.decode)
        if ndx == NDX_DONE:
            snd.negatives.append(ndx)
            dones += 1
            if dones == 3 and server_sender:
                snd.stats = sreader.read("stats", decode_stats)
            continue
        if ndx == NDX_DEL_STATS:
            snd.negatives.append(ndx)
            snd.del_stats = sreader.read("del_stats", decode_del_stats)
            continue
        if not 0 <= ndx < len(w.sorted_entries):
            raise WalkError(f"{vec.name} sender: ndx {ndx} out of range")
        req = _read_attrs(sreader, ndx)
        if req.iflags & ITEM_TRANSFER and not meta["options"]["dry_run"]:
            req.head = sreader.read("sum_head", decode_sum_head, digest_len)
            entry = w.sorted_entries[ndx]
            basis = vec.basis.get(entry.name, b"")
            _read_tokens(sreader, tdec, req, basis)
            req.file_sum = sreader.read("file_sum", _take, digest_len)
        snd.requests.append(req)
    return w


def _read_attrs(r: _Reader, ndx: int) -> Request:
    # upstream: rsync.c:read_ndx_and_attrs() (the ndx itself is already read)
    req = Request(ndx, r.read("iflags", decode_shortint))
    if req.iflags & ITEM_BASIS_TYPE_FOLLOWS:
        req.basis_type = r.read("basis_type", _byte)
    if req.iflags & ITEM_XNAME_FOLLOWS:
        req.xname = r.read("xname", decode_vstring)
    return req


def _read_tokens(r: _Reader, tdec: TokenDecoder, req: Request, basis: bytes) -> None:
    """One file's token stream; rebuilds the content from literals + basis."""
    head = req.head
    start = r.pos
    tdec.begin_file()
    tokens, parts = [], []
    while True:
        try:
            tok = tdec.next_token(r.buf)
        except NeedMore:
            raise WalkError(f"{r.where}: stream ends inside the tokens of ndx {req.ndx}") from None
        if tok is END:
            break
        if isinstance(tok, int):
            if not 0 <= tok < head.count:
                raise WalkError(f"{r.where}: block {tok} outside the sum head {head}")
            off = tok * head.blength
            block = basis[off:off + head.block_len(tok)]
            if len(block) != head.block_len(tok):
                raise WalkError(f"{r.where}: block {tok} is beyond the stored basis")
            tdec.see_block(block)
            parts.append(block)
        else:
            parts.append(bytes(tok))
        tokens.append(tok)
    r.buf.commit()
    req.tokens = tokens
    req.token_raw = r.data[start:r.pos]
    req.content = b"".join(parts)
    r.items.append(Item("tokens", req, req.token_raw))
