"""DestTree's directory fds under two threads (the generator and the
receiver use one tree at once): one thread's lookups never close an fd
the other holds, and forgetting a directory reaches every thread without
closing another thread's fd under it."""

from __future__ import annotations

import os
import threading

import pytest

from pysync.io.tree import _MAX_CACHED, DestTree


def _other_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_lookups_in_one_thread_never_close_the_others_fd(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(_MAX_CACHED * 2):
        (tmp_path / f"z{i:03d}").mkdir()
    tree = DestTree(os.fsencode(tmp_path))
    try:
        held = tree.dir_fd(b"a")            # the receiver, writing a file in a/
        ino = os.fstat(held).st_ino

        def walk():                         # the generator, far ahead
            for i in range(_MAX_CACHED * 2):
                tree.dir_fd(f"z{i:03d}".encode())
        _other_thread(walk)
        # Still open, and still a/ (not a number handed out again).
        assert os.fstat(held).st_ino == ino == os.stat(tmp_path / "a").st_ino
        assert tree.dir_fd(b"a") == held
    finally:
        tree.close()


def test_forget_reaches_every_thread_and_closes_later(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    tree = DestTree(os.fsencode(tmp_path))
    try:
        theirs = _other_thread(lambda: tree.dir_fd(b"d/sub"))
        mine = tree.dir_fd(b"d/sub")
        assert mine != theirs
        tree.forget(b"d")
        os.fstat(theirs)                    # not closed under the other thread yet
        with pytest.raises(OSError):
            os.fstat(mine)                  # this thread's own: closed at once
    finally:
        tree.close()
    with pytest.raises(OSError):
        os.fstat(theirs)


def test_the_root_is_located_by_its_own_fd_not_the_working_directory(tmp_path, monkeypatch):
    """locate(".") must name the destination itself: a chmod, chown or
    utime made with it never reaches the directory the process runs in
    (it did: the root's early permissions went to the working directory)."""
    root, cwd = tmp_path / "dst", tmp_path / "cwd"
    root.mkdir(mode=0o755)
    cwd.mkdir(mode=0o755)
    monkeypatch.chdir(cwd)
    tree = DestTree(os.fsencode(root))
    try:
        dfd, base = tree.locate(b".")
        os.chmod(base, 0o700, dir_fd=dfd)
        os.utime(base, (1_600_000_000, 1_600_000_000), dir_fd=dfd)
    finally:
        tree.close()
    assert (root.stat().st_mode & 0o777, root.stat().st_mtime) == (0o700, 1_600_000_000)
    assert cwd.stat().st_mode & 0o777 == 0o755 and cwd.stat().st_mtime != 1_600_000_000
