#!/usr/bin/env python3
"""A scriptable malicious rsync peer, run as the remote "rsync" of a client.

Usage (as the ``--rsync-path`` of a client going through a fake remote shell)::

    pysync -a -e "python3 interop/fake_rsh.py" \\
        --rsync-path="python3 tests/hostile/evil_peer.py SCENARIO" localhost:/src/ DST/
    pysync -a -e ... --rsync-path="python3 tests/hostile/evil_peer.py SCENARIO" SRC/ localhost:/dst/

The client appends the server command line (``--server [--sender]
-<flags>e.<caps> [long options] . <paths>``).  The peer parses it the way a
server must (the flags decide which file-list fields exist), performs the
real server handshake on stdin/stdout (int32 version 32, varint compat
flags without incremental recursion, checksum name lists, int32 seed), then
talks multiplexed -- as a server *sender* for a pull ("pull" scenarios) or
as a server *receiver + generator* for a push ("push" scenarios) -- and
corrupts exactly the field the scenario names.  All bytes are built with
pysync's own sans-I/O encoders (``pysync.protocol.*``), so what is valid is
valid by the same code the client uses, and only the corruption differs.

Environment:

``EVIL_OUTSIDE``  an absolute directory outside the client's destination
                  that hostile names / symlinks aim at (default /tmp/evil-outside).
``EVIL_LOG``      a file the peer appends its progress to (never stdout/stderr:
                  stderr would be mixed into the client's own error output).
``EVIL_TIMEOUT``  seconds before the peer gives up and exits (default 60).

The peer always exits 0 when the client went away (EOF / broken pipe), so the
client's exit code is its own.  An internal error of this script is logged
as ``INTERNAL ERROR`` and exits 3 (the tests look for it).

``python3 evil_peer.py --list`` prints the scenarios.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pysync.protocol.buffer import NeedMore, ReadBuffer  # noqa: E402
from pysync.protocol.checksums import CHECKSUM_DIGEST_LEN, get_checksum  # noqa: E402
from pysync.protocol.constants import (  # noqa: E402
    CF_CHKSUM_SEED_FIX, CF_ID0_NAMES, CF_INPLACE_PARTIAL_DIR, CF_AVOID_XATTR_OPTIM,
    CF_SAFE_FLIST, CF_SYMLINK_TIMES, CF_VARINT_FLIST_FLAGS, ITEM_BASIS_TYPE_FOLLOWS,
    ITEM_IS_NEW, ITEM_REPORT_XATTR, ITEM_TRANSFER, ITEM_XNAME_FOLLOWS, MPLEX_BASE, MSG_DATA, NDX_DEL_STATS,
    NDX_DONE, XMIT_EXTENDED_FLAGS, XMIT_HLINKED, XMIT_HLINK_FIRST, XMIT_LONG_NAME,
    XMIT_NO_CONTENT_DIR, XMIT_SAME_GID, XMIT_SAME_NAME, XMIT_SAME_UID, XMIT_TOP_DIR)
from pysync.protocol.filters import decode_filter_rule  # noqa: E402
from pysync.protocol.filesfrom import decode_files_from_name  # noqa: E402
from pysync.protocol.flist import (EndOfList, FileEntry, FlistDecoder, FlistEncoder,  # noqa: E402
                                   FlistOptions, decode_id_list, encode_end, encode_id_list)
from pysync.protocol.flist_sort import sort_and_clean  # noqa: E402
from pysync.protocol.ints import (decode_int32, decode_shortint,  # noqa: E402
                                  decode_vstring, encode_int32, encode_shortint,
                                  encode_varint, encode_varlong, encode_vstring)
from pysync.protocol.mux import Demux, encode_data, encode_frame  # noqa: E402
from pysync.protocol.ndx import NdxDecoder, NdxEncoder  # noqa: E402
from pysync.protocol.stats import decode_del_stats, encode_del_stats  # noqa: E402
from pysync.protocol.sums import SumHead, encode_sum_head  # noqa: E402
from pysync.protocol.xattrs import decode_request, encode_values, make_items  # noqa: E402

OUR_CHECKSUMS = [b"xxh128", b"xxh3", b"xxh64", b"md5", b"md4", b"none"]
OUR_COMPRESS = [b"zstd", b"zlibx", b"zlib", b"none"]
MTIME_NEW = 1_700_000_000
NEW_CONTENT = b"new content from the evil peer\n" * 4
SEED = 0x1234567


class PeerGone(Exception):
    """The client closed its end (EOF on stdin or EPIPE on stdout)."""


# --------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------

def log(msg: str) -> None:
    path = os.environ.get("EVIL_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"[{os.getpid()} {time.monotonic():.3f}] {msg}\n")


# --------------------------------------------------------------------------
# the server command line
# --------------------------------------------------------------------------

class ServerArgs:
    """What a server learns from its argv: role, option letters, long
    options, capabilities, paths."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.sender = "--sender" in argv
        self.letters = ""
        self.caps = ""
        self.long = set()
        self.values = {}
        self.paths = []
        dot_seen = False
        for a in argv:
            if a == "--server" or a == "--sender":
                continue
            if dot_seen:
                self.paths.append(a)
            elif a == ".":
                dot_seen = True
            elif a.startswith("--"):
                name, eq, value = a[2:].partition("=")
                self.long.add(name)
                if eq:
                    self.values[name] = value
            elif a.startswith("-"):
                cluster = a[1:]
                if cluster[:1] in ("B", "@"):       # -B4096, -@N: a value, not letters
                    continue
                if "e" in cluster:
                    cluster, _, caps = cluster.partition("e")
                    self.caps = caps
                self.letters += cluster

    def has(self, letter: str) -> bool:
        return letter in self.letters

    @property
    def cap_letters(self) -> str:
        return self.caps.lstrip(".0123456789")


# --------------------------------------------------------------------------
# the peer: raw handshake, then multiplexed I/O on stdin/stdout
# --------------------------------------------------------------------------

class Peer:
    def __init__(self, args: ServerArgs):
        self.args = args
        self.inbuf = ReadBuffer()
        self.muxed = False
        self.demux = Demux()
        self.ndx_out = NdxEncoder()
        self.ndx_in = NdxDecoder()
        self.protocol = 32
        self.compat = 0
        self.checksum = "md5"
        self.compress = None
        self.wlock = threading.Lock()
        self.messages = []

    # ---- bytes in --------------------------------------------------------------
    def _fill(self) -> None:
        while True:
            try:
                chunk = os.read(0, 1 << 16)
                break
            except BlockingIOError:
                # A stock rsync client leaves the shared pipes non-blocking.
                select.select([0], [], [])
            except OSError as e:
                raise PeerGone(f"read error {e}") from None
        if not chunk:
            raise PeerGone("EOF from the client")
        if not self.muxed:
            self.inbuf.feed(chunk)
            return
        for tag, payload in self.demux.feed(chunk):
            if tag == MSG_DATA:
                self.inbuf.feed(payload)
            else:
                self.messages.append((tag, payload))
                log(f"client message tag={tag} payload={payload[:200]!r}")

    def read(self, decode, *args):
        while True:
            try:
                return self.inbuf.attempt(decode, *args)
            except NeedMore:
                self._fill()

    def take(self, n: int) -> bytes:
        return self.read(ReadBuffer.take, n)

    def wait_eof(self) -> None:
        """Swallow whatever the client still sends until it closes."""
        try:
            while True:
                self._fill()
        except PeerGone:
            pass

    # ---- bytes out -------------------------------------------------------------
    def raw_write(self, data: bytes) -> None:
        mv = memoryview(data)
        with self.wlock:
            try:
                while mv:
                    try:
                        mv = mv[os.write(1, mv):]
                    except BlockingIOError:
                        select.select([], [1], [])
            except (BrokenPipeError, ConnectionResetError) as e:
                raise PeerGone(f"write error {e}") from None

    def send(self, data: bytes) -> None:
        """Stream bytes (MSG_DATA frames once multiplexed)."""
        self.raw_write(encode_data(data) if self.muxed else data)

    def send_frame(self, tag: int, payload: bytes = b"") -> None:
        self.raw_write(encode_frame(tag, payload))

    # ---- handshake (compat.c setup_protocol) -----------------------------------
    def handshake(self, version: int = 32) -> None:
        a = self.args
        self.raw_write(encode_int32(version))
        theirs = self.read(decode_int32)
        self.protocol = min(version, theirs)
        log(f"client protocol {theirs}")
        compat = CF_SYMLINK_TIMES
        for ch, bit in (("f", CF_SAFE_FLIST), ("x", CF_AVOID_XATTR_OPTIM),
                        ("C", CF_CHKSUM_SEED_FIX), ("I", CF_INPLACE_PARTIAL_DIR),
                        ("v", CF_VARINT_FLIST_FLAGS), ("u", CF_ID0_NAMES)):
            if ch in a.cap_letters:
                compat |= bit
        self.compat = compat
        self.raw_write(encode_varint(compat))
        negotiate = bool(compat & CF_VARINT_FLIST_FLAGS)
        send_cs = negotiate and "checksum-choice" not in a.values and "cc" not in a.values
        compress_on = a.has("z") or "compress-choice" in a.values or "zc" in a.values \
            or "old-compress" in a.long or "new-compress" in a.long
        explicit_cz = "compress-choice" in a.values or "zc" in a.values \
            or "old-compress" in a.long or "new-compress" in a.long
        send_cz = negotiate and compress_on and not explicit_cz
        if send_cs:
            self.raw_write(encode_vstring(b" ".join(OUR_CHECKSUMS)))
        if send_cz:
            self.raw_write(encode_vstring(b" ".join(OUR_COMPRESS)))
        if send_cs:
            client = self.read(decode_vstring, 255).split()
            log(f"client checksums {client}")
            self.checksum = next((n.decode() for n in client if n in OUR_CHECKSUMS), "md5")
        else:
            choice = a.values.get("checksum-choice") or a.values.get("cc") or "md5"
            self.checksum = choice.split(",")[0]
        if send_cz:
            client = self.read(decode_vstring, 255).split()
            self.compress = next((n.decode() for n in client if n in OUR_COMPRESS), None)
        elif compress_on:
            self.compress = "zlib"
        if self.compress not in (None, "none"):
            raise SystemExit(f"evil_peer: compression ({self.compress}) is not scripted")
        if self.checksum == "xxhash":
            self.checksum = "xxh64"
        self.raw_write(encode_int32(SEED))
        # Everything after the seed is multiplexed, both directions.
        leftover = self.inbuf.rest()
        self.inbuf = ReadBuffer()
        self.muxed = True
        if leftover:
            for tag, payload in self.demux.feed(leftover):
                if tag == MSG_DATA:
                    self.inbuf.feed(payload)
        log(f"handshake done: compat=0x{compat:x} checksum={self.checksum}")

    @property
    def digest_len(self) -> int:
        return CHECKSUM_DIGEST_LEN[self.checksum]

    def file_digest(self, data: bytes) -> bytes:
        h = get_checksum(self.checksum).file_hasher()
        h.update(data)
        return h.digest()

    def flist_opts(self) -> FlistOptions:
        a = self.args
        devices = a.has("D") or "devices" in a.long
        specials = a.has("D") or "specials" in a.long
        return FlistOptions(uid=a.has("o"), gid=a.has("g"), links=a.has("l"),
                            devices=devices, specials=specials, hard_links=a.has("H"),
                            checksum_len=self.digest_len if a.has("c") else 0,
                            id0_names=bool(self.compat & CF_ID0_NAMES),
                            numeric_ids="numeric-ids" in a.long,
                            xattrs=a.has("X"), acls=a.has("A"))

    # ---- filter list (exclude.c recv_filter_list) ------------------------------
    def read_filters(self) -> list:
        rules = []
        while True:
            r = self.read(decode_filter_rule)
            if r is None:
                return rules
            rules.append(r)

    # ---- ndx + iflags records (rsync.c read_ndx_and_attrs) ---------------------
    def read_item(self):
        while True:
            ndx = self.read(self.ndx_in.decode)
            if ndx == NDX_DEL_STATS:
                d = self.read(decode_del_stats)
                self.send(self.ndx_out.encode(NDX_DEL_STATS) + encode_del_stats(d))
                continue
            if ndx == NDX_DONE:
                return ndx, 0, None, None
            break
        iflags = self.read(decode_shortint)
        basis = self.read(ReadBuffer.byte) if iflags & ITEM_BASIS_TYPE_FOLLOWS else None
        xname = self.read(decode_vstring, 4096) if iflags & ITEM_XNAME_FOLLOWS else None
        return ndx, iflags, basis, xname

    def item(self, ndx: int, iflags: int) -> bytes:
        return self.ndx_out.encode(ndx) + encode_shortint(iflags)

    def done(self) -> bytes:
        return self.ndx_out.encode(NDX_DONE)


# --------------------------------------------------------------------------
# file-list crafting
# --------------------------------------------------------------------------

def entry(name: bytes, kind: str = "f", size: int | None = None, mtime: int = MTIME_NEW,
          mode: int | None = None, link: bytes | None = None) -> FileEntry:
    perms = {"d": 0o040755, "f": 0o100644, "l": 0o120777}[kind]
    if size is None:
        size = {"d": 4096, "f": len(NEW_CONTENT), "l": len(link or b"")}[kind]
    e = FileEntry(name, mode if mode is not None else perms, size, mtime,
                  uid=os.getuid(), gid=os.getgid(), link=link)
    if kind == "d" and name == b".":
        e.xflags = XMIT_TOP_DIR
    return e


class FlistBuilder:
    """Valid entries through pysync's FlistEncoder; hand-made (corrupt)
    entries as raw bytes, after which the encoder's "same as previous"
    state is moved to what the receiver's decoder now holds."""

    def __init__(self, peer: Peer):
        self.peer = peer
        self.opts = peer.flist_opts()
        self.enc = FlistEncoder(self.opts)
        self.out = bytearray()
        self.entries = []          # what the receiver will hold, transmit order

    def add(self, e: FileEntry) -> "FlistBuilder":
        self.out += self.enc.encode(e)
        self.entries.append(e)
        return self

    def raw_entry(self, e: FileEntry, *, xflags: int = 0, name_field: bytes | None = None,
                  size_field: bytes | None = None, mtime_field: bytes | None = None,
                  mode_field: bytes | None = None, after_name: bytes = b"",
                  flags_field: bytes | None = None) -> "FlistBuilder":
        """Every field written out in full (no SAME_* compression), any of
        them replaceable by raw bytes."""
        o = self.opts
        xf = xflags
        if not o.uid:
            xf |= XMIT_SAME_UID
        if not o.gid:
            xf |= XMIT_SAME_GID
        out = bytearray(flags_field if flags_field is not None
                        else encode_varint(xf or XMIT_EXTENDED_FLAGS))
        if name_field is not None:
            out += name_field
        else:
            if xf & XMIT_LONG_NAME:
                out += encode_varint(len(e.name))
            else:
                out.append(len(e.name))
            out += e.name
        out += after_name
        out += size_field if size_field is not None else encode_varlong(e.size, 3)
        out += mtime_field if mtime_field is not None else encode_varlong(e.mtime, 4)
        out += mode_field if mode_field is not None else encode_int32(e.mode)
        if o.uid:
            out += encode_varint(e.uid)
        if o.gid:
            out += encode_varint(e.gid)
        if o.links and stat.S_ISLNK(e.mode):
            out += encode_varint(len(e.link)) + e.link
        if o.checksum_len and stat.S_ISREG(e.mode):
            out += bytes(o.checksum_len)
        self.out += out
        self.entries.append(e)
        enc = self.enc
        enc.lastname, enc.mode, enc.mtime = e.name, e.mode, e.mtime
        if o.uid:
            enc.uid = e.uid
        if o.gid:
            enc.gid = e.gid
        enc.count += 1
        return self

    def raw(self, data: bytes) -> "FlistBuilder":
        self.out += data
        return self

    def finish(self, io_error: int = 0) -> bytes:
        o = self.opts
        self.out += encode_end(io_error)
        if not o.numeric_ids:
            if o.uid:
                self.out += encode_id_list({}, b"root", o.id0_names)
            if o.gid:
                self.out += encode_id_list({}, b"root", o.id0_names)
        return bytes(self.out)

    def sorted(self) -> list:
        """The list as the receiver indexes it (sorted, duplicates cleared)."""
        return sort_and_clean([FileEntry(e.name, e.mode, e.size, e.mtime) for e in self.entries])


def ndx_of(flist: list, name: bytes) -> int:
    for i, e in enumerate(flist):
        if e.name == name and not e.cleared:
            return i
    raise KeyError(name)


# --------------------------------------------------------------------------
# the server sender (pull): answer the client's generator
# --------------------------------------------------------------------------

class Sender:
    """A correct server sender whose answer to a transfer request can be
    replaced by the scenario (``on_request``)."""

    def __init__(self, peer: Peer, flist: list, contents: dict):
        self.peer = peer
        self.flist = flist
        self.contents = contents       # name -> bytes
        self.on_request = None         # (sender, ndx, iflags, head, phase) -> handled?
        self.on_phase = None           # (sender, phase) after echoing a DONE

    def send_file(self, ndx: int, iflags: int, head: SumHead, data: bytes,
                  digest: bytes | None = None, xattr_answer: bytes = b"") -> None:
        p = self.peer
        out = bytearray(p.item(ndx, iflags) + xattr_answer + encode_sum_head(head))
        for i in range(0, len(data), 32 * 1024):
            chunk = data[i:i + 32 * 1024]
            out += encode_int32(len(chunk)) + chunk
        out += encode_int32(0)
        out += digest if digest is not None else p.file_digest(data)
        p.send(bytes(out))

    def read_head(self):
        p = self.peer
        count, blength, s2length, remainder = struct.unpack("<iiii", p.take(16))
        if count > 0:
            p.take(count * (4 + s2length))
        return SumHead(count, blength, s2length, remainder)

    def run(self) -> None:
        p = self.peer
        phase = 0
        while True:
            ndx, iflags, _basis, _xname = p.read_item()
            if ndx == NDX_DONE:
                phase += 1
                log(f"sender: DONE from the generator, phase {phase}")
                if phase > 2:
                    break
                p.send(p.done())
                if self.on_phase:
                    self.on_phase(self, phase)
                continue
            xattr_answer = b""
            if p.args.has("X") and iflags & ITEM_REPORT_XATTR:
                # -X: the generator's request for long values (none are sent long here).
                log(f"sender: xattr request {p.read(decode_request)}")
                xattr_answer = encode_values(())
            if not iflags & ITEM_TRANSFER:
                p.send(p.item(ndx, iflags) + xattr_answer)
                continue
            head = self.read_head()
            log(f"sender: request ndx={ndx} iflags=0x{iflags:x} head={head}")
            if self.on_request and self.on_request(self, ndx, iflags, head, phase):
                continue
            name = self.flist[ndx].name
            self.send_file(ndx, iflags, head, self.contents.get(name, b""), xattr_answer=xattr_answer)
        p.send(p.done())
        p.send(b"".join(encode_varlong(v, 3) for v in (0, 0, 0, 0, 0)))   # stats
        ndx, *_ = p.read_item()
        if ndx == NDX_DONE:
            p.send(p.done())
            p.read_item()
        log("sender: end of run")


def pull_session(peer: Peer, build, contents=None, on_request=None, on_phase=None,
                 after_flist=None) -> None:
    """Handshake, filter list, the file list from ``build(FlistBuilder)``,
    then serve requests."""
    peer.handshake()
    rules = peer.read_filters()
    log(f"filter rules {rules}")
    fb = FlistBuilder(peer)
    build(fb)
    peer.send(fb.finish())
    log(f"sent file list of {len(fb.entries)} entries")
    flist = fb.sorted()
    if after_flist:
        after_flist(peer, flist)
    s = Sender(peer, flist, contents or {})
    s.on_request = on_request
    s.on_phase = on_phase
    s.run()
    # A stock client waits for the server to exit before it closes its end:
    # a correct sender exits right after the final goodbye.


def basic_list(fb: FlistBuilder) -> None:
    fb.add(entry(b".", "d")).add(entry(b"f"))


CONTENTS = {b"f": NEW_CONTENT}


# --------------------------------------------------------------------------
# the server receiver + generator (push)
# --------------------------------------------------------------------------

def push_receive_flist(peer: Peer) -> list:
    peer.handshake()
    if "delete" in peer.args.long or any(n.startswith("delete") for n in peer.args.long):
        peer.read_filters()
    opts = peer.flist_opts()
    dec = FlistDecoder(opts)
    entries = []
    while True:
        item = peer.read(dec.decode)
        if isinstance(item, EndOfList):
            break
        entries.append(item)
    if not opts.numeric_ids:
        if opts.uid:
            peer.read(decode_id_list, opts.id0_names)
        if opts.gid:
            peer.read(decode_id_list, opts.id0_names)
    flist = sort_and_clean(entries)
    log(f"received file list: {[e.name for e in flist]}")
    return flist


def first_file(flist: list) -> int:
    for i, e in enumerate(flist):
        if e.is_reg and not e.cleared:
            return i
    raise RuntimeError("no regular file in the client's list")


def push_hostile_request(peer: Peer, head_bytes: bytes, sums: bytes = b"",
                         ndx: int | None = None, iflags: int = ITEM_TRANSFER | ITEM_IS_NEW,
                         stream_sums: int = 0) -> None:
    flist = push_receive_flist(peer)
    if ndx is None:
        ndx = first_file(flist)
    elif ndx < 0:
        ndx = len(flist) + (-ndx)     # beyond the end
    peer.send(peer.item(ndx, iflags) + head_bytes + sums)
    log(f"sent hostile request ndx={ndx} head={head_bytes.hex()}")
    if stream_sums:
        def pump():
            block = bytes(4 + 16) * 4096
            sent = 0
            try:
                while sent < stream_sums:
                    peer.send(block)
                    sent += len(block)
                log(f"streamed {sent} bytes of sums")
            except PeerGone:
                log(f"client went away after {sent} bytes of sums")
        threading.Thread(target=pump, daemon=True).start()
    peer.wait_eof()


def push_ok(peer: Peer, first_head: bytes | None = None, first_sums: bytes = b"") -> None:
    """A correct receiver: whole-file requests (the first one optionally
    with the given sum head and sums), verify, end of run."""
    flist = push_receive_flist(peer)
    wanted = [i for i, e in enumerate(flist) if e.is_reg and not e.cleared]
    for n, i in enumerate(wanted):
        if n == 0 and first_head is not None:
            peer.send(peer.item(i, ITEM_TRANSFER) + first_head)
            for k in range(0, len(first_sums), 1 << 20):
                peer.send(first_sums[k:k + (1 << 20)])
            log(f"sent request ndx={i} with {len(first_sums)} bytes of sums")
        else:
            peer.send(peer.item(i, ITEM_TRANSFER | ITEM_IS_NEW)
                      + encode_sum_head(SumHead(0, 0, 0, 0)))
    peer.send(peer.done())
    phase = 0
    while True:
        ndx, iflags, _b, _x = peer.read_item()
        if ndx == NDX_DONE:
            phase += 1
            if phase == 1:
                peer.send(peer.done() + peer.done() + peer.done())
            if phase > 2:
                break
            continue
        if not iflags & ITEM_TRANSFER:
            continue
        peer.take(16)
        data = bytearray()
        while True:
            n = peer.read(decode_int32)
            if n == 0:
                break
            if n < 0:
                raise RuntimeError("block match without a basis")
            data += peer.take(n)
        digest = peer.take(peer.digest_len)
        ok = digest == peer.file_digest(bytes(data))
        log(f"received ndx={ndx} {len(data)} bytes, digest {'ok' if ok else 'BAD'}")
    ndx, *_ = peer.read_item()        # echo of our DONE#4
    peer.send(peer.done())            # final goodbye
    log("receiver: end of run")


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------

def outside() -> bytes:
    return os.environ.get("EVIL_OUTSIDE", "/tmp/evil-outside").encode()


SCENARIOS = {}


def scenario(name: str, direction: str, doc: str):
    def deco(fn):
        SCENARIOS[name] = (direction, doc, fn)
        return fn
    return deco


# ---- sanity -------------------------------------------------------------------

@scenario("ok", "pull", "a correct sender: '.', 'f'")
def s_ok(peer):
    pull_session(peer, basic_list, CONTENTS)


@scenario("push_ok", "push", "a correct receiver: whole-file requests for every file")
def s_push_ok(peer):
    push_ok(peer)


# ---- handshake ----------------------------------------------------------------

@scenario("garbage", "pull", "a chatty login shell: text instead of the version")
def s_garbage(peer):
    peer.raw_write(b"hello world\n")
    peer.wait_eof()


@scenario("push_garbage", "push", "text instead of the version (push)")
def s_push_garbage(peer):
    peer.raw_write(b"hello world\n")
    peer.wait_eof()


@scenario("handshake_cut", "pull", "the server dies after two bytes of its version")
def s_handshake_cut(peer):
    peer.raw_write(b"\x20\x00")


@scenario("bad_version", "pull", "version 0x7fffffff")
def s_bad_version(peer):
    peer.raw_write(encode_int32(0x7FFFFFFF))
    peer.wait_eof()


# ---- multiplexing -------------------------------------------------------------

@scenario("mux_bad_tag", "pull", "a frame with an undefined tag after the handshake")
def s_mux_bad_tag(peer):
    peer.handshake()
    peer.read_filters()
    peer.raw_write(struct.pack("<I", ((MPLEX_BASE + 50) << 24) | 4) + b"\0\0\0\0")
    peer.wait_eof()


@scenario("mux_truncated", "pull", "MSG_DATA announcing 0xFFFFFF bytes, then EOF")
def s_mux_truncated(peer):
    peer.handshake()
    peer.read_filters()
    peer.raw_write(struct.pack("<I", ((MPLEX_BASE + MSG_DATA) << 24) | 0xFFFFFF))


@scenario("push_mux_bad_tag", "push", "a frame with an undefined tag after the file list")
def s_push_mux_bad_tag(peer):
    push_receive_flist(peer)
    peer.raw_write(struct.pack("<I", ((MPLEX_BASE + 50) << 24) | 4) + b"\0\0\0\0")
    peer.wait_eof()


# ---- file-list names ----------------------------------------------------------

def _one_bad_name(name: bytes):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f")).add(entry(name))
    return build


# ---- -X / -A data ----------------------------------------------------------------

def _xattr_list(fb: FlistBuilder) -> None:
    fb.add(entry(b".", "d"))
    f = entry(b"f")
    # As root a receiver may store trusted.*; system.* (here: an ACL granting
    # uid 65534 and everyone rwx, not expressible as a mode, so the kernel
    # would keep it as this xattr) it must never take from a peer.
    f.xattrs = make_items([(b"system.posix_acl_access",
                            bytes.fromhex("02000000 0100 0700 ffffffff 0200 0700 feff0000"
                                          " 0400 0700 ffffffff 1000 0700 ffffffff"
                                          " 2000 0700 ffffffff")),
                           (b"user.ok", b"fine")])
    fb.add(f)


@scenario("xattr_system_name", "pull", "-X: an xattr set naming system.posix_acl_access")
def s_xattr_system_name(peer):
    pull_session(peer, _xattr_list, CONTENTS)


@scenario("xattr_bad_index", "pull", "-X: a reference to xattr set 7 of none")
def s_xattr_bad_index(peer):
    def build(fb):
        fb.raw_entry(entry(b".", "d")).raw(encode_varint(7))
    pull_session(peer, build)


@scenario("xattr_name_no_nul", "pull", "-X: an xattr name without its NUL")
def s_xattr_name_no_nul(peer):
    def build(fb):
        fb.raw_entry(entry(b".", "d")).raw(bytes([0, 1, 4, 1]) + b"user" + b"v")
    pull_session(peer, build)


@scenario("acl_perms_range", "pull", "-A: an ACL user entry with perms 0x1f")
def s_acl_perms_range(peer):
    def build(fb):
        fb.raw_entry(entry(b".", "d")).raw(bytes([0, 1, 0x1f, 0, 0]))
    pull_session(peer, build)


@scenario("name_dotdot", "pull", "file-list name '../evil'")
def s_name_dotdot(peer):
    pull_session(peer, _one_bad_name(b"../evil"), {b"../evil": b"pwned\n", **CONTENTS})


@scenario("name_absolute", "pull", "file-list name $EVIL_OUTSIDE/evil (absolute)")
def s_name_absolute(peer):
    name = outside() + b"/evil"
    pull_session(peer, _one_bad_name(name), {name: b"pwned\n", **CONTENTS})


@scenario("name_dotdot_inner", "pull", "file-list name 'a/../../evil' (collapses above the root)")
def s_name_dotdot_inner(peer):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"a", "d")).add(entry(b"f")).add(entry(b"a/../../evil"))
    pull_session(peer, build, {b"a/../../evil": b"pwned\n", **CONTENTS})


@scenario("symlink_escape", "pull", "'link' -> $EVIL_OUTSIDE, then the regular file 'link/evil'")
def s_symlink_escape(peer):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f")).add(entry(b"link", "l", link=outside()))
        fb.add(entry(b"link/evil"))
    pull_session(peer, build, {b"link/evil": b"pwned\n", **CONTENTS})


@scenario("symlink_escape_rel", "pull", "'sub/up' -> '../..', then 'sub/up/outside/evil'")
def s_symlink_escape_rel(peer):
    name_out = os.path.basename(outside())
    target = b"sub/up/" + name_out + b"/evil"

    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f")).add(entry(b"sub", "d"))
        fb.add(entry(b"sub/up", "l", link=b"../.."))
        fb.add(entry(b"sub/up/" + name_out, "d"))
        fb.add(entry(target))
    pull_session(peer, build, {target: b"pwned\n", **CONTENTS})


@scenario("excluded_name", "pull", "a name the client's own --exclude=secret rejects")
def s_excluded_name(peer):
    pull_session(peer, _one_bad_name(b"secret"), {b"secret": b"pwned\n", **CONTENTS})


UNREQUESTED = b"unrequested\n"


@scenario("unrequested_name", "pull",
          "a pull of /src/wanted.txt answered with 'wanted.txt' and an extra 'evil.txt'")
def s_unrequested_name(peer):
    def build(fb):
        fb.add(entry(b"wanted.txt")).add(entry(b"evil.txt"))
    pull_session(peer, build, {b"wanted.txt": NEW_CONTENT, b"evil.txt": UNREQUESTED})


@scenario("unrequested_files_from", "pull",
          "a pull with a forwarded --files-from list naming 'wanted.txt', answered with "
          "'wanted.txt' and an extra 'evil.txt'")
def s_unrequested_files_from(peer):
    def build(fb):
        names = []
        while (name := peer.read(decode_files_from_name)) is not None:
            names.append(name)
        log(f"forwarded names {names}")
        fb.add(entry(b"wanted.txt")).add(entry(b"evil.txt"))
    pull_session(peer, build, {b"wanted.txt": NEW_CONTENT, b"evil.txt": UNREQUESTED})


def _relative_list(fb: FlistBuilder, extra: bytes | None, content_parent: bool) -> None:
    # -R pull of /src/./sub/dir: 'sub' is an implied parent (top dir, no
    # content), 'sub/dir' and what is under it were requested.
    sub = entry(b"sub", "d")
    sub.xflags = XMIT_TOP_DIR if content_parent else XMIT_TOP_DIR | XMIT_NO_CONTENT_DIR
    d = entry(b"sub/dir", "d")
    d.xflags = XMIT_TOP_DIR
    fb.add(sub).add(d).add(entry(b"sub/dir/x"))
    if extra is not None:
        fb.add(entry(extra))


RELATIVE_CONTENTS = {b"sub/dir/x": NEW_CONTENT, b"sub/evil.txt": UNREQUESTED}


@scenario("unrequested_relative", "pull",
          "a -R pull of /src/./sub/dir answered with an extra 'sub/evil.txt' beside the requested dir")
def s_unrequested_relative(peer):
    pull_session(peer, lambda fb: _relative_list(fb, b"sub/evil.txt", False), RELATIVE_CONTENTS)


@scenario("content_parent", "pull",
          "a -R --delete pull of /src/./sub/dir with the implied parent 'sub' flagged as a "
          "content dir (so a receiver would delete the other entries of DST/sub)")
def s_content_parent(peer):
    pull_session(peer, lambda fb: _relative_list(fb, None, True), RELATIVE_CONTENTS)


@scenario("dup_names", "pull", "'f' twice in one list (deduplicated, sent once)")
def s_dup_names(peer):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f")).add(entry(b"f"))
    pull_session(peer, build, CONTENTS)


# ---- file-list fields ---------------------------------------------------------

@scenario("dot_not_dir", "pull", "'.' sent as a regular file")
def s_dot_not_dir(peer):
    def build(fb):
        fb.add(entry(b".", "f"))
    pull_session(peer, build, {b".": NEW_CONTENT})


@scenario("bad_mode", "pull", "a file mode with the undefined type 0170000")
def s_bad_mode(peer):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f", mode=0o170644))
    pull_session(peer, build, CONTENTS)


@scenario("varint_overflow", "pull", "xflags varint announcing 5 extra bytes")
def s_varint_overflow(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw(b"\xf8\xff\xff\xff\xff\xff\xff")
    pull_session(peer, build, CONTENTS)


@scenario("varlong_overflow", "pull", "mtime varlong announcing 6 extra bytes (10 in all)")
def s_varlong_overflow(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), mtime_field=b"\xfc" + b"\xff" * 9)
    pull_session(peer, build, CONTENTS)


@scenario("name_too_long", "pull", "XMIT_LONG_NAME suffix length 5000")
def s_name_too_long(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"x" * 5000), xflags=XMIT_LONG_NAME)
    pull_session(peer, build, CONTENTS)


@scenario("name_len_huge", "pull", "XMIT_LONG_NAME suffix length 0x7fffffff, no name bytes")
def s_name_len_huge(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw(encode_varint(XMIT_LONG_NAME | XMIT_SAME_UID | XMIT_SAME_GID)
               + encode_varint(0x7FFFFFFF) + b"x" * 64)
    pull_session(peer, build, CONTENTS)


@scenario("name_l1_overflow", "pull", "XMIT_SAME_NAME prefix 200 after the 1-byte name '.'")
def s_name_l1_overflow(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), xflags=XMIT_SAME_NAME, name_field=bytes([200, 1]) + b"f")
    pull_session(peer, build, CONTENTS)


@scenario("size_negative", "pull", "file length -1")
def s_size_negative(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), size_field=encode_varlong(-1, 3))
    pull_session(peer, build, CONTENTS)


@scenario("hlink_out_of_range", "pull", "-H: hard-link reference to transmit index 99")
def s_hlink_out_of_range(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), xflags=XMIT_HLINKED, after_name=encode_varint(99))
    pull_session(peer, build, CONTENTS)


@scenario("hlink_self", "pull", "-H: hard-link reference to its own (not yet received) index")
def s_hlink_self(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), xflags=XMIT_HLINKED, after_name=encode_varint(1))
    pull_session(peer, build, CONTENTS)


@scenario("hlink_without_H", "pull", "XMIT_HLINKED|XMIT_HLINK_FIRST on a file without -H")
def s_hlink_without_h(peer):
    def build(fb):
        fb.add(entry(b".", "d"))
        fb.raw_entry(entry(b"f"), xflags=XMIT_HLINKED | XMIT_HLINK_FIRST)
    pull_session(peer, build, CONTENTS)


# ---- transfer records -----------------------------------------------------------

def _send_unasked(ndx_fn, iflags=ITEM_TRANSFER):
    def after_flist(peer, flist):
        ndx = ndx_fn(flist)
        peer.send(peer.item(ndx, iflags) + encode_sum_head(SumHead(0, 0, 0, 0))
                  + encode_int32(len(b"pwned\n")) + b"pwned\n" + encode_int32(0)
                  + peer.file_digest(b"pwned\n"))
        log(f"sent unrequested transfer record ndx={ndx}")
    return after_flist


@scenario("ndx_out_of_range", "pull", "a transfer record for ndx 7 of a 2-entry list")
def s_ndx_out_of_range(peer):
    pull_session(peer, basic_list, CONTENTS, after_flist=_send_unasked(lambda fl: 7))


@scenario("ndx_huge", "pull", "a transfer record for ndx 0x7ffffff0")
def s_ndx_huge(peer):
    pull_session(peer, basic_list, CONTENTS, after_flist=_send_unasked(lambda fl: 0x7FFFFFF0))


@scenario("ndx_dir", "pull", "a transfer record for the directory '.'")
def s_ndx_dir(peer):
    pull_session(peer, basic_list, CONTENTS, after_flist=_send_unasked(lambda fl: 0))


@scenario("ndx_unrequested", "pull", "a transfer record for 'same', which the client has already")
def s_ndx_unrequested(peer):
    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f")).add(entry(b"same", size=5, mtime=MTIME_NEW))

    def on_phase(s, phase):
        if phase == 1:
            ndx = ndx_of(s.flist, b"same")
            s.peer.send(s.peer.item(ndx, ITEM_TRANSFER) + encode_sum_head(SumHead(0, 0, 0, 0))
                        + encode_int32(6) + b"pwned\n" + encode_int32(0)
                        + s.peer.file_digest(b"pwned\n"))
            log(f"sent unrequested transfer record for 'same' ndx={ndx}")
    pull_session(peer, build, CONTENTS, on_phase=on_phase)


# ---- token stream ---------------------------------------------------------------

def _tokens(body_fn):
    """Answer the first request with the echoed head and ``body_fn(head)``
    (the token stream and whatever follows), then stop answering."""
    def on_request(s, ndx, iflags, head, phase):
        p = s.peer
        p.send(p.item(ndx, iflags) + encode_sum_head(head) + body_fn(s, head))
        log(f"sent hostile tokens for ndx={ndx} head={head}")
        p.wait_eof()
        raise PeerGone("done")
    return on_request


@scenario("block_index_beyond", "pull", "a block match token with index count+5")
def s_block_index_beyond(peer):
    pull_session(peer, basic_list, CONTENTS, on_request=_tokens(
        lambda s, h: encode_int32(-(h.count + 5) - 1) + encode_int32(0) + bytes(s.peer.digest_len)))


@scenario("block_index_huge", "pull", "a block match token with index 0x7ffffffe")
def s_block_index_huge(peer):
    pull_session(peer, basic_list, CONTENTS, on_request=_tokens(
        lambda s, h: encode_int32(-0x7FFFFFFF) + encode_int32(0) + bytes(s.peer.digest_len)))


@scenario("literal_huge", "pull", "a literal record of 0x7fffffff bytes (1 MiB sent, then EOF)")
def s_literal_huge(peer):
    def body(s, h):
        return encode_int32(0x7FFFFFFF) + b"A" * (1 << 20)

    def on_request(s, ndx, iflags, head, phase):
        p = s.peer
        p.send(p.item(ndx, iflags) + encode_sum_head(head) + body(s, head))
        log("sent 1 MiB of a 2 GiB literal; closing")
        raise PeerGone("done")
    pull_session(peer, basic_list, CONTENTS, on_request=on_request)


@scenario("literal_beyond_size", "pull", "literal data 1 MiB longer than the announced file length")
def s_literal_beyond_size(peer):
    def on_request(s, ndx, iflags, head, phase):
        data = NEW_CONTENT + b"B" * (1 << 20)
        s.send_file(ndx, iflags, head, data)
        log("sent an oversized file")
        return True
    pull_session(peer, basic_list, CONTENTS, on_request=on_request)


@scenario("stream_cut", "pull", "half of the file's literal data, then the peer exits")
def s_stream_cut(peer):
    def on_request(s, ndx, iflags, head, phase):
        p = s.peer
        half = NEW_CONTENT[:len(NEW_CONTENT) // 2]
        p.send(p.item(ndx, iflags) + encode_sum_head(head)
               + encode_int32(len(NEW_CONTENT)) + half)
        log("sent half a file; exiting")
        raise PeerGone("done")
    pull_session(peer, basic_list, CONTENTS, on_request=on_request)


@scenario("stream_cut_big", "pull", "3 MiB of a 4 MiB file in several records, then the peer exits")
def s_stream_cut_big(peer):
    big = b"0123456789abcdef" * (1 << 18)

    def build(fb):
        fb.add(entry(b".", "d")).add(entry(b"f", size=len(big)))

    def on_request(s, ndx, iflags, head, phase):
        p = s.peer
        out = bytearray(p.item(ndx, iflags) + encode_sum_head(head))
        for i in range(0, 3 << 20, 32 * 1024):
            out += encode_int32(32 * 1024) + big[i:i + 32 * 1024]
        p.send(bytes(out))
        log("sent 3 MiB of 4; exiting")
        raise PeerGone("done")
    pull_session(peer, build, {b"f": big}, on_request=on_request)


@scenario("digest_mismatch", "pull", "a wrong whole-file checksum in phase 0 and in the redo")
def s_digest_mismatch(peer):
    def on_request(s, ndx, iflags, head, phase):
        s.send_file(ndx, iflags, head, NEW_CONTENT, digest=b"\xee" * s.peer.digest_len)
        log(f"sent a wrong digest in phase {phase}")
        return True
    pull_session(peer, basic_list, CONTENTS, on_request=on_request)


# ---- push: hostile sum heads and requests -----------------------------------------

def _head(count, blength, s2length, remainder) -> bytes:
    return struct.pack("<iiii", count, blength, s2length, remainder)


@scenario("sum_s2length", "push", "sum head s2length 32 (digest is 16 bytes)")
def s_sum_s2length(peer):
    push_hostile_request(peer, _head(1, 700, 32, 0), bytes(4 + 32))


@scenario("sum_s2length_negative", "push", "sum head s2length -1")
def s_sum_s2length_negative(peer):
    push_hostile_request(peer, _head(1, 700, -1, 0))


@scenario("sum_count_negative", "push", "sum head count -1")
def s_sum_count_negative(peer):
    push_hostile_request(peer, _head(-1, 700, 2, 0))


@scenario("sum_blength_huge", "push", "sum head blength 131073 (> MAX_BLOCK_SIZE)")
def s_sum_blength_huge(peer):
    push_hostile_request(peer, _head(1, 131073, 2, 0), bytes(6))


@scenario("sum_blength_negative", "push", "sum head blength -700")
def s_sum_blength_negative(peer):
    push_hostile_request(peer, _head(1, -700, 2, 0), bytes(6))


@scenario("sum_blength_zero", "push", "sum head count 1 with blength 0")
def s_sum_blength_zero(peer):
    push_hostile_request(peer, _head(1, 0, 2, 0), bytes(6))


@scenario("sum_remainder", "push", "sum head remainder 701 > blength 700")
def s_sum_remainder(peer):
    push_hostile_request(peer, _head(2, 700, 2, 701), bytes(12))


@scenario("sum_count_huge", "push", "sum head count 0x7fffffff")
def s_sum_count_huge(peer):
    push_hostile_request(peer, _head(0x7FFFFFFF, 700, 16, 0), bytes(20 * 16))


@scenario("sum_count_alloc", "push",
          "sum head count 50,000,000 x 16-byte sums (about 1 GB on the wire, "
          "2 GB as rsync's sum_buf array); 64 MiB of sums streamed")
def s_sum_count_alloc(peer):
    push_hostile_request(peer, _head(50_000_000, 700, 16, 0), stream_sums=64 << 20)


@scenario("sum_many_blocks", "push",
          "valid but large: 600,000 blocks x 16-byte sums (12 MB) for one file; "
          "the sender must read them all and send the file")
def s_sum_many_blocks(peer):
    count = 600_000
    one = struct.pack("<I", 0x12345678) + b"\x5a" * 16
    push_ok(peer, _head(count, 700, 16, 0), one * count)


@scenario("req_ndx_out_of_range", "push", "a request for ndx len(flist)+5")
def s_req_ndx_out_of_range(peer):
    push_hostile_request(peer, _head(0, 0, 0, 0), ndx=-5)


@scenario("req_dir", "push", "a transfer request for the directory '.'")
def s_req_dir(peer):
    push_hostile_request(peer, _head(0, 0, 0, 0), ndx=0)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    if argv[:1] == ["--list"]:
        for name, (direction, doc, _fn) in SCENARIOS.items():
            print(f"{name:24} {direction:5} {doc}")
        return 0
    if not argv or argv[0] not in SCENARIOS:
        sys.stderr.write(f"evil_peer: unknown scenario {argv[:1]}\n")
        return 3
    name = argv[0]
    direction, _doc, fn = SCENARIOS[name]
    args = ServerArgs(argv[1:])
    log(f"scenario {name}: argv {argv[1:]}")
    want_sender = direction == "pull"
    if "--server" not in args.argv or args.sender != want_sender:
        log(f"INTERNAL ERROR: scenario {name} is a {direction} scenario, argv {argv[1:]}")
        return 3
    signal.signal(signal.SIGALRM, lambda *_: (log("timeout: giving up"), os._exit(0)))
    signal.alarm(int(os.environ.get("EVIL_TIMEOUT", "60")))
    peer = Peer(args)
    try:
        fn(peer)
        log("scenario finished")
    except PeerGone as e:
        log(f"client gone: {e}")
    except SystemExit:
        raise
    except BaseException:
        log("INTERNAL ERROR:\n" + traceback.format_exc())
        return 3
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    try:
        sys.stdout.flush()
    except OSError:
        pass
    os._exit(code)
