"""io/fakesuper.py: the %stat value, folding it into a stat, storing it,
and placeholders that never go through a symlink."""

import errno
import os
import stat

import pytest

from pysync.io import fakesuper as fs


def _xattrs_or_skip(path):
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("no user xattrs on this file system")
        raise


def test_value_round_trip_and_rsync_text():
    v = fs.encode(stat.S_IFCHR | 0o644, os.makedev(1, 3), 0, 5)
    assert v == b"20644 1,3 0:5"
    assert fs.decode(v) == (stat.S_IFCHR | 0o644, os.makedev(1, 3), 0, 5)
    assert fs.decode(b"104755 0,0 123:456")[0] == stat.S_IFREG | 0o4755


@pytest.mark.parametrize("bad", [b"", b"not a stat", b"644 1,3 0", b"64x 0,0 0:0", b"1 2,3 4:5 6"])
def test_corrupt_values(bad):
    with pytest.raises(fs.CorruptStat):
        fs.decode(bad)


def test_store_then_fold(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"")
    os.chmod(f, 0o400)
    _xattrs_or_skip(f)
    st = os.lstat(f)
    fs.store(os.fsencode(f), st, stat.S_IFREG | 0o4750, 0, 123, 456)
    real = os.lstat(f)
    assert stat.S_IMODE(real.st_mode) == 0o750 | 0o600     # set-id into the xattr only
    assert os.getxattr(f, fs.XSTAT) == b"104750 0,0 123:456"
    folded = fs.fold(real, os.fsencode(f))
    assert (folded.st_mode, folded.st_uid, folded.st_gid) == (stat.S_IFREG | 0o4750, 123, 456)
    assert folded.st_size == real.st_size and folded.st_mtime_ns == real.st_mtime_ns
    # Matching the object again: the xattr goes.
    fs.store(os.fsencode(f), os.lstat(f), stat.S_IFREG | 0o640 | 0o600, 0, real.st_uid, real.st_gid)
    assert fs.XSTAT not in os.listxattr(f)
    assert fs.fold(os.lstat(f), os.fsencode(f)) == os.lstat(f)


def test_real_devices_are_never_folded(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    st = os.lstat(p)
    assert fs.fold(st, os.fsencode(p)) is st


def test_placeholder_refuses_a_planted_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (tmp_path / "d").mkdir()
    os.symlink(outside, tmp_path / "d" / "x")
    dfd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            fs.write_placeholder(dfd, b"x", b"target")
        # A real symlink read as a placeholder: empty for a receiver (so it
        # is replaced), its target for a sender.
        assert fs.read_link(dfd, b"x", sending=False) == b""
        assert fs.read_link(dfd, b"x", sending=True) == os.fsencode(outside)
        fs.write_placeholder(dfd, b"y", b"some/target")
        assert fs.read_link(dfd, b"y", sending=False) == b"some/target"
        assert stat.S_IMODE(os.stat(b"y", dir_fd=dfd).st_mode) == 0o600
    finally:
        os.close(dfd)
    assert outside.read_bytes() == b"keep"
