"""--remove-source-files (issue #7), run by pysync and by stock rsync on the
same trees in every role: the source tree afterwards, the destination
tree, the -i / -vv output and the exit code must be the same."""

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.roles import FAKE_RSH, PYSYNC, REPO, ROLES, fix_dirs, lines, popen, put, run
from helpers.trees import compare_trees
from pysync.protocol.constants import MSG_SUCCESS
from pysync.protocol.mux import Demux, decode_success

T_OLD, T_NEW, T_TOUCH = 1_600_000_000, 1_700_000_000, 1_650_000_000


def make_src(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"new content, longer\n", T_NEW)
    put(root, "new.txt", b"only in the source\n", T_NEW)
    put(root, "big.bin", random.Random(7).randbytes(200_000), T_NEW)
    put(root, "d/inner.txt", b"inner new\n", T_NEW)
    put(root, "d/deeper/leaf.txt", b"leaf\n", T_NEW)
    put(root, "hl1", b"linked twice\n", T_NEW)
    os.link(root / "hl1", root / "hl2")
    os.symlink("new.txt", root / "link")
    (root / "emptydir").mkdir()
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"old content\n", T_OLD)
    put(root, "d/inner.txt", b"inner old\n", T_OLD)
    fix_dirs(root, T_OLD)


def removal_lines(out: bytes) -> list:
    """The sender's removal reports; their order against the other lines
    depends on timing in rsync too, so they are compared as a sorted list."""
    return sorted(l for l in lines(out) if l.startswith("sender ") or "sender remove" in l)


CASES = {
    "itemize": ["-ai", "--remove-source-files"],
    "verbose2": ["-avv", "--remove-source-files"],
    "hard-links": ["-aiH", "--remove-source-files"],
    "max-size": ["-ai", "--remove-source-files", "--max-size=1k"],
    "dry-run": ["-ain", "--remove-source-files"],
    "delay-updates": ["-ai", "--remove-source-files", "--delay-updates"],
}


def both(tmp_path, role, opts, prepare_dst=make_dst):
    out = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        make_src(top / "src")
        prepare_dst(top / "dst")
        out[tool] = (run(tool, role, opts, top / "src", top / "dst", cwd=top), top)
    return out


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_remove_source_files_matches_rsync(tmp_path, case, role):
    opts = CASES[case]
    res = both(tmp_path, role, opts)
    (rr, rtop), (pr, ptop) = res["rsync"], res["pysync"]
    assert pr.returncode == rr.returncode == 0, (pr.stderr.decode(), rr.stderr.decode())
    # Removing files changes the source directories' times: those differ.
    assert compare_trees(ptop / "src", rtop / "src", dir_times=False) == []
    assert compare_trees(ptop / "dst", rtop / "dst") == []
    if case == "verbose2":
        assert removal_lines(pr.stdout) == removal_lines(rr.stdout)
        assert len(removal_lines(pr.stdout)) == 9
    else:
        assert lines(pr.stdout) == lines(rr.stdout)
    assert lines(pr.stderr) == lines(rr.stderr)
    left = sorted(str(p.relative_to(ptop / "src")) for p in (ptop / "src").rglob("*"))
    if case == "dry-run":
        assert "same.txt" in left and "hl2" in left
    elif case == "max-size":
        assert left == ["big.bin", "d", "d/deeper", "emptydir"]
    else:
        assert left == ["d", "d/deeper", "emptydir"]      # directories are never removed


@pytest.mark.parametrize("role", ROLES)
def test_file_changed_after_listing_is_kept(tmp_path, role):
    """A source file whose mtime changes while it is being sent is not
    removed: rsync's "Skipping sender remove for changed file", exit 23."""
    out = {}
    big = bytes(64 << 20)
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "a.txt", b"small\n", T_NEW)
        put(src, "zz-big.bin", big, T_NEW)
        dst.mkdir(parents=True)
        p = popen(tool, role, ["-a", "--remove-source-files"], src, dst, cwd=top)
        touched = threading.Event()

        def touch_when_sending():
            # The receiver's temp file exists: the file was listed long ago
            # and its data is on the way.  Change its mtime now.
            while p.poll() is None:
                if any(n.startswith(".zz-big.bin.") for n in os.listdir(dst)):
                    os.utime(src / "zz-big.bin", (T_TOUCH, T_TOUCH))
                    touched.set()
                    return
                time.sleep(0.001)
        t = threading.Thread(target=touch_when_sending)
        t.start()
        stdout, stderr = p.communicate(timeout=120)
        t.join()
        assert touched.is_set(), f"{tool}: the transfer ended before the file could be touched"
        out[tool] = (p.returncode, lines(stdout), lines(stderr), top)
    (rc_r, out_r, err_r, rtop), (rc_p, out_p, err_p, ptop) = out["rsync"], out["pysync"]
    assert rc_p == rc_r == 23
    assert err_p == err_r == ["ERROR: Skipping sender remove for changed file: zz-big.bin"]
    assert out_p == out_r
    assert compare_trees(ptop / "src", rtop / "src", dir_times=False) == []
    assert sorted(os.listdir(ptop / "src")) == ["zz-big.bin"]
    assert os.stat(ptop / "src" / "zz-big.bin").st_mtime == T_TOUCH
    assert compare_trees(ptop / "dst", rtop / "dst", dir_times=False) == []


def test_same_source_and_destination_keeps_the_files(tmp_path):
    """A local copy of a directory onto itself: the receiver's file is the
    source file, so the sender must not remove it (rsync >= 3.2.6)."""
    out = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        make_src(top / "src")
        r = run(tool, "local", ["-a", "--remove-source-files"], top / "src", top / "src")
        out[tool] = (r, top)
    (rr, rtop), (pr, ptop) = out["rsync"], out["pysync"]
    assert pr.returncode == rr.returncode == 23
    assert sorted(lines(pr.stderr)) == sorted(lines(rr.stderr))
    assert "ERROR: Skipping sender remove of destination file: same.txt" in lines(pr.stderr)
    assert compare_trees(ptop / "src", rtop / "src", dir_times=False) == []
    assert (ptop / "src" / "same.txt").exists()


@pytest.mark.parametrize("scenario, code, wanted", [("ok", 0, [1]), ("digest_mismatch", 23, [])])
def test_no_success_for_a_file_that_failed_verification(tmp_path, scenario, code, wanted):
    """Against the scripted sender of tests/hostile: a file whose whole-file
    checksum is wrong in phase 0 and in the redo is never reported as
    arrived (no MSG_SUCCESS, so a sender would keep it); a good one is."""
    dst, rec = tmp_path / "dst", tmp_path / "rec"
    put(dst, "f", b"OLD CONTENT\n", T_OLD)
    rec.mkdir()
    evil = REPO / "tests" / "hostile" / "evil_peer.py"
    env = {**os.environ, "FAKE_RSH_RECORD": str(rec), "EVIL_LOG": str(tmp_path / "log"),
           "EVIL_OUTSIDE": str(tmp_path / "outside")}
    r = subprocess.run(PYSYNC + ["-a", "--remove-source-files", "-e", FAKE_RSH,
                                 f"--rsync-path={sys.executable} {evil} {scenario}",
                                 "localhost:/src/", f"{dst}/"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == code, r.stderr.decode()
    c2s = (rec / "c2s.bin").read_bytes()
    pos = 4 + 1 + c2s[4]            # our version, then the checksum list (a short vstring)
    frames = Demux().feed(c2s[pos:])
    assert [decode_success(p)[0] for tag, p in frames if tag == MSG_SUCCESS] == wanted


def test_success_before_the_sender_sorted_its_list_is_not_lost(tmp_path):
    """The receiving side may answer as soon as it has the list (an up to
    date file), before the sender has sorted its own copy: the report waits
    for the list instead of being dropped."""
    from pysync.engine.remove import SourceRemover
    from pysync.protocol.flist import FileEntry
    p = put(tmp_path / "src", "f", b"data\n", T_NEW)
    st = os.lstat(p)
    e = FileEntry(b"f", st.st_mode, st.st_size, *divmod(st.st_mtime_ns, 1_000_000_000))
    e.src = os.fsencode(p)
    said = []
    r = SourceRemover(2, said.append, said.append)
    r.success(0)
    r.catch_up()
    assert p.exists() and said == []
    r.set_flist([e])
    r.catch_up()
    assert not p.exists() and said == ["sender removed f"] and not r.failed


def test_success_waits_until_the_sender_has_read_up_to_it(tmp_path):
    """A MSG_SUCCESS acts where it stands in the data stream: the file goes
    only once the sender has consumed the data that came before it."""
    from pysync.engine.remove import SourceRemover
    from pysync.protocol.flist import FileEntry
    p = put(tmp_path / "src", "f", b"data\n", T_NEW)
    st = os.lstat(p)
    e = FileEntry(b"f", st.st_mode, st.st_size, *divmod(st.st_mtime_ns, 1_000_000_000))
    e.src = os.fsencode(p)
    consumed = [0]
    r = SourceRemover(0, print, print, position=lambda: 100, consumed=lambda: consumed[0])
    r.set_flist([e])
    r.success(0)
    consumed[0] = 99
    r.catch_up()
    assert p.exists()
    consumed[0] = 100
    r.catch_up()
    assert not p.exists()


def _followed_links(root: Path, kind: str):
    """Sources -L reaches twice or through a symlink: a file and a symlink
    to it (-H: one inode, listed twice), or a directory and a symlink to it
    (its file listed under both names)."""
    put(root, "a/f", b"data in a\n", T_NEW)
    put(root, "z", b"the last file\n", T_NEW)
    if kind == "file":
        os.symlink("a/f", root / "l")
    else:
        os.symlink("a", root / "l")
    fix_dirs(root, T_OLD)


@pytest.mark.parametrize("opts", [["-ai", "-L"], ["-ai", "-L", "-H"], ["-ai", "-L", "-b"]])
@pytest.mark.parametrize("kind", ["file", "dir"])
@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "pull-rsync2pysync"])
def test_followed_symlinks_are_removed_as_rsync(tmp_path, role, kind, opts):
    """With -L the sender checks a listed symlink by what it points to and
    removes the symlink, reaches a file below a symlinked directory through
    it, and acts on a MSG_SUCCESS only where its reading gets to it, so a
    file listed a second time is sent before the first removal makes it
    "sender file already removed" (interop/fuzz.py seed 5 cases 205, 221)."""
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        _followed_links(top / "src", kind)
        (top / "dst").mkdir()
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = run(tool, role, opts + ["--remove-source-files"] + extra, top / "src", top / "dst")
        results[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)))
    assert results["pysync"] == results["rsync"]
    assert compare_trees(tmp_path / "pysync" / "src", tmp_path / "rsync" / "src",
                         dir_times=False) == []
    assert compare_trees(tmp_path / "pysync" / "dst", tmp_path / "rsync" / "dst",
                         dir_times=False) == []
