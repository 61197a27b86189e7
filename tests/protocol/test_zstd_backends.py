"""zstd back ends of the token stream: the system libzstd through pysync's
native module (the default when it loads) and python-zstandard (the
fallback) must read each other's streams, and the native one must keep
rsync's framing whatever the sizes involved."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from pysync import native
from pysync.protocol.buffer import ProtocolError, ReadBuffer
from pysync.protocol.compress import OUT_CHUNK, ZstdCompressor, ZstdDecompressor, make_compressor
from pysync.protocol.constants import MSG_DATA
from pysync.protocol.handshake import decode_name_list, decode_version
from pysync.protocol.mux import Demux
from pysync.protocol.tokens import END, TokenDecoder, TokenEncoder

HAVE_NATIVE = native.zstd_version() > 0
needs_native = pytest.mark.skipif(not HAVE_NATIVE, reason="no system libzstd for pysync._native")
REPO = Path(__file__).resolve().parents[2]


def _runs(seed: int):
    """Literal runs of mixed kinds: random, repetitive, long zero runs, tiny."""
    rnd = random.Random(seed)
    runs = []
    for _ in range(12):
        kind = rnd.randrange(4)
        if kind == 0:
            runs.append(rnd.randbytes(rnd.randint(1, 400_000)))
        elif kind == 1:
            runs.append(b"words repeated over and over " * rnd.randint(1, 20_000))
        elif kind == 2:
            runs.append(b"\0" * rnd.randint(1, 3 << 20))
        else:
            runs.append(rnd.randbytes(rnd.randint(1, 10)))
    return runs


def _compress(comp, runs, piece=None) -> list:
    """One compressed blob per run (the bytes up to and including its flush)."""
    out = []
    for run in runs:
        step = piece or len(run)
        blob = b"".join(comp.compress(run[i:i + step]) for i in range(0, len(run), step))
        out.append(blob + comp.flush())
    return out


def _decompress(dec, blobs) -> list:
    out = []
    for blob in blobs:
        got = bytearray()
        # Records as the token stream carries them: at most 16383 bytes.
        for i in range(0, len(blob), 16383):
            dec.feed(blob[i:i + 16383])
            while True:
                piece = dec.pull()
                if not piece:
                    break
                assert len(piece) <= OUT_CHUNK
                got += piece
        out.append(bytes(got))
    return out


@needs_native
@pytest.mark.parametrize("seed", [1, 2])
def test_native_stream_reads_with_python_zstandard(seed):
    runs = _runs(seed)
    blobs = _compress(ZstdCompressor(3, backend="native"), runs)
    assert _decompress(ZstdDecompressor(backend="cffi"), blobs) == runs
    assert _decompress(ZstdDecompressor(backend="obj"), blobs) == runs


@needs_native
@pytest.mark.parametrize("seed", [3, 4])
def test_python_zstandard_stream_reads_with_native(seed):
    runs = _runs(seed)
    blobs = _compress(ZstdCompressor(3, backend="zstandard"), runs)
    assert _decompress(ZstdDecompressor(backend="native"), blobs) == runs


@needs_native
def test_native_output_does_not_depend_on_how_input_is_cut():
    # Several MiB in one call overflow the 128 KiB scratch buffer many times
    # over; the bytes must be those of the same data fed 4 KiB at a time.
    runs = _runs(5) + [random.Random(6).randbytes(3 << 20)]
    whole = _compress(ZstdCompressor(3, backend="native"), runs)
    pieces = _compress(ZstdCompressor(3, backend="native"), runs, piece=4096)
    assert whole == pieces
    assert _decompress(ZstdDecompressor(backend="native"), whole) == runs


@needs_native
def test_native_matches_python_zstandard_of_the_same_zstd_version():
    v = zstandard.ZSTD_VERSION
    if native.zstd_version() != v[0] * 10000 + v[1] * 100 + v[2]:
        # Other zstd versions may choose other (equally valid) encodings:
        # 1.5.4 and 1.5.7 cut a 200 KB incompressible run into blocks
        # differently at level 3, for one.
        pytest.skip("python-zstandard carries another zstd version")
    runs = _runs(7)
    for level in (1, 3, 9, -5):
        assert (_compress(ZstdCompressor(level, backend="native"), runs)
                == _compress(ZstdCompressor(level, backend="zstandard"), runs))


@needs_native
def test_native_levels_are_applied():
    text = b"".join(b"line %d of a text that compresses\n" % (i % 977) for i in range(40_000))
    sizes = {lv: len(_compress(ZstdCompressor(lv, backend="native"), [text])[0]) for lv in (-50, 3, 19)}
    assert sizes[-50] > sizes[3] > sizes[19]


@needs_native
def test_native_decoder_bounds_a_bomb():
    # 40 MiB of zeros compress to a few hundred bytes; out it comes in
    # OUT_CHUNK pieces, fed as one record.
    blob = _compress(ZstdCompressor(3, backend="native"), [b"\0" * (40 << 20)])[0]
    assert len(blob) < 16383
    dec = ZstdDecompressor(backend="native")
    dec.feed(blob)
    total = pieces = 0
    while True:
        piece = dec.pull()
        if not piece:
            break
        assert len(piece) <= OUT_CHUNK
        total += len(piece)
        pieces += 1
    assert total == 40 << 20 and pieces == (40 << 20) // OUT_CHUNK


@needs_native
def test_native_decoder_garbage_is_a_stream_error():
    dec = ZstdDecompressor(backend="native")
    dec.feed(bytes(range(7, 250, 3)) * 3)
    with pytest.raises(ProtocolError) as err:
        while dec.pull():
            pass
    assert err.value.code == 12
    assert str(err.value).startswith("ZSTD decomp returned Unknown frame descriptor (0 bytes)")


@pytest.mark.parametrize("backend", ["native", "zstandard"])
def test_token_stream_round_trip_per_backend(backend):
    if backend == "native" and not HAVE_NATIVE:
        pytest.skip("no system libzstd for pysync._native")
    rnd = random.Random(8)
    enc = TokenEncoder("zstd")
    enc._comp = ZstdCompressor(None, backend=backend)
    dec = TokenDecoder("zstd")
    files = []
    wire = bytearray()
    for f in range(3):
        seq = [rnd.randbytes(rnd.randint(1, 50_000)), 4, 5, 6, b"x" * 70_000, 9, rnd.randbytes(20)]
        files.append(seq)
        wire += enc.begin_file()
        for item in seq:
            wire += enc.block(item) if isinstance(item, int) else enc.literal(item)
        wire += enc.end()
    buf = ReadBuffer(bytes(wire))
    for seq in files:
        got = []
        while True:
            tok = buf.attempt(dec.next_token)
            if tok is END:
                break
            if isinstance(tok, bytes) and got and isinstance(got[-1], bytes):
                got[-1] += tok
            else:
                got.append(tok)
        assert got == seq
    assert buf.rest() == b""


def test_default_backend_is_native_when_available():
    comp = make_compressor("zstd")
    dec = ZstdDecompressor()
    if HAVE_NATIVE:
        assert isinstance(comp._z, native.ZstdCompress)
        assert type(dec._impl).__name__ == "_ZstdNativeStream"
    else:
        assert type(dec._impl).__name__ == "_ZstdCffiStream"


@needs_native
def test_zstd_transfer_does_not_import_python_zstandard(tmp_path):
    # The point of the native back end: neither side of an -e transfer
    # with zstd loads python-zstandard (or its cffi backend).
    probe = tmp_path / "probe.py"
    log = tmp_path / "mods.txt"
    probe.write_text(
        "import sys\n"
        "from pysync.cli import main\n"
        "code = main(sys.argv[2:])\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(' '.join(sorted(m for m in sys.modules if 'zstandard' in m)) + '|\\n')\n"
        "sys.exit(code)\n")
    src = tmp_path / "src"
    src.mkdir()
    data = random.Random(9).randbytes(300_000) + b"text " * 50_000
    (src / "f").write_bytes(data)
    dst = tmp_path / "dst"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    py = sys.executable
    r = subprocess.run(
        [py, str(probe), str(log), "-a", "-z", "--zc=zstd",
         "-e", f"{py} {REPO / 'interop' / 'fake_rsh.py'}",
         f"--rsync-path={py} {probe} {log}", f"{src}/", f"localhost:{dst}/"],
        env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (dst / "f").read_bytes() == data
    lines = log.read_text().splitlines()
    assert lines == ["|", "|"]


@needs_native
@pytest.mark.skipif(shutil.which("rsync") is None, reason="no stock rsync")
def test_token_stream_is_the_one_stock_rsync_sends(tmp_path):
    # Stock rsync pushes a new file with -z --zc=zstd through the recording
    # fake remote shell; the file's token stream as our encoder writes it
    # must be in rsync's data stream byte for byte (same libzstd, same
    # calls).  The data makes zstd 1.5.4 and 1.5.7 choose different blocks.
    data = b"\0" * 300_000 + random.Random(7).randbytes(200_000) + b"words " * 30_000
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(data)
    rec = tmp_path / "rec"
    env = dict(os.environ, FAKE_RSH_RECORD=str(rec))
    r = subprocess.run(
        ["rsync", "-a", "-z", "--zc=zstd", "-e", f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}",
         f"{src}/", f"localhost:{tmp_path / 'dst'}/"],
        env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dst" / "f").read_bytes() == data
    buf = ReadBuffer((rec / "c2s.bin").read_bytes())
    assert decode_version(buf) >= 31
    decode_name_list(buf)   # checksum names (an explicit --zc sends no compression list)
    demux = Demux()
    frames = demux.feed(buf.rest())
    stream = b"".join(p for t, p in frames if t == MSG_DATA)
    enc = TokenEncoder("zstd")
    enc._comp = ZstdCompressor(None, backend="native")
    ours = enc.begin_file() + enc.literal(data) + enc.end()
    assert len(ours) > 200_000
    assert ours in stream
