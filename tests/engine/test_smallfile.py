"""The receiver's small-file path: its one-read decoder takes exactly the
bytes the general token reader would, and leaves anything unusual to it;
end to end, small files copy as rsync copies them."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from pysync.engine.smallfile import read_head_and_data
from pysync.protocol.buffer import NeedMore, ReadBuffer
from pysync.protocol.sums import SumHead, decode_sum_head, encode_sum_head
from pysync.protocol.tokens import END, TokenDecoder, TokenEncoder

DIGEST = 16
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def whole(data: bytes, digest: bytes = b"D" * DIGEST) -> bytes:
    enc = TokenEncoder(None)
    enc.begin_file()
    return (encode_sum_head(SumHead(0, 0, 0, 0)) + b"".join(bytes(p) for p in enc.literal_iov(data))
            + enc.end() + digest)


@pytest.mark.parametrize("size", [0, 1, 4095, 32 * 1024, 32 * 1024 + 1, 100_000])
def test_whole_file_in_one_read(size):
    data = os.urandom(size)
    wire = whole(data) + b"NEXT"
    buf = ReadBuffer(wire)
    head, got, digest = buf.attempt(read_head_and_data, DIGEST, 256 * 1024)
    assert head.count == 0 and got == data and digest == b"D" * DIGEST
    assert buf.rest() == b"NEXT"


def test_short_buffer_waits_and_consumes_nothing():
    wire = whole(b"x" * 5000)
    for cut in (3, 16, 20, 200, len(wire) - 1):
        buf = ReadBuffer(wire[:cut])
        with pytest.raises(NeedMore):
            buf.attempt(read_head_and_data, DIGEST, 256 * 1024)
        assert len(buf) == cut
        buf.feed(wire[cut:])
        assert buf.attempt(read_head_and_data, DIGEST, 256 * 1024)[1] == b"x" * 5000


@pytest.mark.parametrize("tokens", [
    [i32(3) + b"abc", i32(-1), i32(0)],          # a block reference (count 0: invalid)
    [i32(-5)],
    [i32(201) + b"y" * 201, i32(0)],             # more than the limit
    [i32(100) + b"y" * 100, i32(101) + b"z" * 101, i32(0)],
])
def test_anything_else_is_left_to_the_token_reader(tokens):
    """Only the head is consumed: the general reader sees every token."""
    rest = b"".join(tokens) + b"D" * DIGEST
    buf = ReadBuffer(encode_sum_head(SumHead(0, 0, 0, 0)) + rest)
    head, got, digest = buf.attempt(read_head_and_data, DIGEST, 200)
    assert got is None and digest is None
    assert buf.rest() == rest


def test_delta_heads_are_left_alone():
    head = SumHead(3, 700, 16, 100)
    rest = i32(-1) + i32(0)
    buf = ReadBuffer(encode_sum_head(head) + rest)
    got_head, got, _ = buf.attempt(read_head_and_data, DIGEST, 256 * 1024)
    assert got_head.count == 3 and got is None
    assert buf.rest() == rest


def test_same_bytes_as_the_token_reader():
    """What the general decoder reads token by token, the one-read decoder
    reads at once, from the same stream position to the same end."""
    data = os.urandom(70_000)
    wire = whole(data)
    buf = ReadBuffer(wire)
    buf.attempt(decode_sum_head, DIGEST)
    dec = TokenDecoder(None)
    dec.begin_file()
    out = b""
    while True:
        tok = buf.attempt(dec.next_token)
        if tok is END:
            break
        out += tok
    assert out == data and buf.rest() == b"D" * DIGEST


def _run(cmd, cwd=None):
    return subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=120)


def _tree(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for f in files + dirs:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            data = open(p, "rb").read() if os.path.isfile(p) else None
            out[rel] = (st.st_mode, st.st_size, st.st_mtime_ns // 10**9, data)
    return out


@pytest.mark.parametrize("client,server,how,opts", [
    ("pysync", None, "local", []),
    ("pysync", "rsync", "pull", []),     # pysync receives from rsync
    ("rsync", "pysync", "push", []),     # pysync's server receives
    ("pysync", "rsync", "push", []),     # pysync sends
    ("rsync", "pysync", "pull", []),     # pysync's server sends
    ("pysync", None, "local", ["-z"]),
    ("pysync", "rsync", "push", ["-z"]),
    ("pysync", "rsync", "pull", ["--partial"]),
])
def test_small_files_as_rsync(tmp_path, client, server, how, opts):
    """A tree of small files (empty, one record, several records, at and
    over the small-file limit) and a changed one (delta): the same tree,
    itemize output and exit code as rsync."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    sizes = [0, 1, 100, 32 * 1024, 32 * 1024 + 7, 256 * 1024, 256 * 1024 + 1, 300_000]
    for i, n in enumerate(sizes):
        (src / "d" / f"f{i}").write_bytes(os.urandom(n))
        os.chmod(src / "d" / f"f{i}", 0o640 + (i % 2) * 0o100)
    (src / "changed").write_bytes(b"a" * 50_000)
    results = {}
    for tool in ("rsync", "pysync"):
        dst = tmp_path / f"dst-{tool}"
        dst.mkdir()
        (dst / "changed").write_bytes(b"a" * 40_000 + b"b" * 10_000)
        os.utime(dst / "changed", (1_000_000_000, 1_000_000_000))
        os.utime(dst, (1_000_000_000, 1_000_000_000))
        if how == "local":
            cmd = [tool, "-ai", *opts, f"{src}/", f"{dst}/"]
        else:
            c, s = (client, server) if tool == "pysync" else ("rsync", "rsync")
            cmd = [c, "-ai", *opts, "-e", f"{sys.executable} {REPO}/interop/fake_rsh.py",
                   f"--rsync-path={s}"]
            cmd += [f"{src}/", f"localhost:{dst}/"] if how == "push" else \
                [f"localhost:{src}/", f"{dst}/"]
        r = _run(cmd)
        results[tool] = (r.returncode, sorted(r.stdout.decode().splitlines()), _tree(dst))
        assert r.returncode == 0, r.stderr
    assert results["pysync"] == results["rsync"]
    assert results["pysync"][2] == _tree(src)
