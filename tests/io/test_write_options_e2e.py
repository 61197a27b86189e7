"""--direct-io / --drop-cache / --preallocate through the whole program:
locally, pushed to a pysync server over a remote shell (the remote is
pysync by default when these options are given), a stock rsync client
asking for them with --rsync-path='pysync --direct-io', the refusal when
the remote is named as rsync, and ramfs (no O_DIRECT) ending with exit 11
and the old file intact.  Page-cache residency is read with fincore's
logic (mincore) through pysync.io.cache.resident_bytes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pysync.io.cache import resident_bytes

REPO = Path(__file__).resolve().parents[2]
FAKE_RSH = f"{sys.executable} {REPO / 'interop' / 'fake_rsh.py'}"
PYSYNC = [sys.executable, "-m", "pysync"]
BASE = Path("/var/tmp")          # on the disk (ext4 here), not tmpfs


def resident_fraction(path: Path) -> float:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return resident_bytes(fd) / size if size else 0.0
    finally:
        os.close(fd)


def uncached_file(path: Path, size: int) -> bytes:
    data = os.urandom(1 << 20) * (size >> 20)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return data


@pytest.fixture
def work():
    d = Path(subprocess.check_output(["mktemp", "-d", "-p", str(BASE)], text=True).strip())
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, timeout=300)


@pytest.mark.parametrize("how", ["local", "push-pysync-server", "rsync-client-rsync-path"])
def test_direct_io_keeps_destination_out_of_cache(work, how):
    src = work / "src"
    src.mkdir()
    data = uncached_file(src / "big", 96 << 20)
    dst = work / "dst"
    if how == "local":
        cmd = PYSYNC + ["-a", "--direct-io", f"{src}/", f"{dst}/"]
    elif how == "push-pysync-server":
        cmd = PYSYNC + ["-a", "--direct-io", "-e", FAKE_RSH, f"{src}/", f"localhost:{dst}/"]
    else:
        cmd = ["rsync", "-a", "-e", FAKE_RSH, "--rsync-path=pysync --direct-io",
               f"{src}/", f"localhost:{dst}/"]
    r = run(cmd)
    assert r.returncode == 0, r.stderr
    assert (dst / "big").stat().st_size == len(data)
    assert resident_fraction(dst / "big") < 0.10
    with open(dst / "big", "rb") as f:
        assert f.read() == data


def test_drop_cache_both_sides_and_keeps_hot_files(work):
    src = work / "src"
    src.mkdir()
    cold = uncached_file(src / "cold", 128 << 20)
    hot = os.urandom(1 << 20) * 32
    (src / "hot").write_bytes(hot)
    with open(src / "hot", "rb") as f:
        f.read()                                   # fully cached before the run
    assert resident_fraction(src / "hot") > 0.9
    dst = work / "dst"
    r = run(PYSYNC + ["-a", "--drop-cache", "-e", FAKE_RSH, f"{src}/", f"localhost:{dst}/"])
    assert r.returncode == 0, r.stderr
    assert resident_fraction(src / "cold") < 0.10
    assert resident_fraction(dst / "cold") < 0.10
    assert resident_fraction(src / "hot") >= 0.90   # the user's hot file stayed
    assert (dst / "cold").stat().st_size == len(cold)


def test_pysync_only_option_refused_for_a_named_rsync_remote(work):
    src = work / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    r = run(PYSYNC + ["-a", "--direct-io", "-e", FAKE_RSH, "--rsync-path=rsync",
                      f"{src}/", f"localhost:{work}/dst/"])
    assert r.returncode == 1
    assert b"needs pysync on the remote side" in r.stderr
    assert not (work / "dst").exists()           # nothing was transferred


def test_direct_io_on_ramfs_is_exit_11_and_keeps_old_file(work):
    if os.geteuid() != 0:
        pytest.skip("mounting ramfs needs root")
    mnt = work / "ramfs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount ramfs here")
    try:
        (mnt / "big").write_bytes(b"old content")
        src = work / "src"
        src.mkdir()
        (src / "big").write_bytes(os.urandom(4 << 20))
        r = run(PYSYNC + ["-a", "--direct-io", f"{src}/", f"{mnt}/"])
        assert r.returncode == 11, r.stderr
        assert b"ramfs" in r.stderr and b"direct-io" in r.stderr
        assert b"Traceback" not in r.stderr
        assert (mnt / "big").read_bytes() == b"old content"
        assert sorted(os.listdir(mnt)) == ["big"]
    finally:
        subprocess.run(["umount", str(mnt)])
