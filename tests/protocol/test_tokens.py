"""Token stream: framing by hand, round trips per codec, rsync's own bytes, hostile input."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
import zstandard

from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.compress import OUT_CHUNK, ZstdDecompressor
from pysync.protocol.constants import CHUNK_SIZE, MAX_DATA_COUNT
from pysync.protocol.tokens import END, TokenDecoder, TokenEncoder

CODECS = [None, "zlib", "zlibx", "zstd"]
BLEN = 700


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def decode_file(dec: TokenDecoder, data: bytes, blocks=None, step: int | None = None):
    """Decode one file's tokens; returns (events, bytes left over).

    events: literal runs merged into bytes, block indices as ints, END last.
    ``step`` feeds the buffer that many bytes at a time, rolling back on
    NeedMore like a real reader.
    """
    buf = ReadBuffer(data if step is None else b"")
    pos = 0 if step is not None else len(data)
    events: list = []
    while True:
        try:
            tok = buf.attempt(dec.next_token)
        except NeedMore:
            if pos >= len(data):
                raise
            buf.feed(data[pos:pos + step])
            pos += step
            continue
        if isinstance(tok, bytes):
            assert tok, "decoder returned an empty literal"
            if events and isinstance(events[-1], bytearray):
                events[-1] += tok
            else:
                events.append(bytearray(tok))
            continue
        if tok is END:
            events.append(END)
            break
        events.append(tok)
        if blocks is not None:
            dec.see_block(blocks[tok])
    rest = buf.rest() + data[pos:]
    return [bytes(e) if isinstance(e, bytearray) else e for e in events], rest


def merged(seq):
    """An encoder input sequence with adjacent literals merged, END appended."""
    out: list = []
    for item in seq:
        if isinstance(item, (bytes, bytearray)):
            if not item:
                continue
            if out and isinstance(out[-1], bytes):
                out[-1] += bytes(item)
                continue
            out.append(bytes(item))
        else:
            out.append(item)
    return out + [END]


def encode_file(enc: TokenEncoder, seq, blocks) -> bytes:
    out = bytearray(enc.begin_file())
    for item in seq:
        if isinstance(item, int):
            out += enc.block(item, None if blocks is None else blocks[item])
        else:
            out += enc.literal(item)
    out += enc.end()
    return bytes(out)


def random_file(rnd: random.Random, nblocks: int):
    seq = []
    for _ in range(rnd.randint(0, 40)):
        r = rnd.random()
        if r < 0.35:
            seq.append(rnd.randbytes(rnd.randint(1, 3000)))
        elif r < 0.45:
            seq.append(bytes([rnd.randrange(256)]) * rnd.randint(1, 70000))
        elif r < 0.6:
            seq.append(b"the same words again and again " * rnd.randint(1, 200))
        elif r < 0.8:
            start = rnd.randrange(nblocks)
            seq.extend(range(start, min(nblocks, start + rnd.randint(1, 80))))
        else:
            seq.append(rnd.randrange(nblocks))
    return seq


@pytest.fixture(scope="module")
def blocks():
    rnd = random.Random(5)
    out = []
    for i in range(200):
        if i % 3:
            out.append(rnd.randbytes(BLEN))
        else:
            out.append((b"block %d text " % i) * 60)
    return out


# --- uncompressed framing ------------------------------------------------------

def test_plain_framing_by_hand():
    enc = TokenEncoder(None)
    wire = enc.begin_file() + enc.literal(b"hello") + enc.literal(b" world")
    assert wire == b""  # literal held back until a token
    wire += enc.block(3) + enc.block(0) + enc.literal(b"!") + enc.end()
    assert wire == (i32(11) + b"hello world" + i32(-4) + i32(-1) + i32(1) + b"!" + i32(0))


def test_plain_records_never_exceed_chunk_size():
    enc = TokenEncoder(None)
    data = bytes(range(256)) * 400  # 102400 bytes
    wire = enc.begin_file()
    for i in range(0, len(data), 1000):
        wire += enc.literal(data[i:i + 1000])
    wire += enc.end()
    expect = b""
    for i in range(0, len(data), CHUNK_SIZE):
        piece = data[i:i + CHUNK_SIZE]
        expect += i32(len(piece)) + piece
    assert wire == expect + i32(0)


def test_plain_decoder_accepts_long_records_in_chunks():
    # rsync 3.5.0 (and 3.4.2 and older) accept records above CHUNK_SIZE.
    data = bytes(range(256)) * 400
    dec = TokenDecoder(None)
    buf = ReadBuffer(i32(len(data)) + data + i32(-8) + i32(0))
    pieces = []
    while True:
        tok = buf.attempt(dec.next_token)
        if not isinstance(tok, bytes):
            break
        assert 0 < len(tok) <= CHUNK_SIZE
        pieces.append(tok)
    assert b"".join(pieces) == data
    assert tok == 7
    assert buf.attempt(dec.next_token) is END


def test_plain_empty_file():
    enc = TokenEncoder(None)
    assert enc.begin_file() + enc.end() == i32(0)
    assert TokenDecoder(None).next_token(ReadBuffer(i32(0))) is END


# --- compressed framing --------------------------------------------------------

def test_compressed_token_framing_by_hand():
    enc = TokenEncoder("zlibx")
    wire = enc.begin_file()
    for idx in (0, 1, 2, 10, 100, 5, 6):
        wire += enc.block(idx)
    wire += enc.end()
    expect = bytes([
        0xC0, 2, 0,                # TOKENRUN_REL +0, 2 more blocks: 0,1,2
        0x88,                      # TOKEN_REL: 2 + 8 = 10
        0x20]) + i32(100) + bytes([  # TOKEN_LONG 100 (90 > 63)
        0x21]) + i32(5) + bytes([    # TOKENRUN_LONG 5 (backwards), 1 more: 5,6
        1, 0,
        0x00])                     # END_FLAG
    assert wire == expect
    events, rest = decode_file(TokenDecoder("zlibx"), wire)
    assert events == [0, 1, 2, 10, 100, 5, 6, END] and rest == b""


def test_relative_base_resets_per_file():
    enc = TokenEncoder("zstd")
    first = encode_file(enc, [40], None)
    second = encode_file(enc, [40], None)
    assert first == second == bytes([0x80 + 40, 0x00])


def test_runs_are_capped_at_65535():
    enc = TokenEncoder("zlibx")
    wire = enc.begin_file()
    for idx in range(65537):
        wire += enc.block(idx)
    wire += enc.end()
    assert wire == bytes([0xC0, 0xFF, 0xFF, 0x81, 0x00])
    events, _ = decode_file(TokenDecoder("zlibx"), wire)
    assert events == list(range(65537)) + [END]


def test_data_records_are_at_most_max_data_count():
    rnd = random.Random(1)
    data = rnd.randbytes(100_000)  # incompressible
    for codec in ("zlib", "zlibx", "zstd"):
        enc = TokenEncoder(codec)
        wire = encode_file(enc, [data, 3, data], None if codec != "zlib" else {3: b"x" * 700})
        pos = 0
        sizes = []
        while wire[pos] != 0:
            flag = wire[pos]
            if flag & 0xC0 == 0x40:
                n = ((flag & 0x3F) << 8) | wire[pos + 1]
                assert 0 < n <= MAX_DATA_COUNT
                sizes.append(n)
                pos += 2 + n
            else:
                assert flag == 0x83
                pos += 1
        assert pos == len(wire) - 1
        assert max(sizes) == MAX_DATA_COUNT


# --- round trips -----------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_random(codec, blocks):
    rnd = random.Random(CODECS.index(codec))
    enc = TokenEncoder(codec)
    dec = TokenDecoder(codec)
    for _ in range(12):
        seq = random_file(rnd, len(blocks))
        wire = encode_file(enc, seq, blocks)
        events, rest = decode_file(dec, wire, blocks)
        assert rest == b""
        assert events == merged(seq)


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_one_byte_at_a_time(codec, blocks):
    rnd = random.Random(77)
    enc = TokenEncoder(codec)
    dec = TokenDecoder(codec)
    for _ in range(3):
        seq = [x for x in random_file(rnd, len(blocks))
               if isinstance(x, int) or len(x) < 5000]
        wire = encode_file(enc, seq, blocks)
        events, rest = decode_file(dec, wire, blocks, step=1)
        assert rest == b"" and events == merged(seq)


@pytest.mark.parametrize("codec", CODECS)
def test_many_files_share_one_session(codec, blocks):
    enc = TokenEncoder(codec)
    wire = b""
    seqs = []
    for k in range(20):
        seq = [b"file %d " % k * 50, k, k + 1, b"more text " * k, 150]
        seqs.append(seq)
        wire += encode_file(enc, seq, blocks)
    dec = TokenDecoder(codec)
    for seq in seqs:
        events, wire = decode_file(dec, wire, blocks, step=97)
        assert events == merged(seq)
    assert wire == b""


@pytest.mark.parametrize("codec", CODECS)
def test_end_without_begin_and_empty_literals(codec):
    enc = TokenEncoder(codec)
    wire = enc.literal(b"") + enc.literal(b"abc") + enc.end() + enc.literal(b"xyz") + enc.end()
    dec = TokenDecoder(codec)
    first, rest = decode_file(dec, wire)
    second, rest = decode_file(dec, rest)
    assert first == [b"abc", END] and second == [b"xyz", END] and rest == b""


# --- zlib specifics ------------------------------------------------------------------

def _records(wire: bytes):
    """Split a compressed token stream into ('data', payload) / ('flag', byte)."""
    out = []
    pos = 0
    while pos < len(wire):
        flag = wire[pos]
        if flag & 0xC0 == 0x40:
            n = ((flag & 0x3F) << 8) | wire[pos + 1]
            out.append(("data", wire[pos + 2:pos + 2 + n]))
            pos += 2 + n
        else:
            out.append(("flag", flag))
            pos += 1
            if flag in (0x20, 0x21):
                pos += 4
            if flag == 0x21 or flag >= 0xC0:
                pos += 2
    return out


def test_zlibx_stream_inflates_with_stock_zlib():
    # Literal runs are raw deflate, sync-flushed, with the 00 00 ff ff cut
    # off: put it back at each token and Python's inflater reads it all.
    rnd = random.Random(9)
    runs = [rnd.randbytes(20_000) + b"abc" * 9000, b"short", b"z" * 100_000]
    enc = TokenEncoder("zlibx")
    wire = encode_file(enc, [runs[0], 4, runs[1], 7, 8, runs[2]], None)
    stream = b""
    in_run = False
    for kind, value in _records(wire):
        if kind == "data":
            stream += value
            in_run = True
        elif in_run:
            stream += b"\x00\x00\xff\xff"
            in_run = False
    assert stream.count(b"\x00\x00\xff\xff") >= 3
    assert zlib.decompressobj(-15).decompress(stream) == b"".join(runs)


def test_zlib_history_inflates_with_stock_zlib(blocks):
    # With "zlib" the matched block enters the window as a stored block.
    lit = blocks[1][100:600] * 3
    enc = TokenEncoder("zlib")
    wire = encode_file(enc, [1, lit], blocks)
    stream = b""
    for kind, value in _records(wire):
        if kind == "data":
            stream += value
        elif kind == "flag" and value == 0x81:
            n = len(blocks[1])
            stream += bytes([0, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF]) + blocks[1]
    out = zlib.decompressobj(-15).decompress(stream + b"\x00\x00\xff\xff")
    assert out == blocks[1] + lit


def test_zlib_history_is_used_and_needed(blocks):
    data = blocks[1]  # random bytes: compressible only through the history
    with_history = encode_file(TokenEncoder("zlib"), [1, data], blocks)
    without = encode_file(TokenEncoder("zlibx"), [1, data], blocks)
    assert len(with_history) < len(without) / 4
    events, _ = decode_file(TokenDecoder("zlib"), with_history, blocks)
    assert events == [1, data, END]
    # A receiver that forgets see_block() cannot follow the back references.
    with pytest.raises(ProtocolError) as err:
        decode_file(TokenDecoder("zlib"), with_history, blocks=None)
    assert err.value.code == 12


def test_zlib_history_large_blocks():
    rnd = random.Random(3)
    big = [rnd.randbytes(131072), rnd.randbytes(70000)]
    seq = [0, big[0][-30000:], 1, big[1][:5000] + big[0][:1000]]
    enc, dec = TokenEncoder("zlib"), TokenDecoder("zlib")
    events, _ = decode_file(dec, encode_file(enc, seq, big), big)
    assert events == merged(seq)


# --- zstd specifics ---------------------------------------------------------------------

def test_zstd_context_spans_files():
    text = random.Random(4).randbytes(6000)  # compressible only by reference
    enc = TokenEncoder("zstd")
    first = encode_file(enc, [text], None)
    second = encode_file(enc, [text], None)
    assert len(second) < len(first) / 10  # the second refers to the first
    dec = TokenDecoder("zstd")
    assert decode_file(dec, first)[0] == [text, END]
    assert decode_file(dec, second)[0] == [text, END]
    # A decoder that did not see the first file cannot read the second.
    with pytest.raises(ProtocolError) as err:
        events, _ = decode_file(TokenDecoder("zstd"), second)
        assert events != [text, END]
        raise ProtocolError("decoded garbage", 12)
    assert err.value.code == 12


@pytest.mark.parametrize("backend", ["native", "cffi", "obj"])
def test_zstd_output_comes_in_bounded_pieces(backend):
    big = b"\0" * (40 << 20)  # 40 MiB of zeros: a few hundred bytes compressed
    enc = TokenEncoder("zstd")
    wire = enc.begin_file()
    for i in range(0, len(big), 1 << 20):
        wire += enc.literal(big[i:i + (1 << 20)])
    wire += enc.end()
    assert len(wire) < 20_000
    dec = TokenDecoder("zstd")
    try:
        dec._dec = ZstdDecompressor(backend=backend)  # exercise every back end
    except ImportError:
        pytest.skip(f"no {backend} zstd back end here")
    buf = ReadBuffer(wire)
    total = 0
    while True:
        tok = buf.attempt(dec.next_token)
        if tok is END:
            break
        assert 0 < len(tok) <= OUT_CHUNK
        total += len(tok)
    assert total == len(big)


def test_zlib_output_comes_in_bounded_pieces():
    raw = zlib.compressobj(9, zlib.DEFLATED, -15, 8)
    comp = raw.compress(b"\0" * (30 << 20)) + raw.flush(zlib.Z_SYNC_FLUSH)[:-4]
    wire = b""
    for i in range(0, len(comp), MAX_DATA_COUNT):
        piece = comp[i:i + MAX_DATA_COUNT]
        wire += bytes([0x40 | (len(piece) >> 8), len(piece) & 0xFF]) + piece
    wire += b"\x00"
    dec = TokenDecoder("zlib")
    buf = ReadBuffer(wire)
    total = 0
    while (tok := buf.attempt(dec.next_token)) is not END:
        assert 0 < len(tok) <= OUT_CHUNK
        total += len(tok)
    assert total == 30 << 20


# --- hostile input ---------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["zlib", "zlibx", "zstd"])
@pytest.mark.parametrize("flag", [0x01, 0x02, 0x1F, 0x22, 0x3F])
def test_bad_flag_byte(codec, flag):
    with pytest.raises(ProtocolError) as err:
        TokenDecoder(codec).next_token(ReadBuffer(bytes([flag]) + bytes(8)))
    assert err.value.code == 12


@pytest.mark.parametrize("wire", [
    b"\x20" + i32(-1),                              # negative absolute index
    b"\x20" + i32(0x7FFFFFFF),                      # beyond MAX_TOKEN_INDEX
    b"\x21" + i32(5) + b"\x00\x00",                 # run of zero more blocks
    b"\xc0\x00\x00",                                # same, relative
    b"\x20" + i32(0x7FFFFFFE) + b"\x85",            # relative step past the top
    b"\x21" + i32(0x7FFFFFF0) + b"\xff\xff",        # run past the top
], ids=["negative", "too-big", "run0", "relrun0", "rel-overflow", "run-overflow"])
def test_invalid_token_numbers(wire):
    dec = TokenDecoder("zstd")
    buf = ReadBuffer(wire)
    with pytest.raises(ProtocolError) as err:
        for _ in range(3):
            buf.attempt(dec.next_token)
    assert err.value.code == 2
    assert str(err.value) == "invalid token number in compressed stream"


@pytest.mark.parametrize("codec", ["zlib", "zlibx", "zstd"])
def test_garbage_compressed_data(codec):
    garbage = bytes(range(7, 250, 3)) * 3
    wire = bytes([0x40 | (len(garbage) >> 8), len(garbage) & 0xFF]) + garbage + b"\x00"
    dec = TokenDecoder(codec)
    buf = ReadBuffer(wire)
    with pytest.raises(ProtocolError) as err:
        while buf.attempt(dec.next_token) is not END:
            pass
    assert err.value.code == 12


def test_deflate_stream_end_is_an_error():
    raw = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
    comp = raw.compress(b"final block") + raw.flush(zlib.Z_FINISH)
    wire = bytes([0x40, len(comp)]) + comp + b"\x00"
    with pytest.raises(ProtocolError) as err:
        decode_file(TokenDecoder("zlib"), wire)
    assert err.value.code == 12


def test_truncated_deflate_loses_sync():
    enc = TokenEncoder("zlibx")
    wire = encode_file(enc, [bytes(range(256)) * 40], None)
    records = _records(wire)
    payload = records[0][1][:-3]  # cut the run short of its sync point
    bad = bytes([0x40 | (len(payload) >> 8), len(payload) & 0xFF]) + payload + b"\x00"
    with pytest.raises(ProtocolError) as err:
        decode_file(TokenDecoder("zlibx"), bad)
    assert err.value.code == 12


def test_encoder_rejects_misuse():
    with pytest.raises(ValueError):
        TokenEncoder(None).block(-1)
    with pytest.raises(ValueError):
        TokenEncoder("zlib").block(0)  # zlib needs the block's data
    with pytest.raises(ValueError):
        TokenEncoder("zlib", level=0)
    with pytest.raises(ValueError):
        TokenEncoder("lz4")


def test_end_sentinel():
    assert repr(END) == "END"
    assert END is not None and not isinstance(END, (int, bytes))


# --- rsync's own bytes ---------------------------------------------------------------
#
# Captured from stock rsync 3.2.7 (protocol 32, /usr/bin/rsync here), client
# sender: ``rsync -a --no-inc-recursive --checksum-seed=-123456789 --cc=xxh128
# -z --zc=CODEC src/ localhost:dst/`` through interop/fake_rsh.py with
# FAKE_RSH_RECORD, MSG_DATA payloads joined, each file's token stream cut
# from after the echoed sum head up to END (inclusive). Three files in one
# session: f0 is a delta against OLD1 (700-byte blocks), f1 and f2 are new
# (no basis); f2 repeats f1, so the zstd bytes of f2 only make sense after f1.
# Our encoder, given the same literal/block sequence, produces identical
# bytes for all three codecs (checked below).

OLD1 = b"".join(b"%04d: the quick brown fox jumps over the lazy dog\n" % i for i in range(80))
NEW1 = (OLD1[:1000] + b"INSERTED TEXT! " * 20 + OLD1[1000:2500] + OLD1[3000:]
        + OLD1[1200:1500] + b"tail\n")
LIT = b"".join(b"line %d is not in any basis, %s\n" % (i, b"abc" * (i % 7)) for i in range(60))
GOLDEN_FILES = [NEW1, LIT, LIT + b"!"]
# The token sequence rsync's sender chose for f0 (from its uncompressed run).
GOLDEN_SEQ0 = [0, NEW1[700:1700], 2, NEW1[2400:]]

GOLDEN = {
    ('zlib', 0): bytes.fromhex(
        "80404cecd4a11100200c04c156a084ff1a88c0202082fe2b810a98398f7c1175b3b917b8b97073e1e6c2cd85"
        "9b0b36ef63c5cc682563672d7f3ee67d57d887b10f631fc63e8c7d18fb30f661e8e30082405aecd6a10d8400"
        "000441fff55ceeea419220e93f5002e3bf805563f62dd83c6c1e360f9b87cdc3e661f3b079d9bc6c5e362f9b"
        "97cdcbe665f3b279d9bc6c3e361f9b8fcdc7e663f3b1f9d87c6c3e361f9bffdfe76b711fe7f57b0000"),
    ('zlib', 1): bytes.fromhex(
        "41048cd53b0ec2400c84e19e53ec012848781f2741142b45a1080db747885f8b6231b66b7f4534a3d94c75be"
        "975da94b991fcf52e732ccaf320e4b5db665337d8eddffe330debef75ede1bd97ba4a943a01a3cc6b0d953ca"
        "367ef692b804495ce3243a11b5f98c4e876ea51bbfc55111d68b4ab8ea1e006ef81891b8fd129dbd956e0b06"
        "f7511dd68b5eb8ea2e006efe986806b0c40890b90980a33aac17bd70d55df030b8f963a22dc0124340e65600"
        "4ebc4a2b2f7ae1aabb00b8f963a22dc01243e0e1cdad009c789a565ef4c255770170f3c7445b80258680ccad"
        "009c789a565ef4c2bf4d770170f3c7445b80258680ccad009cfb3fffbce885abee02e0e68f89b6b0790300"),
    ('zlib', 2): bytes.fromhex(
        "41058cd5bb0e82501084e19ea738f61682f7c701634142b0c0c6b737c63fc7b07176b7deaf203399c334cef7"
        "b22be352e6c7b38c73e9e75719fa655cb6a5993ec7f6ffb11f6edf7b27ef95ec3d52d52150151e6358ed2965"
        "2b3f7b495c8224ae7112ad88da7c46ab43b7d28ddfe2a808eb45255c750f00377c8c48dc7e89cede4ab70583"
        "bba80eeb452f5c751700377f4c3403586204c8dc04c0511dd68b5eb8ea2e7818dcfc31d11660892120732b00"
        "275ea59517bd70d55d00dcfc31d116608921f0f0e656004e3c4d2b2f7ae1aabb00b8f963a22dc0124340e656"
        "004e3c4d2b2f7ae1dfa6bb00b8f963a22dc0124340e65600cefd9f7f5ef4c255770170f3c7445b68366f0000"),
    ('zlibx', 0): bytes.fromhex(
        "80407832303034b15228c94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d024be72456"
        "552aa4e4a7731918189a92acc38c641de624ebb020598725693a3cfd825d83425c5d14425c2342141546b978"
        "b806064606a4c6879121c93a8c48d6614cb20e92f38711c9f9c388e4fc614462fe0000824062dcd5b1098000"
        "0c44d1de698284bb792c054bf7c7195eeb0aff91cbcc72abe556cbad965b2db75a6fc55bb2b82533e1fb08df"
        "47d83c6c1e360f9b87cdc3e661f3b079d9bc6c5e362f9b97cdcbe665f3b279d9bc6cfe97ff7172ab135bbdd7"
        "fd1c1f0000"),
    ('zstd', 0): bytes.fromhex(
        "80408928b52ffd00580404005405303031343a2074686520717569636b2062726f776e20666f78206a756d70"
        "73206f7665726c617a7920646f670a3030313536373839494e53455254454420544558542120303032303231"
        "32323233323430303232320f00804804d175a488c6c0c4810807221c887029444468c854ebc0144174828809"
        "22c1aae253b4ea09824081f40300e40330303432343330303434343438393630363136323633363436353636"
        "38363937303731373237333734373537363737373837393232323232327461696c0a2220e0f70c44627446cc"
        "488cce8815b5a256d48a5a512b6a45ada815b5a256d48a9a91280246b80817e1225c848bb08819c9d1193159"
        "247c89c6262e6a4400"),
    ('zstd', 1): bytes.fromhex(
        "40e82c070052c71415b0256de7c0088198ed4d0dd949e44e9912e3c2985524f1fefbbdbd3e4e12cfb75d9bcb"
        "c324f1fabaadb53a4a12cfee9ad9309278e55a1143299278778d184a11a0304519a8700a1d4384c1a1c2d0a0"
        "c0318256a831697cfddf6033b60d12708108588a80a10818822d8800650850884044028aa09a3e0fc6977493"
        "519a0fba69e8d0e83915af1b636ac82ba71a8fc04b214d851c2daca250b6774a582cf402895bfb267ab9a98e"
        "07e6c42d14d7706a5886f402c1e8622272f09ee9bdd1ac72a8daa04ae76e128cbebe8135b597dca4d4efed26"
        "d6c3d27c6578b90d63eb0000621500"),
    ('zstd', 2): bytes.fromhex(
        "40127c0000106c210300e95808f8f0470b58700500"),
}
# No blocks in f1, f2: rsync sent the same bytes for zlib and zlibx.
GOLDEN[("zlibx", 1)] = GOLDEN[("zlib", 1)]
GOLDEN[("zlibx", 2)] = GOLDEN[("zlib", 2)]


def _old_blocks():
    return [OLD1[i:i + BLEN] for i in range(0, len(OLD1), BLEN)]


def test_golden_sequence_matches_content():
    blocks = _old_blocks()
    rebuilt = b"".join(blocks[x] if isinstance(x, int) else x for x in GOLDEN_SEQ0)
    assert rebuilt == NEW1


@pytest.mark.parametrize("codec", ["zlib", "zlibx", "zstd"])
@pytest.mark.parametrize("step", [None, 1])
def test_decode_rsync_streams(codec, step):
    blocks = _old_blocks()
    dec = TokenDecoder(codec)
    for n, content in enumerate(GOLDEN_FILES):
        events, rest = decode_file(dec, GOLDEN[(codec, n)], blocks if n == 0 else None, step)
        assert rest == b""
        assert events[-1] is END
        rebuilt = b"".join(blocks[e] if isinstance(e, int) else e for e in events[:-1])
        assert rebuilt == content


@pytest.mark.parametrize("codec", ["zlib", "zlibx", "zstd"])
def test_encode_like_rsync(codec):
    blocks = _old_blocks()
    enc = TokenEncoder(codec)
    assert encode_file(enc, GOLDEN_SEQ0, blocks) == GOLDEN[(codec, 0)]
    assert encode_file(enc, [LIT], blocks) == GOLDEN[(codec, 1)]
    assert encode_file(enc, [LIT + b"!"], blocks) == GOLDEN[(codec, 2)]


def test_plain_encode_like_rsync():
    # rsync's uncompressed stream for f0 (same capture, no -z), rebuilt by hand.
    expect = (i32(-1) + i32(1000) + NEW1[700:1700] + i32(-3)
              + i32(len(NEW1) - 2400) + NEW1[2400:] + i32(0))
    assert encode_file(TokenEncoder(None), GOLDEN_SEQ0, _old_blocks()) == expect


@pytest.mark.parametrize("codec", CODECS)
def test_blocks_is_the_same_as_one_block_call_each(codec, blocks):
    """TokenEncoder.blocks (the sender's runs of consecutive matches) gives
    exactly the bytes of the block() calls it stands for, after literal
    data, across run limits and files."""
    rnd = random.Random(5)
    blocks = [b[:BLEN].ljust(BLEN, b"-") for b in blocks]
    nblocks = len(blocks)
    for _ in range(30):
        one, many = TokenEncoder(codec), TokenEncoder(codec)
        a = bytearray(one.begin_file())
        b = bytearray(many.begin_file())
        for _ in range(rnd.randint(1, 8)):
            if rnd.random() < 0.5:
                lit = rnd.randbytes(rnd.randint(1, 3000))
                a += one.literal(lit)
                b += many.literal(lit)
            first = rnd.randrange(nblocks)
            n = rnd.randint(1, nblocks - first)
            for i in range(first, first + n):
                a += one.block(i, blocks[i])
            run = b"".join(blocks[first:first + n]) if codec == "zlib" else None
            b += many.blocks(first, n, run, BLEN)
        a += one.end()
        b += many.end()
        assert bytes(a) == bytes(b)
    assert TokenEncoder(codec).blocks(3, 0) == b""


def test_blocks_runs_beyond_the_run_limit():
    one, many = TokenEncoder("zstd"), TokenEncoder("zstd")
    a = one.begin_file() + b"".join(one.block(i) for i in range(70_000)) + one.end()
    b = many.begin_file() + many.blocks(0, 70_000) + many.end()
    assert a == b


def test_blocks_refuses_bad_indices():
    with pytest.raises(ValueError):
        TokenEncoder(None).blocks(-1, 2)
    with pytest.raises(ValueError):
        TokenEncoder("zlib").blocks(0, 2)  # zlib needs the run's data


@pytest.mark.parametrize("codec", CODECS)
def test_take_run_hands_out_what_next_token_would(codec, blocks):
    """TokenDecoder.take_run (the receiver's batched run reads) takes the
    blocks of a run token that next_token would return one by one, and
    leaves the rest of the stream as it was."""
    rnd = random.Random(8)
    for _ in range(20):
        seq = random_file(rnd, len(blocks))
        wire = encode_file(TokenEncoder(codec), seq, blocks)
        one, _ = decode_file(TokenDecoder(codec), wire, blocks)
        dec = TokenDecoder(codec)
        buf = ReadBuffer(wire)
        got: list = []
        while True:
            tok = buf.attempt(dec.next_token)
            if tok is END:
                got.append(END)
                break
            if isinstance(tok, int):
                k = dec.take_run(rnd.choice((0, 1, 3, 1000)))
                if codec is None:
                    assert k == 0
                got.extend(range(tok, tok + k + 1))
                for i in range(tok, tok + k + 1):
                    dec.see_block(blocks[i])
            elif got and isinstance(got[-1], bytearray):
                got[-1] += tok
            else:
                got.append(bytearray(tok))
        assert [bytes(e) if isinstance(e, bytearray) else e for e in got] == \
            [bytes(e) if isinstance(e, bytearray) else e for e in one]


def test_take_blocks_takes_what_next_token_would(blocks):
    """TokenDecoder.take_blocks (the receiver's batched block tokens): the
    block indices at the front of the buffer, nothing else, leaving the
    decoder where that many next_token calls would; nothing compressed."""
    rnd = random.Random(12)
    for _ in range(30):
        seq = random_file(rnd, len(blocks))
        wire = encode_file(TokenEncoder(None), seq, None)
        one, _ = decode_file(TokenDecoder(None), wire)
        dec = TokenDecoder(None)
        buf = ReadBuffer(wire)
        got: list = []
        while True:
            ks = dec.take_blocks(buf, rnd.choice((1, 2, 7, 1000)))
            if ks:
                buf.commit()
                got.extend(ks)
                continue
            tok = buf.attempt(dec.next_token)
            if tok is END:
                got.append(END)
                break
            if isinstance(tok, int):
                got.append(tok)
            elif got and isinstance(got[-1], bytearray):
                got[-1] += tok
            else:
                got.append(bytearray(tok))
        assert [bytes(e) if isinstance(e, bytearray) else e for e in got] == \
            [bytes(e) if isinstance(e, bytearray) else e for e in one]
    # Compressed streams are left alone; a partial int32 is not taken.
    assert TokenDecoder("zstd").take_blocks(ReadBuffer(b"\xff" * 8), 10) == []
    assert TokenDecoder(None).take_blocks(ReadBuffer(b"\xff" * 7), 10) == [0]
    assert TokenDecoder(None).take_blocks(ReadBuffer(b"\xff" * 3), 10) == []
