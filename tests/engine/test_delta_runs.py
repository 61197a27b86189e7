"""The sender's run check (matcher._block_run): a run of blocks found one
after another is handed on at once, and the token stream is byte for byte
the one the block-at-a-time search makes."""

from __future__ import annotations

import os
import random
import threading

import pytest

from pysync import native
from pysync.engine.matcher import MatchStats, send_delta
from pysync.protocol.checksums import get_checksum
from pysync.protocol.sums import sum_head_for
from pysync.protocol.tokens import TokenEncoder


def _sums(old: bytes, head, ck):
    blen = head.blength
    return [(native.weak_checksum(old[i * blen:(i + 1) * blen]),
             ck.block_sum(old[i * blen:(i + 1) * blen], 7)[:head.s2length])
            for i in range(head.count)]


def _tokens(new: bytes, head, sums, ck, codec, runs: bool):
    """(token stream bytes, calls made, literal, matched)."""
    enc = TokenEncoder(codec)
    out = [enc.begin_file()]
    calls = {"block": 0, "blocks": 0}

    def emit_literal(d):
        out.append(enc.literal(bytes(d)))

    def emit_block(i, d):
        calls["block"] += 1
        out.append(enc.block(i, bytes(d)))

    def emit_blocks(first, n, d):
        calls["blocks"] += 1
        assert len(d) == n * head.blength
        out.append(enc.blocks(first, n, bytes(d), head.blength))

    r, w = os.pipe()
    feeder = threading.Thread(target=lambda: (os.write(w, new), os.close(w)))
    feeder.start()
    stats = MatchStats()
    try:
        send_delta(r, head, sums, lambda d: ck.block_sum(d, 7), emit_literal, emit_block,
                   ck.file_hasher(), stats, emit_blocks=emit_blocks if runs else None)
    finally:
        feeder.join()
        os.close(r)
    out.append(enc.end())
    return b"".join(out), calls, stats.literal, stats.matched


def _cases(rnd: random.Random, old: bytes, blen: int):
    def noise(n):
        return rnd.randbytes(n)
    mid = len(old) // 2
    yield old                                                  # identical
    yield old[:mid] + noise(333) + old[mid + 333:]             # one change
    yield noise(5) + old                                       # shifted
    yield old[:mid] + old                                      # a run repeated
    yield old[3 * blen:] + old[:3 * blen]                      # rotated
    yield old[:-(blen // 2)]                                   # short last block lost
    new = bytearray(old)
    for _ in range(40):
        new[rnd.randrange(len(new))] ^= 0xA5
    yield bytes(new)                                           # scattered changes


@pytest.mark.parametrize("codec", [None, "zstd", "zlib"])
@pytest.mark.parametrize("name", ["md5", "xxh128"])
def test_runs_give_the_same_tokens(codec, name):
    rnd = random.Random(21)
    ck = get_checksum(name)
    blen = 700
    # Repeated blocks in the basis: the run must still name the block the
    # search names (the one after the last match), and reads of 1 MiB
    # split runs.
    unit = rnd.randbytes(40 * blen)
    old = unit + rnd.randbytes(1_600 * blen + 123) + unit
    head = sum_head_for(len(old), ck.digest_len, blen)
    sums = _sums(old, head, ck)
    for new in _cases(rnd, old, blen):
        a = _tokens(new, head, sums, ck, codec, runs=False)
        b = _tokens(new, head, sums, ck, codec, runs=True)
        assert a[0] == b[0]
        assert a[2:] == b[2:]
        assert a[1]["blocks"] == 0
    assert b[1]["blocks"] > 0 and b[1]["block"] < a[1]["block"]


def test_strong_sum_mismatch_stops_a_run():
    """A block whose weak sum matches but strong sum does not is no match,
    in a run as in the search (its bytes go as literal data)."""
    rnd = random.Random(4)
    ck = get_checksum("md5")
    blen = 512
    old = rnd.randbytes(300 * blen)
    head = sum_head_for(len(old), ck.digest_len, blen)
    sums = _sums(old, head, ck)
    bad = 150
    sums[bad] = (sums[bad][0], bytes(b ^ 0xFF for b in sums[bad][1]))
    a = _tokens(old, head, sums, ck, None, runs=False)
    b = _tokens(old, head, sums, ck, None, runs=True)
    assert a[0] == b[0]
    assert b[2] == blen                       # that block went as literal data
    assert b[1]["blocks"] >= 2


# ---- end to end, against stock rsync ---------------------------------------------

import subprocess        # noqa: E402
import sys               # noqa: E402
from pathlib import Path  # noqa: E402

from helpers.trees import compare_trees  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


def _delta_trees(top: Path, old: bytes, new: bytes):
    for side, data, t in (("src", new, T_NEW), ("dst", old, T_OLD)):
        p = top / side / "f.bin"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
        os.utime(p, (t, t))
        os.utime(p.parent, (T_OLD, T_OLD))


def _stat_lines(out: bytes):
    return [ln for ln in out.decode().splitlines()
            if ln.startswith(("Literal data", "Matched data", ">f", "Number of regular files"))]


@pytest.mark.parametrize("codec", ["none", "zstd", "zlib", "zlibx"])
@pytest.mark.parametrize("role", ["push-rsync2pysync", "push-pysync2rsync", "pull-pysync2rsync",
                                  "push-pysync2pysync"])
def test_delta_runs_match_rsync(tmp_path, codec, role):
    """A 3 MiB file with scattered changes and a moved part: runs of
    matched blocks on both sides (the sender's run check, the receiver's
    batched run reads, compressed or not) give rsync's tree, literal and
    matched byte counts, itemized line and exit code.  Roles are
    direction-client2server."""
    rnd = random.Random(17)
    old = rnd.randbytes(3 << 20)
    new = bytearray(old)
    for _ in range(12):
        o = rnd.randrange(len(new) - 5000)
        new[o:o + rnd.randint(1, 5000)] = rnd.randbytes(rnd.randint(1, 5000))
    new = bytes(new[:1 << 20]) + bytes(new[2 << 20:]) + bytes(new[1 << 20:2 << 20])
    opts = ["-a", "-i", "--no-W", "--stats"]
    if codec != "none":
        opts += ["-z", f"--compress-choice={codec}"]
    direction, pair = role.split("-")
    client_tool, server_tool = pair.split("2")
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _delta_trees(top, old, new)
        client = PYSYNC if tool == "pysync" and client_tool == "pysync" else ["rsync"]
        server = "pysync" if tool == "pysync" and server_tool == "pysync" else "rsync"
        remote = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        if direction == "push":
            args = [f"{top}/src/", f"localhost:{top}/dst/"]
        else:
            args = [f"localhost:{top}/src/", f"{top}/dst/"]
        r = subprocess.run(client + opts + remote + args, capture_output=True, timeout=120,
                           env={**os.environ, "PATH": f"{REPO / '.bin'}:{os.environ['PATH']}"})
        got[tool] = (r, top)
    (rr, rtop), (pr, ptop) = got["rsync"], got["pysync"]
    assert pr.returncode == rr.returncode == 0, pr.stderr.decode()
    assert (ptop / "dst" / "f.bin").read_bytes() == new
    assert compare_trees(ptop / "dst", rtop / "dst") == []
    assert _stat_lines(pr.stdout) == _stat_lines(rr.stdout)
    assert any(ln.startswith("Matched data") and not ln.startswith("Matched data: 0 ")
               for ln in _stat_lines(pr.stdout))


@pytest.mark.parametrize("drop_cache", [False, True])
def test_receiver_run_copy_into_the_sink_equals_the_read_path(tmp_path, drop_cache):
    """The receiver reads runs of basis blocks straight into the sink's
    staging buffer; the bytes, the hash and the zeros where the basis
    ends early (it changed under us) are those of a read then a write."""
    from pysync.engine.receiver import _Basis, _copy_run, _run_data, _staging_sink
    from pysync.io.sink import WriteMode, make_sink

    rnd = random.Random(3)
    blen, count, last_len = 1000, 40, 300
    full = rnd.randbytes((count - 1) * blen + last_len)
    (tmp_path / "basis").write_bytes(full[:25 * blen + 123])    # shrank since the sums
    runs = [(0, 9), (10, 10), (11, 30), (31, 39), (39, 39), (2, 5)]
    ck = get_checksum("xxh128")
    outs = []
    for direct in (False, True):
        bfd = os.open(tmp_path / "basis", os.O_RDONLY)
        basis = _Basis(bfd, drop_cache)
        path = tmp_path / f"out{direct}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        sink = make_sink(fd, -1, b"out", bytes(path), 0, WriteMode(chunk_bytes=8192))
        h = ck.file_hasher()
        assert _staging_sink(basis, sink) is sink
        for first, last in runs:
            if direct:
                n = _copy_run(basis, first, last, blen, count, last_len, sink, h)
            else:
                data = _run_data(basis, first, last, blen, count, last_len)
                h.update(data)
                sink.write(data)
                n = len(data)
            assert n == (last - first) * blen + (last_len if last == count - 1 else blen)
        sink.finish()
        os.close(fd)
        basis.close()
        outs.append((path.read_bytes(), h.digest()))
    assert outs[0] == outs[1]
    expect = b"".join(full[f * blen:l * blen + (last_len if l == count - 1 else blen)]
                      for f, l in runs)
    padded = (full[:25 * blen + 123] + bytes(len(full))) [:len(full)]
    expect_short = b"".join(padded[f * blen:l * blen + (last_len if l == count - 1 else blen)]
                            for f, l in runs)
    assert outs[0][0] == expect_short != expect


@pytest.mark.parametrize("write_behind", [True, False])
def test_buffered_sink_hands_large_files_to_writeback_early(tmp_path, monkeypatch, write_behind):
    """With a writer thread the buffered sink starts the writeback of each
    8 MiB written (sync_file_range WRITE); the file is the same, and a
    refusal of the call just stops asking."""
    from pysync.io import sink as sinkmod

    calls = []

    def record(fd, off, n, flags):
        calls.append((off, n, flags))
        if len(calls) == 3:
            raise OSError(38, "not here")

    monkeypatch.setattr(sinkmod.native, "sync_file_range", record)
    data = random.Random(1).randbytes(41 << 20)
    path = tmp_path / "out"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    s = sinkmod.make_sink(fd, -1, b"out", bytes(path), len(data),
                          sinkmod.WriteMode(write_behind=write_behind))
    for o in range(0, len(data), 300_000):
        s.write(data[o:o + 300_000])
    s.finish()
    os.close(fd)
    assert path.read_bytes() == data
    if write_behind:
        assert calls == [(0, 8 << 20, sinkmod.native.SYNC_FILE_RANGE_WRITE),
                         (8 << 20, 8 << 20, sinkmod.native.SYNC_FILE_RANGE_WRITE),
                         (16 << 20, 8 << 20, sinkmod.native.SYNC_FILE_RANGE_WRITE)]
    else:
        assert calls == []
