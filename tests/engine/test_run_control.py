"""Run control: --timeout, signals, delete timing, pattern files.
Each compares with what stock rsync does on the same input where rsync
can run the same case."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.trees import compare_trees

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=120, **kw)


def make_src(root: Path) -> Path:
    src = root / "src"
    (src / "d").mkdir(parents=True)
    (src / "a").write_bytes(b"a" * 100)
    (src / "d" / "b").write_bytes(b"b" * 5000)
    (src / "skip.tmp").write_bytes(b"tmp")
    # Whole-second times in the past: rsync (and pysync, like it) treats
    # times within the same second as equal.
    for p in (src / "d" / "b", src / "a", src / "skip.tmp", src / "d", src):
        os.utime(p, (1_600_000_000, 1_600_000_000))
    return src


def test_timeout_ends_a_silent_peer_with_code_30(tmp_path):
    src = make_src(tmp_path)
    err = tmp_path / "err"
    t0 = time.monotonic()
    with open(err, "wb") as ef:
        # stderr to a file: the remote's sleep keeps a pipe open after we exit
        p = subprocess.Popen(PYSYNC + ["-a", "--timeout=2", "-e", FAKE_RSH,
                                       "--rsync-path=sleep 30; rsync",
                                       f"{src}/", f"localhost:{tmp_path}/dst/"], stderr=ef)
        code = p.wait(timeout=60)
    assert code == 30, err.read_bytes()
    assert time.monotonic() - t0 < 15
    assert b"timeout" in err.read_bytes()


def test_sigterm_mid_transfer_exits_20_and_leaves_no_temp(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big", "wb") as f:
        f.write(os.urandom(1 << 20) * 64)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "big").write_bytes(b"old content")
    # --bwlimit keeps the copy going for seconds (and streamed, not a
    # kernel copy that can finish between two polls on a busy machine).
    p = subprocess.Popen(PYSYNC + ["-a", "--bwlimit=8m", f"{src}/", f"{dst}/"], stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith(".big.") for n in os.listdir(dst)):
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 20, err
    assert [n for n in os.listdir(dst) if n.startswith(".")] == []
    assert (dst / "big").read_bytes() == b"old content"


@pytest.mark.parametrize("mode", ["--delete", "--delete-before", "--delete-during",
                                  "--delete-delay", "--delete-after"])
def test_delete_modes_match_rsync(tmp_path, mode):
    src = make_src(tmp_path)
    results = {}
    for tool, cmd in (("rsync", ["rsync"]), ("pysync", PYSYNC)):
        dst = tmp_path / f"dst-{tool}"
        (dst / "gone" / "deep").mkdir(parents=True)
        (dst / "gone" / "deep" / "f").write_bytes(b"x")
        (dst / "old").write_bytes(b"x")
        (dst / "d").mkdir()
        (dst / "d" / "stale").write_bytes(b"x")
        r = run(cmd + ["-a", mode, f"{src}/", f"{dst}/"])
        results[tool] = (r.returncode, dst)
    assert results["pysync"][0] == results["rsync"][0] == 0
    assert compare_trees(results["pysync"][1], results["rsync"][1]) == []
    assert os.stat(results["pysync"][1]).st_mtime_ns == os.stat(src).st_mtime_ns


def test_exclude_from_file_matches_rsync(tmp_path):
    src = make_src(tmp_path)
    pat = tmp_path / "pats"
    pat.write_text("# comment\n; another\n\n*.tmp\nd/\n")
    dsts = {}
    for tool, cmd in (("rsync", ["rsync"]), ("pysync", PYSYNC)):
        dst = tmp_path / f"dst-{tool}"
        r = run(cmd + ["-a", f"--exclude-from={pat}", f"{src}/", f"{dst}/"])
        assert r.returncode == 0, r.stderr
        dsts[tool] = dst
    assert compare_trees(dsts["pysync"], dsts["rsync"]) == []
    assert os.stat(dsts["pysync"]).st_mtime_ns == os.stat(src).st_mtime_ns
    assert not (dsts["pysync"] / "skip.tmp").exists()
