"""The token stream: a file's new content as literal data and block matches.

After echoing the sum head, the sender describes each file as a sequence
of literal bytes and references to blocks of the receiver's basis file,
then an end marker (protocol.md §5.6). Two framings:

* uncompressed: int32 ``n > 0`` and n literal bytes (we send at most
  ``CHUNK_SIZE`` per record: rsync 3.4.3/3.4.4 reject longer ones),
  int32 ``-(index + 1)`` for a block, int32 ``0`` at the end;
* compressed (zlib, zlibx, zstd): flag bytes. DEFLATED_DATA records carry
  compressed literal data (at most 16383 bytes each), TOKEN_REL /
  TOKEN_LONG name a block, the RUN forms add a 16-bit count of further
  consecutive blocks, END_FLAG ends the file. Relative indices count from
  the last block of the previous run; the base is 0 at each file start.

One :class:`TokenEncoder` and one :class:`TokenDecoder` per session and
direction: zstd's context spans files.
"""

from __future__ import annotations

import struct

from .buffer import ProtocolError, ReadBuffer
from .constants import (CHUNK_SIZE, DEFLATED_DATA, END_FLAG, MAX_DATA_COUNT, RERR_PROTOCOL,
                        RERR_STREAMIO, TOKEN_LONG, TOKEN_REL, TOKENRUN_LONG, TOKENRUN_REL)
from .ints import decode_int32

__all__ = ["END", "TokenEncoder", "TokenDecoder"]

_I32 = struct.Struct("<i")
_END_RECORD = _I32.pack(0)
_FULL_RECORD_HEAD = bytes((DEFLATED_DATA | (MAX_DATA_COUNT >> 8), MAX_DATA_COUNT & 0xFF))
# Largest uncompressed literal record we accept from a peer (rsync sends
# 32 KiB records; other implementations up to 256 KiB).
MAX_LITERAL_RECORD = 16 * 1024 * 1024
# Longest run of consecutive blocks one run token may carry (16-bit count).
MAX_RUN = 0xFFFF
# Largest block index a compressed stream may name (token.c MAX_TOKEN_INDEX).
MAX_TOKEN_INDEX = 0x7FFFFFFE


class _End:
    """The sentinel :meth:`TokenDecoder.next_token` returns at a file's end."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"

    def __reduce__(self):
        return "END"


END = _End()


def _invalid_token() -> ProtocolError:
    return ProtocolError("invalid token number in compressed stream", RERR_PROTOCOL)


# --- encoder -----------------------------------------------------------------

class TokenEncoder:
    """Turns one file after another into token stream bytes.

    Per file: ``begin_file()``, then any mix of ``literal(data)`` and
    ``block(index, data)``, then ``end()`` (always: zstd's stream spans
    files, so a file's tokens cannot be abandoned). Every method returns the bytes
    to send now (possibly empty). Literal data is held back until a
    full record is ready or a block/end closes the run, so memory stays
    at about one record whatever the caller passes.

    ``codec`` is None (uncompressed) or a negotiated name ("zlib",
    "zlibx", "zstd"); ``level`` is --compress-level (None = default).
    ``block`` needs the block's bytes only for "zlib" (history trick).
    """

    __slots__ = ("codec", "_comp", "_lit", "_dirty", "_run_start", "_run_end", "_base",
                 "_in_file")

    def __init__(self, codec: str | None = None, level: int | None = None):
        self.codec = codec
        self._comp = None
        if codec is not None:
            # -z only: compress.py loads zlib (and zstd), which a run without
            # compression does not need to start.
            from .compress import make_compressor
            self._comp = make_compressor(codec, level)
        self._lit = bytearray()  # uncompressed: literal bytes; else compressed bytes
        self._dirty = False  # compressed: literal input since the last flush
        self._run_start = -1  # pending run of blocks, -1 = none
        self._run_end = -1
        self._base = 0  # relative index base
        self._in_file = False

    def begin_file(self) -> bytes:
        self._lit.clear()
        self._dirty = False
        self._run_start = self._run_end = -1
        self._base = 0
        self._in_file = True
        if self._comp is not None:
            self._comp.begin_file()
        return b""

    def _auto_begin(self) -> None:
        if not self._in_file:
            self.begin_file()

    # -- uncompressed ---------------------------------------------------------

    def _plain_literal(self, data) -> bytes:
        parts = self._plain_parts(data)
        if not parts:
            return b""
        return b"".join(parts)

    def _plain_parts(self, data) -> list:
        # upstream: token.c:simple_send_token()
        lit = self._lit
        view = memoryview(data)
        parts = []
        pos = 0
        if lit:
            take = min(CHUNK_SIZE - len(lit), len(view))
            lit += view[:take]
            pos = take
            if len(lit) < CHUNK_SIZE:
                return parts
            parts.append(_I32.pack(CHUNK_SIZE))
            parts.append(bytes(lit))
            lit.clear()
        end = len(view)
        while end - pos >= CHUNK_SIZE:
            parts.append(_I32.pack(CHUNK_SIZE))
            parts.append(view[pos:pos + CHUNK_SIZE])
            pos += CHUNK_SIZE
        if pos < end:
            lit += view[pos:]
        return parts

    def _plain_flush(self) -> bytes:
        lit = self._lit
        if not lit:
            return b""
        out = _I32.pack(len(lit)) + lit
        lit.clear()
        return out

    # -- compressed -----------------------------------------------------------

    def _records(self, final: bool) -> bytes:
        """DEFLATED_DATA records of pending compressed bytes (all if final)."""
        # upstream: token.c:send_deflated_token() / send_zstd_token()
        buf = self._lit
        n = len(buf)
        if not n or (n < MAX_DATA_COUNT and not final):
            return b""
        parts = []
        pos = 0
        with memoryview(buf) as view:
            while n - pos >= MAX_DATA_COUNT:
                parts.append(_FULL_RECORD_HEAD)
                parts.append(view[pos:pos + MAX_DATA_COUNT])
                pos += MAX_DATA_COUNT
            if final and pos < n:
                k = n - pos
                parts.append(bytes((DEFLATED_DATA | (k >> 8), k & 0xFF)))
                parts.append(view[pos:])
                pos = n
            out = b"".join(parts)
            for p in parts:
                if isinstance(p, memoryview):
                    p.release()
        del buf[:pos]
        return out

    def _run_bytes(self) -> bytes:
        """The pending run of blocks as one token; empty if none."""
        start = self._run_start
        if start < 0:
            return b""
        n = self._run_end - start
        rel = start - self._base
        if 0 <= rel <= 63:
            out = bytes(((TOKENRUN_REL if n else TOKEN_REL) | rel,))
        else:
            out = bytes(((TOKENRUN_LONG if n else TOKEN_LONG),)) + _I32.pack(start)
        if n:
            out += bytes((n & 0xFF, n >> 8))
        self._base = self._run_end
        self._run_start = self._run_end = -1
        return out

    def _flush_data(self) -> bytes:
        if not self._dirty:
            return b""
        self._dirty = False
        self._lit += self._comp.flush()
        return self._records(final=True)

    # -- API ------------------------------------------------------------------

    def literal(self, data) -> bytes:
        """Literal bytes of the new file (any length, any number of calls)."""
        if not data:
            return b""
        self._auto_begin()
        if self._comp is None:
            return self._plain_literal(data)
        head = self._run_bytes()
        self._dirty = True
        self._lit += self._comp.compress(data)
        body = self._records(final=False)
        return head + body if head else body

    def literal_iov(self, data) -> list:
        """As :meth:`literal`, but the bytes to send as a list of buffers
        (their concatenation is what ``literal`` returns).  Uncompressed,
        full records are slices of ``data`` itself, not copies: send them
        before ``data`` changes."""
        if not data:
            return []
        if self._comp is None:
            self._auto_begin()
            return self._plain_parts(data)
        out = self.literal(data)
        return [out] if out else []

    def block(self, index: int, data=None) -> bytes:
        """A match of basis block ``index``; ``data`` is its content (zlib)."""
        if index < 0 or index > MAX_TOKEN_INDEX:
            raise ValueError(f"block index {index} out of range")
        self._auto_begin()
        comp = self._comp
        if comp is None:
            return self._plain_flush() + _I32.pack(-(index + 1))
        out = self._flush_data()
        start = self._run_start
        if start >= 0 and index == self._run_end + 1 and index - start < MAX_RUN + 1:
            self._run_end = index
        else:
            out += self._run_bytes()
            self._run_start = self._run_end = index
        if self.codec == "zlib":
            if data is None:
                raise ValueError("zlib needs each matched block's data")
            comp.insert(data)
        return out

    def blocks(self, first: int, n: int, data=None, blen: int = 0) -> bytes:
        """``n`` consecutive matches, of blocks ``first`` .. ``first + n - 1``:
        the bytes of that many :meth:`block` calls.  ``data`` is the run's
        content (``n * blen`` bytes; needed for "zlib" only)."""
        if n <= 0:
            return b""
        last = first + n - 1
        if first < 0 or last > MAX_TOKEN_INDEX:
            raise ValueError(f"block indices {first}..{last} out of range")
        if self._comp is None:
            self._auto_begin()
            return self._plain_flush() + struct.pack(f"<{n}i", *range(-first - 1, -last - 2, -1))
        if self.codec == "zlib":
            if data is None:
                raise ValueError("zlib needs each matched block's data")
            with memoryview(data) as view:
                return b"".join([self.block(first + j, view[j * blen:(j + 1) * blen])
                                 for j in range(n)])
        # What block() does index by index, a run token at a time.
        self._auto_begin()
        out = self._flush_data()
        i = first
        while i <= last:
            start = self._run_start
            if start >= 0 and i == self._run_end + 1 and i - start < MAX_RUN + 1:
                self._run_end = i = min(last, start + MAX_RUN)
            else:
                out += self._run_bytes()
                self._run_start = self._run_end = i
            i += 1
        return out

    def end(self) -> bytes:
        """End of the file's tokens; the next file starts fresh."""
        self._auto_begin()
        self._in_file = False
        if self._comp is None:
            return self._plain_flush() + _END_RECORD
        out = self._flush_data() + self._run_bytes() + bytes((END_FLAG,))
        self._base = 0
        return out


# --- decoder -----------------------------------------------------------------

class TokenDecoder:
    """Reads token streams, one file after another.

    ``next_token(buf)`` returns literal data (``bytes``, never empty, at
    most 128 KiB), a block index (``int`` >= 0; the caller checks it
    against the sum head's count) or :data:`END`, after which the next
    call reads the next file's tokens. Call it as
    ``buf.attempt(dec.next_token)``: on NeedMore roll ``buf`` back to its
    last commit, feed more bytes and call again; commit after each value.
    When the decoder has absorbed a compressed record without having
    anything to return yet, it commits ``buf`` itself, so a rollback never
    replays absorbed bytes; do not wrap calls in a larger transaction on
    the same buffer.

    With "zlib" the receiver must call ``see_block(data)`` with each
    matched block's bytes, in order, before asking for the next token.
    """

    __slots__ = ("codec", "_dec", "_residue", "_token", "_run")

    def __init__(self, codec: str | None = None):
        self.codec = codec
        self._dec = None
        if codec is not None:
            from .compress import make_decompressor  # -z only (see TokenEncoder)
            self._dec = make_decompressor(codec)
        self._residue = 0  # uncompressed: literal bytes still to come
        self._token = 0  # compressed: last block index (relative base)
        self._run = 0  # compressed: blocks still to hand out of a run

    def begin_file(self) -> None:
        self._residue = 0
        self._token = 0
        self._run = 0
        if self._dec is not None:
            self._dec.begin_file()

    def take_run(self, most: int) -> int:
        """After :meth:`next_token` returned block ``i``: take up to
        ``most`` of the blocks that follow it in the same run token, which
        the next calls would return one by one (``i + 1``, ``i + 2``, ...);
        returns how many were taken.  Always 0 uncompressed."""
        k = self._run if self._run < most else most
        if k > 0:
            self._run -= k
            self._token += k
        return k

    def take_blocks(self, buf: ReadBuffer, most: int) -> list:
        """Uncompressed: the block indices of the block tokens at the front
        of ``buf`` (at most ``most``), taken from it in one go; empty when
        the next token is something else, or compressed.  The same values
        as that many :meth:`next_token` calls."""
        if self._dec is not None or self._residue:
            return []
        n = min(len(buf) >> 2, most)
        if n <= 0:
            return []
        vals = struct.unpack(f"<{n}i", buf.peek(4 * n))
        k = 0
        while k < n and vals[k] < 0:
            k += 1
        if not k:
            return []
        buf.take(4 * k)
        return [-v - 1 for v in vals[:k]]

    def see_block(self, data) -> None:
        if self._dec is not None:
            self._dec.see(data)

    def next_token(self, buf: ReadBuffer):
        if self._dec is None:
            return self._next_plain(buf)
        return self._next_compressed(buf)

    def _next_plain(self, buf: ReadBuffer):
        # upstream: token.c:simple_recv_token()
        residue = self._residue
        if residue:
            n = min(residue, CHUNK_SIZE)
            data = buf.take(n)
            self._residue = residue - n
            return data
        i = decode_int32(buf)
        if i == 0:
            return END
        if i < 0:
            return -(i + 1)
        # rsync 3.5.0 accepts literal records longer than CHUNK_SIZE again
        # (3.4.3/3.4.4 did not); we take up to MAX_LITERAL_RECORD, far above
        # any real sender's records, and hand them out CHUNK_SIZE at a time.
        if i > MAX_LITERAL_RECORD:
            raise ProtocolError(f"invalid uncompressed token length {i}", RERR_PROTOCOL)
        n = min(i, CHUNK_SIZE)
        data = buf.take(n)
        self._residue = i - n
        return data

    def _next_compressed(self, buf: ReadBuffer):
        # upstream: token.c:recv_deflated_token() / recv_zstd_token()
        dec = self._dec
        while True:
            if self._run:
                if self._token >= MAX_TOKEN_INDEX:
                    raise _invalid_token()
                self._run -= 1
                self._token += 1
                return self._token
            out = dec.pull()
            if out:
                return out
            flag = buf.byte()
            if flag & 0xC0 == DEFLATED_DATA:
                n = ((flag & 0x3F) << 8) | buf.byte()
                dec.feed(buf.take(n))
                buf.commit()  # absorbed: never replay this record
                continue
            if flag == END_FLAG:
                dec.end_run()
                dec.begin_file()
                self._token = 0
                return END
            return self._token_flag(flag, buf)

    def _token_flag(self, flag: int, buf: ReadBuffer) -> int:
        # upstream: token.c:recv_compressed_token_num()
        # Read everything the token needs before touching any state.
        if flag & TOKEN_REL:
            token = self._token + (flag & 0x3F)
            if token > MAX_TOKEN_INDEX:
                raise _invalid_token()
            run = flag & (TOKENRUN_REL ^ TOKEN_REL)
        elif flag == TOKEN_LONG or flag == TOKENRUN_LONG:
            token = decode_int32(buf)
            if token < 0 or token > MAX_TOKEN_INDEX:
                raise _invalid_token()
            run = flag == TOKENRUN_LONG
        else:
            raise ProtocolError(f"invalid flag byte 0x{flag:02x} in compressed token stream",
                                RERR_STREAMIO)
        count = 0
        if run:
            count = int.from_bytes(buf.take(2), "little")
            if count <= 0 or token > MAX_TOKEN_INDEX - count:
                raise _invalid_token()
        self._dec.end_run()
        self._token = token
        self._run = count
        return token
