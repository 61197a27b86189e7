"""The options backup scripts use (issue: scripted remote backups), each
run by pysync and by stock rsync on the same trees: same resulting tree,
same itemized output, same exit code; locally and over a remote shell in
both roles (pysync client -> rsync server, rsync client -> pysync server)."""

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.interrupt import kill_mid_file
from helpers.trees import compare_trees

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
T_OLD, T_NEW = 1_600_000_000, 1_700_000_000


def put(root: Path, rel: str, data: bytes, mtime: int, mode: int = 0o644):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))


def fix_dirs(root: Path, mtime: int):
    for d, _, _ in sorted(os.walk(root), reverse=True):
        os.utime(d, (mtime, mtime))


def make_src(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"new content, longer\n", T_NEW)
    put(root, "newer-here.txt", b"source version\n", T_OLD)
    put(root, "new.txt", b"only in the source\n", T_NEW)
    put(root, "big.bin", os.urandom(300_000), T_NEW)
    put(root, "small.bin", b"x" * 10, T_NEW)
    put(root, "d/inner.txt", b"inner new\n", T_NEW)
    put(root, "newdir/f.txt", b"in a new dir\n", T_NEW)
    fix_dirs(root, T_OLD)


def make_dst(root: Path):
    put(root, "same.txt", b"unchanged\n", T_OLD)
    put(root, "changed.txt", b"old content\n", T_OLD)
    put(root, "newer-here.txt", b"receiver's newer one\n", T_NEW + 100)
    put(root, "big.bin", b"old big" * 1000, T_OLD)
    put(root, "d/inner.txt", b"inner old\n", T_OLD)
    put(root, "extra.txt", b"not in the source\n", T_OLD)
    fix_dirs(root, T_OLD)


ROLES = ["local", "push-pysync2rsync", "push-rsync2pysync", "pull-pysync2rsync"]


def run_tool(tool: str, role: str, opts, src: Path, dst: Path, cwd: Path):
    client = PYSYNC if tool == "pysync" else ["rsync"]
    if role == "local" or tool == "rsync":
        cmd = client + opts + ([f"{src}/", f"{dst}/"] if role == "local" or role.startswith("push")
                               else [])
    if role == "local":
        pass
    else:
        if tool == "pysync":
            if role == "push-rsync2pysync":
                client, server = ["rsync"], "pysync"
            else:
                client, server = PYSYNC, "rsync"
        else:
            client, server = ["rsync"], "rsync"
        remote_args = ["-e", FAKE_RSH, f"--rsync-path={server}"]
        if role.startswith("push"):
            cmd = client + opts + remote_args + [f"{src}/", f"localhost:{dst}/"]
        else:
            cmd = client + opts + remote_args + [f"localhost:{src}/", f"{dst}/"]
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=cwd)


def lines(out: bytes):
    keep = []
    for line in out.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith(("sent ", "total size", "building file",
                                                "receiving file", "sending incremental",
                                                "receiving incremental")):
            continue
        keep.append(line)
    return keep


CASES = {
    "update": ["-ai", "-u"],
    "ignore-existing": ["-ai", "--ignore-existing"],
    "existing": ["-ai", "--existing"],
    "max-size": ["-ai", "--max-size=100k"],
    "min-size": ["-ai", "--min-size=15"],
    "backup": ["-ai", "-b"],
    "backup-delete": ["-ai", "-b", "--delete"],
    "backup-dir": ["-ai", "--backup-dir=../bk", "--delete"],
    "backup-suffix": ["-ai", "-b", "--suffix=.old"],
    "compare-dest": ["-ai", "--compare-dest=../prev"],
    "copy-dest": ["-ai", "--copy-dest=../prev"],
    "link-dest": ["-ai", "--link-dest=../prev"],
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_option_matches_rsync(tmp_path, case, role):
    opts = CASES[case]
    src = tmp_path / "src"
    make_src(src)
    results = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        dst = top / "dst"
        if case.endswith("-dest"):
            make_dst(top / "prev")      # the previous snapshot; dst starts empty
            dst.mkdir(parents=True)
            os.utime(dst, (T_OLD, T_OLD))
        else:
            make_dst(dst)
        r = run_tool(tool, role, opts, src, dst, top)
        results[tool] = (r, top)
    (rr, rtop), (pr, ptop) = results["rsync"], results["pysync"]
    assert pr.returncode == rr.returncode, pr.stderr.decode()
    assert sorted(os.listdir(ptop)) == sorted(os.listdir(rtop))
    for sub in os.listdir(rtop):          # dst, and prev / bk where the case has them
        # Backups made inside a directory give it the time of the run.
        assert compare_trees(ptop / sub, rtop / sub, dir_times=not case.startswith("backup")) == [], sub
    if role in ("local", "pull-pysync2rsync"):
        # The client's itemized lines (pysync prints them when it is the
        # client; for push-pysync2rsync they come from our sender's echo).
        assert lines(pr.stdout) == lines(rr.stdout)
    if case == "link-dest":
        ino = lambda top, n: os.stat(top / n).st_ino
        assert ino(ptop, "dst/same.txt") == ino(ptop, "prev/same.txt")


def test_three_daily_snapshots_share_inodes_like_rsync(tmp_path):
    layouts = {}
    for tool, client in (("rsync", ["rsync"]), ("pysync", PYSYNC)):
        src = tmp_path / f"src-{tool}"
        make_src(src)
        base = tmp_path / tool
        base.mkdir()
        prev = None
        for day in ("day1", "day2", "day3"):
            if day == "day2":
                put(src, "changed.txt", b"changed on day 2\n", T_NEW + 86400)
            if day == "day3":
                put(src, "new.txt", b"changed on day 3\n", T_NEW + 2 * 86400)
            cmd = client + ["-a"] + ([f"--link-dest=../{prev}"] if prev else []) + \
                [f"{src}/", f"{base}/{day}/"]
            assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
            prev = day
        groups = {}
        for day in ("day1", "day2", "day3"):
            for dirpath, _, files in os.walk(base / day):
                for f in files:
                    p = Path(dirpath) / f
                    rel = str(p.relative_to(base / day))
                    groups.setdefault(rel, []).append(os.stat(p).st_ino)
        # For each file: which days share an inode (as a partition of days).
        layouts[tool] = {rel: [inos.index(i) for i in inos] for rel, inos in groups.items()}
    assert layouts["pysync"] == layouts["rsync"]
    assert layouts["pysync"]["same.txt"] == [0, 0, 0]        # one inode for three days
    assert layouts["pysync"]["changed.txt"] == [0, 1, 1]


@pytest.mark.parametrize("partial_dir", [None, ".partial"])
def test_interrupted_transfer_resumes_with_partial(tmp_path, partial_dir):
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(1 << 20) * 200          # 200 MiB, slow enough to interrupt
    (src / "big").write_bytes(data)
    dst = tmp_path / "dst"
    dst.mkdir()
    opt = ["--partial"] if partial_dir is None else [f"--partial-dir={partial_dir}"]
    cmd = PYSYNC + ["-a", "--no-W"] + opt + ["-e", FAKE_RSH, "--rsync-path=pysync",
                                              f"{src}/", f"localhost:{dst}/"]
    kill_mid_file(cmd, dst, "big")
    kept = dst / "big" if partial_dir is None else dst / partial_dir / "big"
    assert kept.exists(), os.listdir(dst)
    assert 0 < kept.stat().st_size < len(data)
    assert data.startswith(kept.read_bytes())
    assert [n for n in os.listdir(dst) if n.startswith(".big.")] == []
    r = subprocess.run(PYSYNC + ["-a", "--no-W", "--stats"] + opt +
                       ["-e", FAKE_RSH, "--rsync-path=pysync", f"{src}/", f"localhost:{dst}/"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (dst / "big").read_bytes() == data
    matched = int(next(l for l in r.stdout.decode().splitlines()
                       if l.startswith("Matched data")).split()[2].replace(",", ""))
    assert matched >= kept_size_floor(20 << 20)
    if partial_dir is not None:
        assert not (dst / partial_dir).exists()


def kept_size_floor(n):
    # The resumed run must reuse (most of) what the first run wrote.
    return n // 2


def _backups_and_deletes(src: Path, dst: Path):
    put(src, "d/f", b"new content\n", T_NEW)
    put(dst, "d/f", b"old content, replaced\n", T_OLD)
    put(dst, "gone/x", b"in a directory the source lacks\n", T_OLD)
    put(dst, "older~", b"a backup of an earlier run\n", T_OLD)
    fix_dirs(src, T_OLD)
    fix_dirs(dst, T_OLD)


@pytest.mark.parametrize("excluded", [False, True], ids=["delete", "delete-excluded"])
@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync",
                                  "pull-pysync2rsync"])
def test_backup_with_delete_after_as_rsync(tmp_path, role, excluded):
    """-b --delete-after (found by interop/fuzz.py): a deleted directory's
    files are backed up beside them, so the directory stays ("cannot
    delete non-empty directory", not an error); the "P *~" rule that keeps
    backups from deletion is rsync's only without --delete-excluded, and a
    backup that is deleted goes, without a backup of its own."""
    from helpers.roles import lines, sources_command
    opts = ["-ai", "-b", "--delete-after"] + (["--delete-excluded"] if excluded else [])
    got, dsts = {}, []
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        _backups_and_deletes(src, dst)
        extra = ["--no-i-r"] if tool == "rsync" else []
        r = subprocess.run(sources_command(tool, role, opts + extra, [f"{src}/"], dst),
                           capture_output=True, timeout=60)
        got[tool] = (r.returncode, sorted(lines(r.stdout)), sorted(lines(r.stderr)))
        dsts.append(dst)
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][0] == 0
    assert "cannot delete non-empty directory: gone" in got["pysync"][1]
    assert ("*deleting   older~" in got["pysync"][1]) == excluded
    assert compare_trees(*dsts, dir_times=False) == []   # -b implies -O


@pytest.mark.parametrize("role", ["local", "push-pysync2rsync", "push-rsync2pysync",
                                  "pull-pysync2rsync"])
def test_backup_dir_directories_take_the_originals_attributes(tmp_path, role):
    """--backup-dir (found by interop/fuzz.py): a directory made inside the
    backup dir takes the mode and, with -o/-g, the owner and group of the
    destination directory it stands for (rsync's backup.c), for the files
    of a deleted directory and for a replaced file deep in the tree."""
    from helpers.roles import sources_command
    got = {}
    for tool in ("rsync", "pysync"):
        src, dst = tmp_path / tool / "src", tmp_path / tool / "dst"
        put(src, "keep/deep/f", b"new content\n", T_NEW)
        put(dst, "keep/deep/f", b"old content, replaced\n", T_OLD)
        put(dst, "gone.log/x", b"in a directory the source lacks\n", T_OLD)
        os.chown(dst / "gone.log", 1234, 4321)
        os.chmod(dst / "gone.log", 0o700)
        os.chmod(dst / "keep" / "deep", 0o2750)
        os.chmod(src / "keep" / "deep", 0o2750)
        os.chown(dst / "keep", 1234, 4321)
        os.chown(src / "keep", 1234, 4321)
        fix_dirs(src, T_OLD)
        fix_dirs(dst, T_OLD)
        r = subprocess.run(sources_command(tool, role, ["-a", "--delete", "--backup-dir=BAK"],
                                           [f"{src}/"], dst), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        seen = {}
        for rel in ("BAK/gone.log", "BAK/keep", "BAK/keep/deep"):
            st = os.lstat(dst / rel)
            seen[rel] = (oct(st.st_mode), st.st_uid, st.st_gid)
        got[tool] = seen
    assert got["pysync"] == got["rsync"]
    assert got["pysync"]["BAK/gone.log"] == (oct(0o40700), 1234, 4321)


@pytest.mark.parametrize("role", ["local", "push-rsync2pysync", "pull-pysync2rsync"])
@pytest.mark.parametrize("opts", [["-r"], ["-rt"], ["-rog"], ["-a"]])
def test_inplace_backup_copy_keeps_what_the_options_keep(tmp_path, role, opts):
    """--inplace -b backs up by copying the old file: the copy has its
    mode, its time with -t (else the run's), and as root its owner and
    group with -o/-g (else the copier's), as rsync's set_file_attrs gives
    them (interop/fuzz.py seed 4 case 1025)."""
    got = {}
    for tool in ("rsync", "pysync"):
        top = tmp_path / tool
        src, dst = top / "src", top / "dst"
        put(src, "f", b"new data\n", T_NEW)
        put(dst, "f", b"old\n", T_OLD, 0o640)
        if os.geteuid() == 0:
            os.chown(dst / "f", 1234, 1235)
        start = time.time() - 1
        r = run_tool(tool, role, opts + ["--inplace", "-b"], src, dst, top)
        st = os.stat(dst / "f~")
        got[tool] = (r.returncode, (dst / "f~").read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                     "now" if st.st_mtime >= start else int(st.st_mtime))
    assert got["pysync"] == got["rsync"]
    assert got["pysync"][1] == b"old\n"
