"""pysync.sync(): the command line's options as keywords; statistics and
per-file records checked against the files actually moved."""

import os
import sys
import threading
from pathlib import Path

import pytest

import pysync
from helpers.trees import compare_trees

REPO = Path(__file__).resolve().parents[1]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"


def make_src(root: Path) -> Path:
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (src / "skip.o").write_bytes(b"obj")
    os.symlink("a.txt", src / "link")
    # Directory times in the past: rsync (and pysync, like it) treats times
    # within the same second as equal.
    for d in (src / "sub", src):
        os.utime(d, (1_600_000_000, 1_600_000_000))
    return src


def test_sync_copies_and_reports(tmp_path):
    src = make_src(tmp_path)
    r = pysync.sync(f"{src}/", tmp_path / "dst", archive=True)
    assert r.exit_code == 0
    assert compare_trees(src, tmp_path / "dst") == []
    moved = {f.name: f for f in r.files if f.action == "transfer"}
    assert set(moved) == {"a.txt", "sub/b.bin", "skip.o"}
    assert moved["sub/b.bin"].bytes == 10240
    assert moved["a.txt"].itemize == ">f+++++++++"
    assert r.stats["num_regular_files_transferred"] == 3
    assert r.stats["total_transferred_file_size"] == 6 + 10240 + 3
    assert r.stats["literal_data"] == 6 + 10240 + 3
    assert r.stats["num_files"] == 6           # ., a.txt, link, skip.o, sub, sub/b.bin


def test_second_run_moves_nothing_and_changes_are_counted(tmp_path):
    src = make_src(tmp_path)
    pysync.sync(f"{src}/", tmp_path / "dst", archive=True)
    r = pysync.sync(f"{src}/", tmp_path / "dst", archive=True)
    assert r.stats["num_regular_files_transferred"] == 0
    assert [f for f in r.files if f.action == "transfer"] == []
    (src / "a.txt").write_bytes(b"changed content\n")
    r = pysync.sync(f"{src}/", tmp_path / "dst", archive=True)
    assert [f.name for f in r.files if f.action == "transfer"] == ["a.txt"]
    assert r.stats["total_transferred_file_size"] == 16


def test_keywords_mirror_long_options(tmp_path):
    src = make_src(tmp_path)
    dst = tmp_path / "dst"
    (dst / "extra").mkdir(parents=True)
    r = pysync.sync(f"{src}/", dst, archive=True, delete=True, exclude=["*.o"],
                    checksum_choice="xxh3")
    assert not (dst / "skip.o").exists()
    assert not (dst / "extra").exists()
    deleted = [f.name for f in r.files if f.action == "delete"]
    assert deleted == ["extra/"]
    assert r.stats["num_deleted_files"] == 1


def test_failure_raises_with_rsync_code(tmp_path):
    src = make_src(tmp_path)
    with pytest.raises(pysync.SyncError) as ei:
        pysync.sync([f"{src}/", str(tmp_path / "missing")], tmp_path / "dst", archive=True)
    assert ei.value.code == 23
    assert ei.value.result is not None
    assert any("link_stat" in line for line in ei.value.result.errors)
    assert (tmp_path / "dst" / "a.txt").exists()   # the rest was still copied


def test_unknown_keyword_is_code_1(tmp_path):
    with pytest.raises(pysync.SyncError) as ei:
        pysync.sync("a", "b", frobnicate=True)
    assert ei.value.code == 1


def test_progress_callback_sees_every_file(tmp_path):
    src = make_src(tmp_path)
    events = []
    pysync.sync(f"{src}/", tmp_path / "dst", archive=True, progress=events.append)
    finished = {e.name: e for e in events if e.finished}
    assert set(finished) == {"a.txt", "sub/b.bin", "skip.o"}
    assert finished["sub/b.bin"].bytes_done == finished["sub/b.bin"].size == 10240


def test_works_from_a_threaded_program_and_over_rsh(tmp_path):
    src = make_src(tmp_path)
    out = {}

    def job():
        out["r"] = pysync.sync(f"{src}/", f"localhost:{tmp_path}/dst/", archive=True,
                               rsh=FAKE_RSH, rsync_path="rsync")
    t = threading.Thread(target=job)
    t.start()
    t.join(120)
    assert out["r"].exit_code == 0
    assert compare_trees(src, tmp_path / "dst") == []


def test_repeatable_and_directory_options_from_keywords(tmp_path):
    """link_dest (one path or a list) and chmod reach the transfer: an
    unchanged file is hard-linked to the --link-dest copy, modes follow
    --chmod; an option the API cannot take is refused, not ignored."""
    src = make_src(tmp_path)
    prev = tmp_path / "prev"
    assert pysync.sync(f"{src}/", prev, archive=True).exit_code == 0
    r = pysync.sync(f"{src}/", tmp_path / "dst", archive=True, link_dest=[str(prev)],
                    chmod="Fgo-rwx")
    assert r.exit_code == 0
    a, b = tmp_path / "dst" / "a.txt", prev / "a.txt"
    assert os.stat(a).st_ino != os.stat(b).st_ino      # modes differ: not linked
    assert os.stat(a).st_mode & 0o077 == 0
    r = pysync.sync(f"{src}/", tmp_path / "dst2", archive=True, link_dest=prev)
    assert os.stat(tmp_path / "dst2" / "a.txt").st_ino == os.stat(b).st_ino
    with pytest.raises(pysync.SyncError):
        pysync.sync(f"{src}/", tmp_path / "dst3", F=1)
