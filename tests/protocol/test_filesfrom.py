"""The forwarded --files-from stream (SPEC.md §5.1): our encoder against
the bytes a stock rsync client sends, and the decoder fed byte by byte."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pysync.protocol.buffer import NeedMore, ProtocolError, ReadBuffer
from pysync.protocol.filesfrom import decode_files_from_name, encode_files_from, split_names
from pysync.protocol.mux import encode_data

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("data,from0,wire", [
    (b"top\nx\n", False, b"top\0x\0\0"),
    (b"top\r\n\n\nx", False, b"top\0x\0\0"),
    (b"", False, b"\0"),
    (b"\n\n", False, b"\0"),
    (b"a b\0c\nd\0\0", True, b"a b\0c\nd\0\0"),
    (b"# not a comment here\n", False, b"# not a comment here\0\0"),
])
def test_encode(data, from0, wire):
    assert encode_files_from(data, from0) == wire


def test_decode_byte_by_byte():
    stream = encode_files_from(b"a/b\nsp ace\nz\n", False) + b"after"
    buf = ReadBuffer()
    names = []
    for i in range(len(stream)):
        buf.feed(stream[i:i + 1])
        try:
            while True:
                name = buf.attempt(decode_files_from_name)
                names.append(name)
                if name is None:
                    raise NeedMore
        except NeedMore:
            if names and names[-1] is None:
                break
    assert names == [b"a/b", b"sp ace", b"z", None]
    assert buf.rest() == b""          # "after" was never fed: the end came first


def test_overlong_name_is_refused():
    buf = ReadBuffer(b"x" * 5000)
    with pytest.raises(ProtocolError):
        decode_files_from_name(buf)
    assert split_names(b"a\r\nb", False) == [b"a", b"b"]


def test_matches_what_stock_rsync_forwards(tmp_path):
    """Record the client-to-server bytes of ``rsync --files-from=LIST
    host:src/ dst/`` and find our encoding of LIST in them."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "top").write_text("t")
    listing = b"top\r\nmissing one\n\n#c\n"
    (tmp_path / "list").write_bytes(listing)
    rec = tmp_path / "rec"
    rec.mkdir()
    env = dict(os.environ, FAKE_RSH_RECORD=str(rec))
    rsh = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
    subprocess.run(["rsync", "-a", f"--files-from={tmp_path}/list", "-e", rsh,
                    f"localhost:{tmp_path}/src/", f"{tmp_path}/dst/"],
                   capture_output=True, timeout=60, env=env)
    c2s = (rec / "c2s.bin").read_bytes()
    assert encode_files_from(listing, False) == b"top\0missing one\0#c\0\0"
    # After the empty filter list (its own frame): the names as rsync read
    # them, then the end marker once its read hits end of file.
    ours = encode_files_from(listing, False)
    assert (encode_data(b"\0\0\0\0") + encode_data(ours[:-1]) + encode_data(ours[-1:])) in c2s
